/**
 * `npm run event:prepare`'s checklist (dev/event-prepare/checklist.ts), run
 * against the Worker under test through its entry: on a hot event it checks
 * the event, loads the inventory object, warms the room and the published
 * queue document; then the object sells, and its inventory equals Postgres
 * place by place. A failed check stops the run at that item.
 */
import { runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ChecklistFailed, prepareEvent, type ChecklistItem, type PrepareTarget } from "../../../dev/event-prepare/checklist";
import type { EventInventory } from "../../../durable-objects/event-inventory";
import { withDb } from "../../fixtures/db";
import { bestRequest, held, seatsRequest } from "../../fixtures/holds";
import { hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, ORIGIN } from "../../fixtures/http";
import { inventoryOf, publishedState, withInventory } from "../../fixtures/objects";

const target = (sale: HotSale): PrepareTarget => ({ baseUrl: ORIGIN, apiKey: sale.apiKey, fetch: (url, init) => SELF.fetch(url, init) });

/** Every place the event's holds claim, as `<place>` -> `<hold>:<status>` (seats by index, standing places by section, one entry per hold). */
type Places = Record<string, string[]>;

function addPlace(places: Places, place: string, claim: string): void {
  (places[place] ??= []).push(claim);
  places[place].sort();
}

const gaItems = z.array(z.object({ sectionId: z.string(), quantity: z.number() }));

/** What the object holds, place by place. */
function objectPlaces(eventId: string): Promise<{ places: Places; seatCount: number }> {
  return runInDurableObject(inventoryOf(eventId), (_inventory: EventInventory, state) => {
    const places: Places = {};
    const holds = state.storage.sql.exec<{ hold_id: string; status: string; seat_list: string; ga_list: string }>("SELECT hold_id, status, seat_list, ga_list FROM holds WHERE status IN ('live', 'confirmed')");
    for (const hold of holds) {
      for (const seat of z.array(z.number()).parse(JSON.parse(hold.seat_list))) addPlace(places, `seat ${seat}`, `${hold.hold_id}:${hold.status}`);
      for (const item of gaItems.parse(JSON.parse(hold.ga_list))) addPlace(places, `ga ${item.sectionId}`, `${hold.hold_id}:${hold.status}:${item.quantity}`);
    }
    const seatCount = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM seats").one().n;
    return { places, seatCount };
  });
}

/** What Postgres holds, place by place. */
async function postgresPlaces(eventId: string): Promise<{ places: Places; seatCount: number }> {
  return withDb(async (db) => {
    const places: Places = {};
    const items = await db.execute<{ hold_id: string; status: string; seat_index: number | null; section_id: string; quantity: number }>(sql`
      select h.id as hold_id, h.status, hi.seat_index, hi.section_id, hi.quantity
      from holds h join hold_items hi on hi.hold_id = h.id where h.event_id = ${eventId} and h.status in ('live', 'confirmed')`);
    const ga = new Map<string, number>();
    for (const item of items.rows) {
      if (item.seat_index !== null) addPlace(places, `seat ${item.seat_index}`, `${item.hold_id}:${item.status}`);
      else ga.set(`${item.section_id} ${item.hold_id}:${item.status}`, (ga.get(`${item.section_id} ${item.hold_id}:${item.status}`) ?? 0) + item.quantity);
    }
    for (const [key, quantity] of ga) {
      const [section = "", claim = ""] = key.split(" ");
      addPlace(places, `ga ${section}`, `${claim}:${quantity}`);
    }
    const seats = await db.execute<{ n: number }>(sql`select count(*)::int as n from event_seats where event_id = ${eventId}`);
    return { places, seatCount: seats.rows[0]?.n ?? 0 };
  });
}

describe("npm run event:prepare", () => {
  it("checks a hot event, loads its object and warms the room; the object then sells, equal to Postgres place by place", async () => {
    const sale = await hotSale({ saleStartsInMs: -60_000, accounts: 3, admissionRatePerSecond: 20, expectedDemand: 300 });
    expect(await publishedState(sale.eventId)).toBeNull();
    const lines: ChecklistItem[] = [];
    const items = await prepareEvent(target(sale), sale.eventId, (item) => lines.push(item));
    expect(lines).toEqual(items);
    expect(items.map((i) => [i.item, i.ok])).toEqual([
      ["event", true],
      ["venue", true],
      ["class", true],
      ["prices", true],
      ["times", true],
      ["admission rate", true],
      ["inventory loaded", true],
      ["waiting room", true],
      ["published queue state", true],
      ["live view", true],
    ]);
    expect(items.find((i) => i.item === "inventory loaded")?.detail).toMatch(/^36 seats in the object, 46 places available/);
    // The room published its document: fans polling the queue read it.
    expect(await publishedState(sale.eventId)).toMatchObject({ eventId: sale.eventId, ratePerSecond: 20, paused: false, soldOut: false });

    // The object sells: holds, sales and a release, seats and standing places.
    const [a = "", b = "", c = ""] = sale.accounts;
    await withInventory(sale.eventId, async (inventory) => {
      const sold = held(await inventory.hold(seatsRequest(a, [0, 1])));
      held(await inventory.confirm({ requestId: crypto.randomUUID(), holdId: sold.holdId, allowLapsed: false }));
      held(await inventory.hold(bestRequest(b, 3, { priceTier: "GA" })));
      const released = held(await inventory.hold(seatsRequest(c, [20, 21])));
      held(await inventory.release({ requestId: crypto.randomUUID(), accountId: c, holdId: released.holdId }));
      const soldGa = held(await inventory.hold(bestRequest(c, 2, { priceTier: "GA" })));
      held(await inventory.confirm({ requestId: crypto.randomUUID(), holdId: soldGa.holdId, allowLapsed: false }));
    });
    // The object mirrors its holds to Postgres a second after a change: run that alarm now.
    expect(await runDurableObjectAlarm(inventoryOf(sale.eventId))).toBe(true);
    const inObject = await objectPlaces(sale.eventId);
    expect(Object.keys(inObject.places)).toHaveLength(3);
    expect(inObject.seatCount).toBe(36);
    expect(inObject).toEqual(await postgresPlaces(sale.eventId));

    // Running it again is safe: the same checklist, the sales kept.
    const again = await prepareEvent(target(sale), sale.eventId);
    expect(again.every((i) => i.ok)).toBe(true);
    expect(again.find((i) => i.item === "live view")?.detail).toBe("capacity 46: 39 available, 3 held, 4 sold");
  });

  it("stops at the first failed item: a draft event, a tier priced at 0", async () => {
    const draft = await hotSale({ accounts: 0 });
    await withDb((db) => db.execute(sql`update events set status = 'draft' where id = ${draft.eventId}`));
    const failed = await prepareEvent(target(draft), draft.eventId).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(ChecklistFailed);
    expect(failed instanceof ChecklistFailed && failed.items.map((i) => [i.item, i.ok])).toEqual([["event", false]]);
    expect(await runInDurableObject(inventoryOf(draft.eventId), (_i: EventInventory, state) => state.storage.sql.exec("SELECT * FROM config").toArray().length)).toBe(0);

    const free = await hotSale({ accounts: 0 });
    const priced = await adminRequest(free.apiKey, "PATCH", `/events/${free.eventId}`, {
      prices: free.priceTiers.map((priceTier) => ({ priceTier, priceCents: priceTier === "GA" ? 0 : 1500 })),
    });
    expect(priced.status, priced.text).toBe(200);
    const unpriced = await prepareEvent(target(free), free.eventId).catch((error: unknown) => error);
    expect(unpriced instanceof ChecklistFailed && unpriced.message).toBe("prices: tiers without a price above 0: GA");
  });
});
