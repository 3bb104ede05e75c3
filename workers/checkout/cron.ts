/** The every-minute cron: payment reconciliation and the sweeps that keep state tidy. */
import { sql } from "drizzle-orm";
import { loadConfig } from "../config";
import { createDb } from "../db/client";
import { reconcilePayments, type ReconcileReport } from "./payments";

/** Request records of calm holds older than this are forgotten (retries come within seconds). */
const REQUEST_RETENTION = "1 day";

/** Runs one pass of every scheduled job; each job's failure is logged and does not stop the others. */
export async function runScheduledJobs(env: Env, keepAlive: (promise: Promise<unknown>) => void, now = Date.now()): Promise<{ payments?: ReconcileReport }> {
  const { db, close } = createDb(loadConfig(env));
  const report: { payments?: ReconcileReport } = {};
  try {
    try {
      report.payments = await reconcilePayments({ env, db, keepAlive }, now);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "reconcile_failed", error: String(error) }));
    }
    try {
      await db.execute(sql`delete from inventory_requests where created_at < now() - ${REQUEST_RETENTION}::interval`);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "request_sweep_failed", error: String(error) }));
    }
    return report;
  } finally {
    await close();
  }
}
