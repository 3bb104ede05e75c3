/**
 * `PostgresInventory` (calm events) against the reference inventory model:
 * random sequences of holds, best-available holds, releases, confirmations,
 * clock moves, restarts and retried requests: every answer checked, the
 * stored state audited every few operations (test/inventory-model). Postgres
 * answers are latency-bound, so independent sequences run side by side.
 * `MODEL_OPS` sets the operation count (vitest.config.ts: 100,000 by default);
 * see test/inventory-model/README.md.
 */
import { env } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import { AUDIT_EVERY, describeStats, expectCoverage, newStats, positiveSetting, runModel } from "../../inventory-model/harness";
import { openPostgresSubject } from "../../inventory-model/postgres-subject";

const TOTAL_OPS = positiveSetting("MODEL_OPS", "MODEL_OPS" in env ? env.MODEL_OPS : undefined, 100_000);
/**
 * Operations per test, so long runs show progress and one test's timeout stays
 * meaningful. Large: as a test ends, its lanes finish their last sequences one
 * by one, and that tail (about one sequence's time) is paid once per test.
 */
const CHUNK_OPS = 100_000;
/** Sequences run at once, each on its own event, pool and clock (latency-bound: more lanes, more throughput, up to the CPU). */
const LANES = positiveSetting("MODEL_LANES", "MODEL_LANES" in env ? env.MODEL_LANES : undefined, 16);
/** Generous (a chunk takes 6-12 minutes on a busy 2-core machine): the timeout is only there to catch a hang. */
const CHUNK_TIMEOUT_MS = 2_700_000;
/** The stored state and availability are read after every n-th operation (and after each sequence's last). */

const stats = newStats();
const started = performance.now();

describe("PostgresInventory against the inventory model", () => {
  afterAll(() => {
    console.info(describeStats("postgres", stats, (performance.now() - started) / 1000));
  });

  for (let from = 0; from < TOTAL_OPS; from += CHUNK_OPS) {
    const ops = Math.min(CHUNK_OPS, TOTAL_OPS - from);
    it(`agrees with the model for operations ${from + 1}-${from + ops}`, async () => {
      const before = stats.ops;
      await runModel({ open: openPostgresSubject, demandClass: "calm", targetOps: ops, lanes: LANES, stats, auditEvery: AUDIT_EVERY });
      expect(stats.ops - before).toBeGreaterThanOrEqual(ops);
    }, CHUNK_TIMEOUT_MS);
  }

  it(`ran at least ${TOTAL_OPS} operations and met every kind of answer along the way`, () => {
    expectCoverage(stats, TOTAL_OPS);
  });
});
