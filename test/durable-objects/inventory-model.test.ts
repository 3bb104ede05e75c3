/**
 * The `EventInventory` Durable Object against the reference inventory model:
 * random sequences of holds, best-available holds, releases, confirmations,
 * clock moves with alarm runs, evictions and retried requests, checked after
 * every operation (test/inventory-model). `MODEL_OPS` sets the operation count
 * (vitest.config.ts: 10,000 by default); see test/inventory-model/README.md.
 */
import { env } from "cloudflare:test";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openDurableObjectSubject } from "../inventory-model/durable-object-subject";
import { newStats, positiveSetting, runModel } from "../inventory-model/harness";

const TOTAL_OPS = positiveSetting("MODEL_OPS", "MODEL_OPS" in env ? env.MODEL_OPS : undefined, 10_000);
/** Operations per test, so progress shows and one test's timeout stays meaningful. */
const CHUNK_OPS = 10_000;
/** Generous (a chunk takes 1-3 minutes on a busy 2-core machine): the timeout is only there to catch a hang. */
const CHUNK_TIMEOUT_MS = 900_000;

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
    console.info(`inventory model, durable object: ${stats.ops} ops in ${stats.runs} runs, ${Math.round((performance.now() - started) / 1000)} s; holds ${stats.holdsCreated}, refusals ${JSON.stringify(stats.refusals)}, ms per op ${JSON.stringify(Object.fromEntries(Object.entries(stats.counts).map(([k, n]) => [k, `${((stats.timeMs[k] ?? 0) / n).toFixed(1)}+${((stats.timeMs[`${k}:check`] ?? 0) / n).toFixed(1)}`])))}`);
  });

  for (let from = 0; from < TOTAL_OPS; from += CHUNK_OPS) {
    const ops = Math.min(CHUNK_OPS, TOTAL_OPS - from);
    it(`agrees with the model for operations ${from + 1}-${from + ops}`, async () => {
      const before = stats.ops;
      await runModel({ open: openDurableObjectSubject, demandClass: "hot", targetOps: ops, lanes: 1, stats });
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
