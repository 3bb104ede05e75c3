/**
 * `PostgresInventory` (calm events) against the reference inventory model:
 * random sequences of holds, best-available holds, releases, confirmations,
 * clock moves, restarts and retried requests, checked after every operation
 * (test/inventory-model). Postgres answers are latency-bound, so independent
 * sequences run side by side. `MODEL_OPS` sets the operation count
 * (vitest.config.ts: 10,000 by default); see test/inventory-model/README.md.
 */
import { env } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import { newStats, positiveSetting, runModel } from "../inventory-model/harness";
import { openPostgresSubject } from "../inventory-model/postgres-subject";

const TOTAL_OPS = positiveSetting("MODEL_OPS", "MODEL_OPS" in env ? env.MODEL_OPS : undefined, 10_000);
/** Operations per test, so progress shows and one test's timeout stays meaningful. */
const CHUNK_OPS = 50_000;
/** Sequences run at once, each on its own event, pool and clock. */
const LANES = positiveSetting("MODEL_LANES", "MODEL_LANES" in env ? env.MODEL_LANES : undefined, 8);
/** Generous (a chunk takes 5-8 minutes on a busy 2-core machine): the timeout is only there to catch a hang. */
const CHUNK_TIMEOUT_MS = 1_800_000;
/** `availability()` is a transaction of its own here: read it after every third operation (the stored state after every one). */
const AVAILABILITY_EVERY = 3;

const stats = newStats();
const started = performance.now();

describe("PostgresInventory against the inventory model", () => {
  afterAll(() => {
    console.info(`inventory model, postgres: ${stats.ops} ops in ${stats.runs} runs, ${Math.round((performance.now() - started) / 1000)} s; holds ${stats.holdsCreated}, refusals ${JSON.stringify(stats.refusals)}, ms per op ${JSON.stringify(Object.fromEntries(Object.entries(stats.counts).map(([k, n]) => [k, `${((stats.timeMs[k] ?? 0) / n).toFixed(1)}+${((stats.timeMs[`${k}:check`] ?? 0) / n).toFixed(1)}`])))}`);
  });

  for (let from = 0; from < TOTAL_OPS; from += CHUNK_OPS) {
    const ops = Math.min(CHUNK_OPS, TOTAL_OPS - from);
    it(`agrees with the model for operations ${from + 1}-${from + ops}`, async () => {
      const before = stats.ops;
      await runModel({ open: openPostgresSubject, demandClass: "calm", targetOps: ops, lanes: LANES, stats, availabilityEvery: AVAILABILITY_EVERY });
      expect(stats.ops - before).toBeGreaterThanOrEqual(ops);
    }, CHUNK_TIMEOUT_MS);
  }

  it("met every kind of answer along the way", () => {
    expect(stats.holdsCreated).toBeGreaterThan(0);
    for (const reason of ["seat_taken", "sold_out", "over_limit", "too_fast", "invalid_seat", "hold_not_found", "hold_expired", "hold_confirmed"]) {
      expect(stats.refusals[reason] ?? 0, reason).toBeGreaterThan(0);
    }
  });
});
