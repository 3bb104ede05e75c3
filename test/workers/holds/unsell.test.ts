/**
 * `unsell`, the inventory's return-to-pool operation for sold places, in both
 * implementations: a confirmed hold becomes `refunded`, its seats are free,
 * its general-admission places are back in their counter, its places stop
 * counting towards the purchase limit, the hot inventory's waitlist hook hears
 * of it once, and doing it again changes nothing.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Inventory } from "../../../core/holds/contract";
import type { SeatingChart } from "../../../workers/venues/seating-chart";
import { withDb } from "../../fixtures/db";
import { bestRequest, held, refusal, seatsRequest } from "../../fixtures/holds";
import { inventoryOf, withInventory } from "../../fixtures/objects";
import { fanOf, type Sale } from "../../fixtures/seeding";
import { clock, freeSeats, openWaitlistSale } from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(() => clock.stop());

/** Four seats (tier A) and a standing pit of 3 (tier GA). */
function chart(): SeatingChart {
  return {
    name: `Bar ${crypto.randomUUID()}`,
    sections: [
      { label: "A", priceTier: "A", rows: [{ label: "1", seats: 4 }] },
      { label: "PIT", priceTier: "GA", generalAdmission: { capacity: 3 } },
    ],
  };
}

async function gaAvailable(sale: Sale): Promise<number> {
  const availability = await withInventory(sale.eventId, (inventory) => inventory.availability());
  return availability.sections.find((s) => s.kind === "general_admission")?.available ?? -1;
}

describe.each(["calm", "hot"] as const)("unsell (%s)", (demandClass) => {
  it("returns a sold hold's places once, and frees the purchase limit", async () => {
    const sale = await openWaitlistSale({ demandClass, fans: 1, chart: chart(), purchaseLimit: 4 });
    const buyer = fanOf(sale, 0).accountId;
    const use = <T>(work: (inventory: Inventory) => Promise<T>) => withInventory(sale.eventId, work);

    const seats = held(await use((i) => i.hold(seatsRequest(buyer, [0, 1]))));
    const ga = held(await use((i) => i.hold(bestRequest(buyer, 2, { priceTier: "GA" }))));
    for (const hold of [seats, ga]) held(await use((i) => i.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: false })));
    expect(await freeSeats(sale)).toEqual([2, 3]);
    expect(await gaAvailable(sale)).toBe(1);
    expect(refusal(await use((i) => i.hold(seatsRequest(buyer, [2]))))).toBe("over_limit");

    for (let run = 0; run < 2; run++) {
      const unsold = held(await use((i) => i.unsell({ requestId: `unsell-${run}`, holdId: seats.holdId })));
      expect(unsold).toMatchObject({ holdId: seats.holdId, status: "refunded", accountId: buyer });
      expect(unsold.seats.map((s) => s.seatIndex)).toEqual([0, 1]);
      held(await use((i) => i.unsell({ requestId: `unsell-ga-${run}`, holdId: ga.holdId })));
      expect(await freeSeats(sale)).toEqual([0, 1, 2, 3]);
      expect(await gaAvailable(sale)).toBe(3);
    }
    expect((await use((i) => i.getHold(ga.holdId)))?.status).toBe("refunded");

    // Refunded places no longer count: the buyer may hold four again. Only sold holds can be unsold.
    const again = held(await use((i) => i.hold(seatsRequest(buyer, [0, 1, 2, 3]))));
    expect(refusal(await use((i) => i.unsell({ requestId: "u", holdId: again.holdId })))).toBe("not_sold");
    expect(refusal(await use((i) => i.unsell({ requestId: "u", holdId: crypto.randomUUID() })))).toBe("hold_not_found");
    // A refunded hold cannot be sold again, and releasing it changes nothing.
    expect(refusal(await use((i) => i.confirm({ requestId: "c", holdId: seats.holdId, allowLapsed: true })))).toBe("hold_expired");
    expect(held(await use((i) => i.release({ accountId: buyer, requestId: "r", holdId: seats.holdId }))).status).toBe("refunded");
    expect(await freeSeats(sale)).toEqual([]);

    if (demandClass === "hot") {
      const stub = inventoryOf(sale.eventId);
      const refunds = (await stub.takeReturns(100)).filter((r) => r.reason === "refunded");
      expect(refunds.map((r) => [r.holdId, r.places]).sort()).toEqual([[seats.holdId, 2], [ga.holdId, 2]].sort());
      clock.advance(2_000);
      await runDurableObjectAlarm(stub); // mirrors the holds to Postgres
    }
    const stored = await withDb((db) =>
      db.execute<{ id: string; status: string }>(sql`select id, status from holds where id in (${seats.holdId}, ${ga.holdId}) order by id`),
    );
    expect(new Set(stored.rows.map((r) => r.status))).toEqual(new Set(["refunded"]));
    expect(stored.rows).toHaveLength(2);
    if (demandClass === "calm") {
      const counters = await withDb((db) => db.execute<{ sold: number }>(sql`select sold from event_ga_sections where event_id = ${sale.eventId}`));
      expect(counters.rows.map((r) => r.sold)).toEqual([0]);
    }
  });
});
