/** The every-minute cron: payment reconciliation, waitlist offers, unfinished cancellations, lost ticket deliveries and the sweeps that keep state tidy. */
import { sql } from "drizzle-orm";
import { loadConfig } from "../core/config";
import { createDb } from "../core/db/client";
import { log } from "../core/logger";
import { reconcilePayments, type ReconcileReport } from "./checkout/payments";
import { sampleHotSales } from "./events/live-stats";
import { continueCancellations } from "./refunds/refunds";
import { serveWaitlists } from "./waitlist/serve";
import { requeueLostDeliveries } from "./tickets/delivery";

/** Request records of calm holds older than this are forgotten (retries come within seconds). */
const REQUEST_RETENTION = "1 day";

/** What one cron pass did. */
export interface ScheduledReport {
  payments?: ReconcileReport;
  waitlist?: Awaited<ReturnType<typeof serveWaitlists>>;
  cancellations?: Awaited<ReturnType<typeof continueCancellations>>;
  /** Hot sales whose admission count was sampled for the organizer's live charts. */
  admissionSamples?: number;
  /** Ticket deliveries queued again because their message was lost. */
  deliveriesRequeued?: number;
}

/** Runs one pass of every scheduled job; each job's failure is logged and does not stop the others. */
export async function runScheduledJobs(env: Env, keepAlive: (promise: Promise<unknown>) => void, now = Date.now()): Promise<ScheduledReport> {
  const { db, close } = createDb(loadConfig(env));
  const report: ScheduledReport = {};
  try {
    try {
      report.payments = await reconcilePayments({ env, db, keepAlive }, now);
    } catch (error) {
      log.error("reconcile_failed", { error: String(error) });
    }
    // After reconciliation, so holds it released are offered in the same pass.
    try {
      report.waitlist = await serveWaitlists({ env, db, keepAlive });
    } catch (error) {
      log.error("waitlist_failed", { error: String(error) });
    }
    try {
      report.cancellations = await continueCancellations({ env, db, keepAlive });
    } catch (error) {
      log.error("cancellations_failed", { error: String(error) });
    }
    try {
      report.admissionSamples = await sampleHotSales({ env, db }, now);
    } catch (error) {
      log.error("admission_sampling_failed", { error: String(error) });
    }
    try {
      report.deliveriesRequeued = await requeueLostDeliveries(db, env.DELIVERY_QUEUE);
    } catch (error) {
      log.error("delivery_sweep_failed", { error: String(error) });
    }
    try {
      await db.execute(sql`delete from inventory_requests where created_at < now() - ${REQUEST_RETENTION}::interval`);
    } catch (error) {
      log.error("request_sweep_failed", { error: String(error) });
    }
    return report;
  } finally {
    await close();
  }
}
