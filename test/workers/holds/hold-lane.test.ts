/**
 * HoldLane, the Worker's coalescing of concurrent hot holds into RPC
 * batches, under random arrivals and a random fate for every batch: answered
 * after a while, failed, or lost (its request cancelled, so it never comes
 * back). Fake timers drive the waiters' own timers; nothing sleeps.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { HoldRequest, HoldResult } from "../../../core/holds/contract";
import { HoldLane } from "../../../workers/holds/hold-lane";

afterEach(() => {
  vi.useRealTimers();
});

type Fate = { kind: "answer"; afterMs: number } | { kind: "fail"; afterMs: number } | { kind: "lost" };

const fateArb: fc.Arbitrary<Fate> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("answer" as const), afterMs: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("fail" as const), afterMs: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "lost" as const }) },
);

function request(i: number): HoldRequest {
  return { kind: "best", accountId: `account-${i}`, attemptKey: `attempt-${i}`, requestId: `request-${i}`, quantity: 1, allowSplit: false };
}

/** What the fake object answers: a hold named after the request, so a mix-up shows. */
function resultFor(held: HoldRequest): HoldResult {
  return {
    ok: true,
    hold: { holdId: held.requestId, eventId: "event", accountId: held.accountId, status: "live", expiresAt: 0, createdAt: 0, seats: [], generalAdmission: [], totalCents: 0 },
  };
}

describe("HoldLane", () => {
  it("answers every fan with their own hold, in batches, whatever happens to the batches", { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        // Arrivals: [ms after the previous one, how many at once].
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 24 })), { minLength: 1, maxLength: 8 }),
        fc.array(fateArb, { minLength: 1, maxLength: 40 }),
        async (arrivals, fates) => {
          vi.useFakeTimers();
          // A short hand-off timeout keeps the fake clock's work small; the logic is the same.
          const lane = new HoldLane(300);
          const batches: HoldRequest[][] = [];
          const lostSenders = new Set<string>();
          const send = (requests: HoldRequest[]): Promise<HoldResult[]> => {
            const fate = fates[batches.length % fates.length] ?? { kind: "answer", afterMs: 0 };
            batches.push(requests);
            if (fate.kind === "lost") {
              // Only a batch's first request can be lost with it (it is the request that sent it, cancelled).
              const first = requests[0];
              if (first) lostSenders.add(first.requestId);
              return new Promise(() => undefined);
            }
            return new Promise((resolve, reject) =>
              setTimeout(() => (fate.kind === "fail" ? reject(new Error("injected")) : resolve(requests.map(resultFor))), fate.afterMs),
            );
          };
          const keptAlive: Promise<unknown>[] = [];
          const outcomes = new Map<string, HoldResult | Error>();
          let n = 0;
          const started: string[] = [];
          for (const [gapMs, count] of arrivals) {
            await vi.advanceTimersByTimeAsync(gapMs);
            for (let k = 0; k < count; k++) {
              const req = request(n++);
              started.push(req.requestId);
              lane.hold(send, (p) => keptAlive.push(p), req).then(
                (result) => outcomes.set(req.requestId, result),
                (error: unknown) => outcomes.set(req.requestId, error instanceof Error ? error : new Error(String(error))),
              );
            }
          }
          // Long enough for every waiter's hand-off timeout, and for the sends those trigger.
          for (let step = 0; step < 40 && outcomes.size + lostSenders.size < started.length; step++) await vi.advanceTimersByTimeAsync(100);

          for (const id of started) {
            const outcome = outcomes.get(id);
            if (lostSenders.has(id) && outcome === undefined) continue; // its own request was the one cancelled
            // A fan whose batch failed may see that failure (a 500) only if it sent the batch itself.
            if (outcome instanceof Error) {
              expect(batches.some((b) => b[0]?.requestId === id)).toBe(true);
              continue;
            }
            expect(outcome, `fan ${id}`).toBeDefined();
            expect(outcome?.ok && outcome.hold.holdId).toBe(id);
          }
          for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(64);
          // With at least two fans arriving together and the first batch answered, some batch carried several.
          if (fates[0]?.kind === "answer" && (arrivals[0]?.[1] ?? 0) >= 3) expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThan(1);
          vi.useRealTimers();
        },
      ),
      { numRuns: 60 },
    );
  });
});
