/**
 * `GET /admin/events/:id/live`: held, sold and available per section and in
 * total, equal to what each class's source of truth holds (Postgres for calm
 * events, the inventory object for hot ones) after holds, sales and a return;
 * and the per-minute history behind the charts.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import type { EventInventory } from "../../../durable-objects/event-inventory";
import { SOLD_OUT_RECHECK_MS } from "../../../durable-objects/waiting-room";
import { HISTORY_HOURS, recordAdmissionSample, saleHistory, sampleHotSales } from "../../../workers/events/live-stats";
import { smallChart } from "../../fixtures/charts";
import { withDb } from "../../fixtures/db";
import { bestRequest, held, seatsRequest } from "../../fixtures/holds";
import { hotSale } from "../../fixtures/hot-sale";
import { adminRequest, rawRequest } from "../../fixtures/http";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { inventoryOf, lobbyJoin, roomOf, shardRequestTotal, shardsOf, withInventory, withWorkContext } from "../../fixtures/objects";
import { openSale, type Sale } from "../../fixtures/seeding";

afterEach(() => {
  vi.useRealTimers();
});

const counts = { capacity: z.number(), available: z.number(), held: z.number(), sold: z.number() };
const liveSchema = z.object({
  demandClass: z.enum(["calm", "hot"]),
  queue: z.object({ admitted: z.number(), threshold: z.number(), entrants: z.object({ lobby: z.number(), late: z.number() }) }).nullable(),
  sections: z.array(z.object({ sectionId: z.string(), label: z.string(), ...counts })),
  totals: z.object(counts),
  soldOut: z.boolean(),
  returned: z.number(),
  history: z.object({ windowHours: z.number(), minutes: z.array(z.object({ at: z.string(), admitted: z.number(), sold: z.number(), ratePerSecond: z.number().nullable(), paused: z.boolean() })) }),
});
type Live = z.infer<typeof liveSchema>;

async function live(apiKey: string, eventId: string): Promise<Live> {
  const response = await adminRequest(apiKey, "GET", `/events/${eventId}/live`);
  expect(response.status, response.text).toBe(200);
  return liveSchema.parse(response.json);
}

type BySection = Record<string, { held: number; sold: number }>;

/** Held and sold per section label, read straight from Postgres (calm events). */
async function postgresCounts(eventId: string): Promise<BySection> {
  return withDb(async (db) => {
    const rows = await db.execute<{ label: string; held: number; sold: number }>(sql`
      select s.label,
        (select count(*) from event_seats es join seats st on st.venue_id = e.venue_id and st.seat_index = es.seat_index
          where es.event_id = e.id and st.section_id = s.id and es.status = 'held' and es.held_until > now())::int
        + (select coalesce(sum(hi.quantity), 0) from hold_items hi join holds h on h.id = hi.hold_id
          where hi.event_id = e.id and hi.section_id = s.id and hi.seat_index is null and h.status = 'live' and h.expires_at > now())::int as held,
        (select count(*) from event_seats es join seats st on st.venue_id = e.venue_id and st.seat_index = es.seat_index
          where es.event_id = e.id and st.section_id = s.id and es.status = 'sold')::int
        + coalesce((select g.sold from event_ga_sections g where g.event_id = e.id and g.section_id = s.id), 0)::int as sold
      from events e join sections s on s.venue_id = e.venue_id where e.id = ${eventId}`);
    return Object.fromEntries(rows.rows.map((r) => [r.label, { held: r.held, sold: r.sold }]));
  });
}

/** Held and sold per section label, read straight from the inventory object's tables (hot events). */
async function objectCounts(eventId: string): Promise<BySection> {
  return runInDurableObject(inventoryOf(eventId), (_inventory: EventInventory, state) => {
    const result: BySection = {};
    const labels = new Map(state.storage.sql.exec<{ section_id: string; label: string }>("SELECT section_id, label FROM sections").toArray().map((s) => [s.section_id, s.label]));
    for (const label of labels.values()) result[label] = { held: 0, sold: 0 };
    const seatSection = new Map(state.storage.sql.exec<{ seat_index: number; section_id: string }>("SELECT seat_index, section_id FROM seats").toArray().map((s) => [s.seat_index, s.section_id]));
    const holds = state.storage.sql.exec<{ status: string; seat_list: string; ga_list: string }>("SELECT status, seat_list, ga_list FROM holds WHERE status IN ('live', 'confirmed')").toArray();
    for (const hold of holds) {
      const key = hold.status === "live" ? "held" : "sold";
      for (const seat of z.array(z.number()).parse(JSON.parse(hold.seat_list))) {
        const counts = result[labels.get(seatSection.get(seat) ?? "") ?? ""];
        if (counts) counts[key]++;
      }
      for (const item of z.array(z.object({ sectionId: z.string(), quantity: z.number() })).parse(JSON.parse(hold.ga_list))) {
        const counts = result[labels.get(item.sectionId) ?? ""];
        if (counts) counts[key] += item.quantity;
      }
    }
    return result;
  });
}

const sourceCounts = (sale: Sale) => (sale.demandClass === "calm" ? postgresCounts(sale.eventId) : objectCounts(sale.eventId));

function liveCounts(view: Live): BySection {
  return Object.fromEntries(view.sections.map((s) => [s.label, { held: s.held, sold: s.sold }]));
}

describe.each(["calm", "hot"] as const)("live stats of a %s event", (demandClass) => {
  it("counts held, sold and available per section and in total, as the source of truth holds them", async () => {
    // smallChart: A seats 0-17, B seats 18-35, PIT 10 standing places.
    const sale = await openSale({ demandClass, fans: 3 });
    const [a, b, c] = sale.fans.map((f) => f.accountId);
    const pit = (await live(sale.apiKey, sale.eventId)).sections.find((s) => s.label === "PIT")?.sectionId;
    await withInventory(sale.eventId, async (inventory) => {
      held(await inventory.hold(seatsRequest(a ?? "", [0, 1])));
      const sold = held(await inventory.hold(seatsRequest(b ?? "", [18, 19, 20])));
      held(await inventory.confirm({ requestId: crypto.randomUUID(), holdId: sold.holdId, allowLapsed: false }));
      held(await inventory.hold(bestRequest(c ?? "", 2, { sectionId: pit })));
      const soldGa = held(await inventory.hold(bestRequest(a ?? "", 1, { sectionId: pit })));
      held(await inventory.confirm({ requestId: crypto.randomUUID(), holdId: soldGa.holdId, allowLapsed: false }));
      const returned = held(await inventory.hold(seatsRequest(c ?? "", [30])));
      held(await inventory.confirm({ requestId: crypto.randomUUID(), holdId: returned.holdId, allowLapsed: false }));
      held(await inventory.unsell({ requestId: crypto.randomUUID(), holdId: returned.holdId }));
    });

    const view = await live(sale.apiKey, sale.eventId);
    expect(view.demandClass).toBe(demandClass);
    expect(liveCounts(view)).toEqual({ A: { held: 2, sold: 0 }, B: { held: 0, sold: 3 }, PIT: { held: 2, sold: 1 } });
    expect(liveCounts(view)).toEqual(await sourceCounts(sale));
    for (const s of view.sections) expect(s.available + s.held + s.sold, s.label).toBe(s.capacity);
    expect(view.totals).toEqual({ capacity: 46, available: 46 - 4 - 4, held: 4, sold: 4 });
    expect(view.returned).toBe(1);
    expect(view.soldOut).toBe(false);
  });

  it("says sold out when every place is held or sold", async () => {
    const sale = await openSale({ demandClass, fans: 2, purchaseLimit: 50, chart: { name: `Tiny ${crypto.randomUUID()}`, sections: [{ label: "A", priceTier: "A", rows: [{ label: "1", seats: 3 }] }] } });
    await withInventory(sale.eventId, async (inventory) => {
      const hold = held(await inventory.hold(seatsRequest(sale.fans[0]?.accountId ?? "", [0, 1])));
      held(await inventory.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: false }));
      expect((await live(sale.apiKey, sale.eventId)).soldOut).toBe(false);
      held(await inventory.hold(seatsRequest(sale.fans[1]?.accountId ?? "", [2])));
    });
    const view = await live(sale.apiKey, sale.eventId);
    expect(view.totals).toEqual({ capacity: 3, available: 0, held: 1, sold: 2 });
    expect(view.soldOut).toBe(true);
  });
});

describe("live history", () => {
  it("gives fans admitted and places sold per minute, with the rate in force, over a bounded window", async () => {
    const sale = await hotSale({ accounts: 1 });
    const minute = 60_000;
    const t0 = Math.floor(Date.now() / minute) * minute - 10 * minute;
    await withDb(async (db) => {
      await recordAdmissionSample(db, sale.eventId, { admitted: 10, ratePerSecond: 5, paused: false }, t0 + 1_000);
      await recordAdmissionSample(db, sale.eventId, { admitted: 20, ratePerSecond: 5, paused: false }, t0 + minute + 1_000);
      // The last sample in a minute wins.
      await recordAdmissionSample(db, sale.eventId, { admitted: 25, ratePerSecond: 2, paused: true }, t0 + minute + 50_000);
      await recordAdmissionSample(db, sale.eventId, { admitted: 40, ratePerSecond: 3, paused: false }, t0 + 3 * minute);
      // A sale: one order of two tickets two minutes in.
      const [hold] = (await db.execute<{ id: string }>(sql`select gen_random_uuid() as id`)).rows;
      const [order] = (
        await db.execute<{ id: string }>(sql`
          insert into orders (event_id, account_id, hold_id, total_cents, currency) values (${sale.eventId}, ${sale.accounts[0]}, ${hold?.id}, 2000, 'USD') returning id`)
      ).rows;
      await db.execute(sql`
        insert into tickets (order_id, event_id, account_id, section_id, price_cents, created_at)
        select ${order?.id}, ${sale.eventId}, ${sale.accounts[0]}, s.id, 1000, ${new Date(t0 + 2 * minute + 5_000).toISOString()}::timestamptz
        from events e join sections s on s.venue_id = e.venue_id and s.label = 'PIT' cross join generate_series(1, 2) where e.id = ${sale.eventId}`);

      const points = await saleHistory(db, sale.eventId, t0 + 4 * minute + 1);
      expect(points).toEqual([
        { at: new Date(t0).toISOString(), admitted: 10, sold: 0, ratePerSecond: 5, paused: false },
        { at: new Date(t0 + minute).toISOString(), admitted: 15, sold: 0, ratePerSecond: 2, paused: true },
        { at: new Date(t0 + 2 * minute).toISOString(), admitted: 0, sold: 2, ratePerSecond: 2, paused: true },
        { at: new Date(t0 + 3 * minute).toISOString(), admitted: 15, sold: 0, ratePerSecond: 3, paused: false },
        { at: new Date(t0 + 4 * minute).toISOString(), admitted: 0, sold: 0, ratePerSecond: 3, paused: false },
      ]);

      // Hours later the window has moved on: old samples are gone, the last one before the window still gives the rate.
      const later = t0 + (HISTORY_HOURS * 60 + 5) * minute;
      await recordAdmissionSample(db, sale.eventId, { admitted: 41, ratePerSecond: 3, paused: false }, later);
      const stored = await db.execute<{ n: number }>(sql`select count(*)::int as n from admission_samples where event_id = ${sale.eventId}`);
      expect(stored.rows[0]?.n).toBe(2);
      const window = await saleHistory(db, sale.eventId, later);
      expect(window.length).toBe(HISTORY_HOURS * 60 + 1);
      expect(window[0]).toEqual({ at: new Date(later - HISTORY_HOURS * 60 * minute).toISOString(), admitted: 0, sold: 0, ratePerSecond: 3, paused: false });
      expect(window[window.length - 1]).toEqual({ at: new Date(later).toISOString(), admitted: 1, sold: 0, ratePerSecond: 3, paused: false });
    });
  });

  it("the cron samples the published queue document of prepared hot sales whose lobby is open, and the live view shows it", async () => {
    const sale = await hotSale({ saleStartsInMs: 60 * 60_000, lobbyOpensMinutes: 90, admissionRatePerSecond: 7 });
    const prepared = await adminRequest(sale.apiKey, "POST", `/events/${sale.eventId}/prepare`, {});
    expect(prepared.status, prepared.text).toBe(200);
    await roomOf(sale.eventId).control({ paused: true });
    const sampled = await withWorkContext((ctx) => sampleHotSales(ctx));
    expect(sampled).toBeGreaterThanOrEqual(1);
    const view = await live(sale.apiKey, sale.eventId);
    expect(view.queue).toMatchObject({ admitted: 0 });
    expect(view.history.windowHours).toBe(HISTORY_HOURS);
    expect(view.history.minutes.at(-1)).toMatchObject({ admitted: 0, ratePerSecond: 7, paused: true });
  });
});

describe("the queue in the live view of a hot sale", () => {
  it("is the room's last tick while the room ticks (no shard visited per read), and counted afresh from the shards once that is over two ticks old", async () => {
    startFakeClock();
    const sale = await hotSale({ saleStartsInMs: 60 * 60_000, lobbyOpensMinutes: 90, accounts: 0 });
    const prepared = await adminRequest(sale.apiKey, "POST", `/events/${sale.eventId}/prepare`, {});
    expect(prepared.status, prepared.text).toBe(200);
    const tickAt = Date.now() + 1_000;
    setClock(tickAt - 500);
    await lobbyJoin(sale.eventId, "first-fan");
    setClock(tickAt);
    expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
    setClock(tickAt + 200);
    await lobbyJoin(sale.eventId, "second-fan");

    // Polled within two ticks of the last: the tick's document, one fan in the lobby; no shard served anything for it.
    setClock(tickAt + 1_900);
    const served = await shardRequestTotal(sale.eventId);
    for (let poll = 0; poll < 3; poll++) expect((await live(sale.apiKey, sale.eventId)).queue?.entrants.lobby).toBe(1);
    expect(await shardRequestTotal(sale.eventId)).toBe(served);

    // The room stopped ticking: the shards are visited, and the second fan is counted.
    setClock(tickAt + 2_100);
    expect((await live(sale.apiKey, sale.eventId)).queue?.entrants.lobby).toBe(2);
    expect(await shardRequestTotal(sale.eventId)).toBeGreaterThan(served);
  });

  it("while sold out, is the last tick's document for two of the room's slower rechecks (SOLD_OUT_RECHECK_MS), not a visit to every shard per read", async () => {
    startFakeClock();
    // 3 places: 2 seats and 1 standing place, all held by one buyer once the sale opens.
    const sale = await hotSale({ chart: smallChart(1, 1, 1), accounts: 1, saleStartsInMs: 60_000, lobbyOpensMinutes: 10 });
    const prepared = await adminRequest(sale.apiKey, "POST", `/events/${sale.eventId}/prepare`, {});
    expect(prepared.status, prepared.text).toBe(200);
    const buyer = sale.accounts[0] ?? "";
    await lobbyJoin(sale.eventId, "waiting-fan");
    setClock(sale.saleStartsAt + 100);
    for (let place = 0; place < 3; place++) held(await inventoryOf(sale.eventId).hold(bestRequest(buyer, 1)));
    const tickAt = sale.saleStartsAt + 1_000;
    setClock(tickAt);
    expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
    expect(await live(sale.apiKey, sale.eventId)).toMatchObject({ soldOut: true, queue: { admitted: 0, entrants: { lobby: 1 } } });
    setClock(tickAt + 200);
    expect(await lobbyJoin(sale.eventId, "later-fan")).toMatchObject({ ok: true, block: "late" });

    // Within two rechecks of that tick: its document, without the fan who joined late; no shard served anything for it.
    setClock(tickAt + 2 * SOLD_OUT_RECHECK_MS - 100);
    const served = await shardRequestTotal(sale.eventId);
    for (let poll = 0; poll < 3; poll++) expect((await live(sale.apiKey, sale.eventId)).queue?.entrants).toMatchObject({ lobby: 1, late: 0 });
    expect(await shardRequestTotal(sale.eventId)).toBe(served);

    // Past them (the room's alarm did not run): counted afresh from the shards, the late fan with them.
    setClock(tickAt + 2 * SOLD_OUT_RECHECK_MS + 100);
    expect((await live(sale.apiKey, sale.eventId)).queue?.entrants).toMatchObject({ lobby: 1, late: 1 });
    expect(await shardRequestTotal(sale.eventId)).toBeGreaterThan(served);
  });
});

describe("live stats in the admin OpenAPI document", () => {
  it("documents held, sold, totals, sold out, places returned and the history", async () => {
    const response = await rawRequest("/admin/openapi.json");
    const schema = z
      .object({
        paths: z.object({
          "/events/{id}/live": z.object({
            get: z.object({
              responses: z.object({
                "200": z.object({ content: z.object({ "application/json": z.object({ schema: z.object({ properties: z.record(z.string(), z.unknown()) }) }) }) }),
              }),
            }),
          }),
        }),
      })
      .parse(response.json).paths["/events/{id}/live"].get.responses["200"].content["application/json"].schema;
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["sections", "totals", "soldOut", "returned", "queue", "history"]));
    const sections = z.object({ items: z.object({ properties: z.record(z.string(), z.unknown()) }) }).parse(schema.properties.sections);
    expect(Object.keys(sections.items.properties)).toEqual(expect.arrayContaining(["capacity", "available", "held", "sold"]));
  });
});
