/**
 * The rebuild's promise as a property: random interleavings of holds,
 * confirmations, releases, clock moves, alarm runs (expiry and the mirror)
 * and sales consumer batches, then the object's storage lost at a random
 * point and rebuilt from Postgres. Afterwards a crowd tries to hold every
 * place: no seat that was held (unexpired) or sold before the loss is
 * granted, and no more general-admission places than were left.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { HoldView } from "../../../core/holds/contract";
import { saleOf } from "../../../workers/checkout/payments";
import { writeSales } from "../../../workers/checkout/sales-consumer";
import { withDb } from "../../fixtures/db";
import { inventoryOf, wipeInventory } from "../../fixtures/objects";
import { holdEveryPlace, placesOf } from "../../fixtures/rebuild";
import { openEvent } from "../../fixtures/seeding";

const FANS = 6;
/** Enough to jump past a hold's TTL (600 s) plus its jitter (60 s) in one step, or not. */
const MAX_CLOCK_STEP_MS = 700_000;

type Step =
  | { kind: "hold"; fan: number; quantity: number; section: number }
  | { kind: "confirm"; pick: number }
  | { kind: "release"; pick: number }
  | { kind: "consume"; pick: number }
  | { kind: "alarm" }
  | { kind: "clock"; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("hold" as const), fan: fc.nat(FANS - 1), quantity: fc.integer({ min: 1, max: 3 }), section: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("confirm" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("consume" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("alarm" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clock" as const), ms: fc.integer({ min: 1, max: MAX_CLOCK_STEP_MS }) }) },
);

afterEach(() => {
  vi.useRealTimers();
});

describe("EventInventory rebuilt at a random point", () => {
  it("never grants a place that was held (unexpired) or sold before the storage was lost", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 20 }), async (steps) => {
        vi.useFakeTimers({ toFake: ["Date"] });
        vi.setSystemTime(Date.now());
        try {
          const { event, accounts } = await openEvent({ demandClass: "hot", accounts: FANS });
          const stub = inventoryOf(event.id);
          await stub.prepare(event.id);
          const sections = (await stub.availability()).sections.map((s) => s.sectionId);
          const holds: HoldView[] = [];
          const sold: HoldView[] = [];
          const pick = (from: HoldView[], i: number) => from[i % Math.max(from.length, 1)];
          for (const [i, s] of steps.entries()) {
            if (s.kind === "hold") {
              const accountId = accounts[s.fan] ?? "";
              const result = await stub.hold({ kind: "best", accountId, attemptKey: crypto.randomUUID(), requestId: `r${i}`, quantity: s.quantity, sectionId: sections[s.section % sections.length], allowSplit: true });
              if (result.ok) holds.push(result.hold);
            } else if (s.kind === "confirm") {
              const hold = pick(holds, s.pick);
              if (!hold) continue;
              const result = await stub.confirm({ requestId: `c${i}`, holdId: hold.holdId, allowLapsed: true });
              if (result.ok) sold.push(result.hold);
            } else if (s.kind === "release") {
              const hold = pick(holds, s.pick);
              if (hold) await stub.release({ accountId: hold.accountId, requestId: `x${i}`, holdId: hold.holdId });
            } else if (s.kind === "consume") {
              const sale = pick(sold, s.pick);
              if (sale) await withDb((db) => writeSales(db, [saleOf(sale, { id: crypto.randomUUID(), amountCents: sale.totalCents, currency: "USD" }, `pi_${i}`)]));
            } else if (s.kind === "alarm") {
              await runDurableObjectAlarm(stub);
            } else {
              vi.setSystemTime(Date.now() + s.ms);
            }
          }
          // What the object had given out when it lost its storage.
          const now = Date.now();
          const views = await Promise.all(holds.map((hold) => stub.getHold(hold.holdId)));
          const taken = placesOf(views.flatMap((view) => (view && (view.status === "confirmed" || (view.status === "live" && view.expiresAt > now)) ? [view] : [])));

          await wipeInventory(event.id);
          expect((await inventoryOf(event.id).prepare(event.id)).rebuilt).toBe(true);
          const granted = await holdEveryPlace(event.id);
          expect(granted.seats.filter((seat) => taken.seats.has(seat))).toEqual([]);
          expect(granted.gaPlaces).toBeLessThanOrEqual(granted.gaCapacity - taken.gaPlaces);
        } finally {
          vi.useRealTimers();
        }
      }),
      { numRuns: 15 },
    );
  }, 300_000);
});
