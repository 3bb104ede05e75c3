/**
 * The every-minute cron as a whole (workers/scheduled.ts): every pass runs and
 * none fails. Each pass has its own tests; the checkout tests run the
 * reconciliation pass alone (test/fixtures/checkout.ts `runCron`).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { runScheduledJobs } from "../../../workers/scheduled";
import { runCronExclusively } from "../../fixtures/checkout";

// The reconciliation pass settles every open payment in the database: one file running the cron at a time.
runCronExclusively();

describe("the every-minute cron", () => {
  it("runs each of its passes, and none fails", async () => {
    const pending: Promise<unknown>[] = [];
    const report = await runScheduledJobs(env, (promise) => pending.push(promise), Date.now());
    await Promise.allSettled(pending);
    // A pass that throws is logged and leaves its part of the report out.
    expect(Object.keys(report).sort()).toEqual(["admissionSamples", "cancellations", "deliveriesRequeued", "payments", "waitlist"]);
  }, 120_000);
});
