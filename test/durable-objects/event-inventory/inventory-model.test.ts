/**
 * The `EventInventory` Durable Object against the reference inventory model:
 * random sequences of holds, best-available holds, releases, confirmations,
 * clock moves with alarm runs, evictions and retried requests: every answer
 * checked, the stored state audited every few operations (test/inventory-model).
 * `MODEL_OPS` sets the operation count (vitest.config.ts: 100,000 by default);
 * see test/inventory-model/README.md.
 */
import { env } from "cloudflare:test";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openDurableObjectSubject } from "../../inventory-model/durable-object-subject";
import { AUDIT_EVERY, describeStats, expectCoverage, newStats, positiveSetting, runModel } from "../../inventory-model/harness";

const TOTAL_OPS = positiveSetting("MODEL_OPS", "MODEL_OPS" in env ? env.MODEL_OPS : undefined, 100_000);
/** Operations per test, so progress shows and one test's timeout stays meaningful. */
const CHUNK_OPS = 25_000;
/** Generous (a chunk takes 1.5-4 minutes on a busy 2-core machine): the timeout is only there to catch a hang. */
const CHUNK_TIMEOUT_MS = 900_000;
/** The stored state and availability are read after every n-th operation (and after each sequence's last). */

const stats = newStats();
const started = performance.now();

describe("EventInventory against the inventory model", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(() => {
    console.info(describeStats("durable object", stats, (performance.now() - started) / 1000));
  });

  for (let from = 0; from < TOTAL_OPS; from += CHUNK_OPS) {
    const ops = Math.min(CHUNK_OPS, TOTAL_OPS - from);
    it(`agrees with the model for operations ${from + 1}-${from + ops}`, async () => {
      const before = stats.ops;
      await runModel({ open: openDurableObjectSubject, demandClass: "hot", targetOps: ops, lanes: 1, stats, auditEvery: AUDIT_EVERY });
      expect(stats.ops - before).toBeGreaterThanOrEqual(ops);
    }, CHUNK_TIMEOUT_MS);
  }

  it(`ran at least ${TOTAL_OPS} operations and met every kind of answer along the way`, () => {
    expectCoverage(stats, TOTAL_OPS);
  });
});
