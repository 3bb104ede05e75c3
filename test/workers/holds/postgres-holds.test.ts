import { sql } from "drizzle-orm";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { Db } from "../../../core/db/client";
import { PostgresInventory } from "../../../workers/holds/postgres-holds";
import { ATTEMPT_INTERVAL_MS, HOLD_JITTER_MS, type HoldView } from "../../../core/holds/contract";
import type { SeatingChart } from "../../../workers/venues/seating-chart";
import { openDb } from "../../fixtures/db";
import { bestRequest, held, refusal, seatsRequest } from "../../fixtures/holds";
import { openEvent } from "../../fixtures/seeding";

// smallChart() (test/fixtures/charts.ts): section A (tier A, 1000 cents) seats 0-17, section B (tier B, 2000) seats 18-35,
// 3 rows of 6 each; PIT general admission (tier GA, 3000) with 10 places.

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A db handle closed after the test. */
function testDb(): Db {
  const { db, close } = openDb();
  closers.push(close);
  return db;
}

/** A calm event on sale, its inventory on a fake clock, and fan accounts. */
async function calmEvent(options: { chart?: SeatingChart; purchaseLimit?: number; accounts?: number } = {}) {
  const fixture = await openEvent({ demandClass: "calm", accounts: 4, ...options });
  const db = testDb();
  let now = Date.now();
  const clock = () => now;
  const inventory = new PostgresInventory(db, fixture.event.id, clock);
  const fan = (i: number) => fixture.accounts[i] ?? "";
  return { ...fixture, db, inventory, clock, fan, advance: (ms: number) => (now += ms), setTime: (ms: number) => (now = ms) };
}

const labels = (hold: HoldView) => hold.seats.map((s) => `${s.section}-${s.row}-${s.seat}`);

async function seatRows(db: Db, eventId: string, seatIndexes: number[]) {
  const rows = await db.execute<{ seat_index: number; status: string; hold_id: string | null }>(sql`
    select seat_index, status, hold_id from event_seats where event_id = ${eventId} and seat_index = any(${sql.param(seatIndexes)}::int[]) order by seat_index`);
  return rows.rows;
}

describe("PostgresInventory holds", () => {
  it("holds exact seats with labels, prices and a jittered TTL, and reads them back", async () => {
    const { inventory, fan, clock, event, db } = await calmEvent();
    const hold = held(await inventory.hold(seatsRequest(fan(0), [1, 0, 1])));
    expect(hold).toMatchObject({ eventId: event.id, accountId: fan(0), status: "live", createdAt: clock(), totalCents: 2000, generalAdmission: [] });
    expect(hold.seats).toEqual([
      { seatIndex: 0, section: "A", row: "1", seat: "1", priceTier: "A", priceCents: 1000 },
      { seatIndex: 1, section: "A", row: "1", seat: "2", priceTier: "A", priceCents: 1000 },
    ]);
    expect(hold.expiresAt - hold.createdAt).toBeGreaterThanOrEqual(600_000);
    expect(hold.expiresAt - hold.createdAt).toBeLessThan(600_000 + HOLD_JITTER_MS);
    expect(await seatRows(db, event.id, [0, 1, 2])).toEqual([
      { seat_index: 0, status: "held", hold_id: hold.holdId },
      { seat_index: 1, status: "held", hold_id: hold.holdId },
      { seat_index: 2, status: "available", hold_id: null },
    ]);

    expect(await inventory.getHold(hold.holdId)).toEqual(hold);
    expect(await inventory.getHold(hold.holdId, fan(0))).toEqual(hold);
    expect(await inventory.getHold(hold.holdId, fan(1))).toBeNull();
    expect(await inventory.getHold(crypto.randomUUID())).toBeNull();
    expect(await inventory.getHold("not-a-uuid")).toBeNull();
  });

  it("refuses seats that do not exist at the event", async () => {
    const { inventory, fan } = await calmEvent();
    for (const seatIndexes of [[36], [0, -1], [1.5], [], [2 ** 40]]) {
      expect(refusal(await inventory.hold(seatsRequest(fan(0), seatIndexes)))).toBe("invalid_seat");
    }
  });

  it("lists an account's holds newest first", async () => {
    const { inventory, fan, advance } = await calmEvent();
    const first = held(await inventory.hold(seatsRequest(fan(0), [0])));
    advance(1_000);
    const second = held(await inventory.hold(bestRequest(fan(0), 1, { priceTier: "B" })));
    await inventory.hold(seatsRequest(fan(1), [5]));
    expect((await inventory.accountHolds(fan(0))).map((h) => h.holdId)).toEqual([second.holdId, first.holdId]);
  });

  it("gives best available as the best adjacent block, within a price tier or section", async () => {
    const { inventory, fan, venue } = await calmEvent();
    const front = held(await inventory.hold(bestRequest(fan(0), 2, { priceTier: "A" })));
    expect(labels(front)).toEqual(["A-1-3", "A-1-4"]);
    const next = held(await inventory.hold(bestRequest(fan(1), 2, { priceTier: "A" })));
    expect(labels(next)).toEqual(["A-1-1", "A-1-2"]); // seats 1-2 rank better than 5-6
    const sectionB = venue.sections.find((s) => s.label === "B")?.id;
    const inB = held(await inventory.hold(bestRequest(fan(2), 3, { sectionId: sectionB })));
    expect(labels(inB)).toEqual(["B-1-2", "B-1-3", "B-1-4"]);
    expect(inB.totalCents).toBe(6000);
    expect(refusal(await inventory.hold(bestRequest(fan(3), 1, { priceTier: "NOPE" })))).toBe("invalid_seat");
    expect(refusal(await inventory.hold(bestRequest(fan(3), 1, { sectionId: crypto.randomUUID() })))).toBe("invalid_seat");
    expect(refusal(await inventory.hold(bestRequest(fan(3), 1, { sectionId: "garbage" })))).toBe("invalid_seat");
  });

  it("splits a party across rows only when allowed", async () => {
    const chart: SeatingChart = { name: `Tiny ${crypto.randomUUID()}`, sections: [{ label: "S", priceTier: "T", rows: [{ label: "1", seats: 3 }, { label: "2", seats: 3 }] }] };
    const { inventory, fan } = await calmEvent({ chart, purchaseLimit: 10 });
    held(await inventory.hold(seatsRequest(fan(0), [1, 4]))); // the middle of both rows
    const together = await inventory.hold(bestRequest(fan(1), 3));
    expect(together).toEqual({ ok: false, reason: "sold_out", message: expect.stringContaining("allow split") });
    const apart = held(await inventory.hold(bestRequest(fan(1), 3, { allowSplit: true })));
    expect(apart.seats.map((s) => s.seatIndex).sort()).toEqual([0, 2, 3]);
    const short = await inventory.hold(bestRequest(fan(2), 2, { allowSplit: true }));
    expect(short).toMatchObject({ ok: false, reason: "sold_out" });
    expect(short.ok ? "" : short.message).not.toContain("allow split");
  });

  it("holds general admission from a counter that never oversells", async () => {
    const { inventory, fan, db, event, venue } = await calmEvent();
    const pit = venue.sections.find((s) => s.label === "PIT")?.id ?? "";
    const first = held(await inventory.hold(bestRequest(fan(0), 4, { priceTier: "GA" })));
    expect(first.seats).toEqual([]);
    expect(first.generalAdmission).toEqual([{ sectionId: pit, section: "PIT", quantity: 4, priceTier: "GA", priceCents: 3000 }]);
    expect(first.totalCents).toBe(12_000);
    held(await inventory.hold(bestRequest(fan(1), 4, { sectionId: pit })));
    expect(refusal(await inventory.hold(bestRequest(fan(2), 3, { priceTier: "GA" })))).toBe("sold_out");
    held(await inventory.hold(bestRequest(fan(2), 2, { priceTier: "GA" })));
    expect((await inventory.availability()).sections.find((s) => s.label === "PIT")).toMatchObject({ kind: "general_admission", capacity: 10, available: 0 });
    const counter = await db.execute<{ sold: number }>(sql`select sold from event_ga_sections where event_id = ${event.id}`);
    expect(counter.rows).toEqual([{ sold: 0 }]); // held, not sold
  });

  it("refuses a seat someone else holds, all or nothing", async () => {
    const { inventory, fan, db, event } = await calmEvent();
    const winner = held(await inventory.hold(seatsRequest(fan(0), [0, 1])));
    expect(await inventory.hold(seatsRequest(fan(1), [1, 2]))).toEqual({ ok: false, reason: "seat_taken", message: expect.any(String) });
    expect(await seatRows(db, event.id, [1, 2])).toEqual([
      { seat_index: 1, status: "held", hold_id: winner.holdId },
      { seat_index: 2, status: "available", hold_id: null },
    ]);
    held(await inventory.hold(seatsRequest(fan(1), [2])));
    const fanHolds = await db.execute<{ n: number }>(sql`select count(*)::int as n from holds where event_id = ${event.id} and account_id = ${fan(1)}`);
    expect(fanHolds.rows[0]?.n).toBe(1);
  });

  it("keeps each account within the purchase limit, counting live and confirmed holds only", async () => {
    const { inventory, fan, advance } = await calmEvent({ purchaseLimit: 4 });
    const first = held(await inventory.hold(seatsRequest(fan(0), [0, 1, 2])));
    expect(refusal(await inventory.hold(seatsRequest(fan(0), [3, 4])))).toBe("over_limit");
    expect(refusal(await inventory.hold(bestRequest(fan(0), 2)))).toBe("over_limit");
    expect(refusal(await inventory.hold(bestRequest(fan(0), 2, { priceTier: "GA" })))).toBe("over_limit");
    held(await inventory.confirm({ requestId: "pay-1", holdId: first.holdId, allowLapsed: false }));
    const last = held(await inventory.hold(seatsRequest(fan(0), [3])));
    advance(last.expiresAt - last.createdAt); // the live hold lapses; the confirmed one still counts
    expect(refusal(await inventory.hold(seatsRequest(fan(0), [4, 5])))).toBe("over_limit");
    held(await inventory.hold(seatsRequest(fan(0), [4])));
  });

  it("keeps the purchase limit under concurrent holds by one account", async () => {
    const { inventory, fan, db, event } = await calmEvent({ purchaseLimit: 4 });
    const others = [testDb(), testDb()].map((handle) => new PostgresInventory(handle, event.id));
    const all = [inventory, ...others];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (all[i % all.length] ?? inventory).hold(seatsRequest(fan(0), [i]))));
    expect(results.filter((r) => r.ok)).toHaveLength(4);
    expect(results.filter((r) => !r.ok).map(refusal)).toEqual(Array(8).fill("over_limit"));
    const places = await db.execute<{ n: number }>(sql`select count(*)::int as n from event_seats where event_id = ${event.id} and status = 'held'`);
    expect(places.rows[0]?.n).toBe(4);
  });

  it("allows one attempt per attempt key per interval, and does not record refused-too-fast requests", async () => {
    const { inventory, fan, advance } = await calmEvent();
    held(await inventory.hold(seatsRequest(fan(0), [0], { attemptKey: "token-1" })));
    advance(ATTEMPT_INTERVAL_MS - 1);
    const fast = seatsRequest(fan(1), [1], { attemptKey: "token-1" });
    expect(refusal(await inventory.hold(fast))).toBe("too_fast");
    advance(1);
    const retried = held(await inventory.hold(fast)); // same request id: too_fast was not recorded
    expect(retried.seats.map((s) => s.seatIndex)).toEqual([1]);
    // A refused attempt still uses the key up.
    advance(ATTEMPT_INTERVAL_MS);
    expect(refusal(await inventory.hold(seatsRequest(fan(2), [0], { attemptKey: "token-1" })))).toBe("seat_taken");
    expect(refusal(await inventory.hold(seatsRequest(fan(2), [2], { attemptKey: "token-1" })))).toBe("too_fast");
  });

  it("lets only one of several racing attempts with the same key through", async () => {
    const { event, fan, inventory } = await calmEvent();
    const all = [inventory, new PostgresInventory(testDb(), event.id), new PostgresInventory(testDb(), event.id)];
    const results = await Promise.all(all.map((inv, i) => inv.hold(seatsRequest(fan(i), [i], { attemptKey: "shared" }))));
    expect(results.map(refusal).sort()).toEqual(["ok", "too_fast", "too_fast"]);
  });

  it("answers a retried request with its first result", async () => {
    const { inventory, fan, advance } = await calmEvent();
    const request = seatsRequest(fan(0), [0, 1]);
    const first = held(await inventory.hold(request));
    advance(ATTEMPT_INTERVAL_MS);
    expect(await inventory.hold({ ...request, attemptKey: "another" })).toEqual({ ok: true, hold: first });
    held(await inventory.release({ accountId: fan(0), requestId: "rel", holdId: first.holdId }));
    // A success replays as the hold's current view, not a new hold.
    expect(await inventory.hold(request)).toEqual({ ok: true, hold: { ...first, status: "released" } });
    expect(await inventory.accountHolds(fan(0))).toHaveLength(1);

    const blocker = held(await inventory.hold(seatsRequest(fan(1), [5])));
    const refused = seatsRequest(fan(2), [5]);
    const failure = await inventory.hold(refused);
    expect(refusal(failure)).toBe("seat_taken");
    held(await inventory.release({ accountId: fan(1), requestId: "rel-2", holdId: blocker.holdId }));
    advance(ATTEMPT_INTERVAL_MS);
    expect(await inventory.hold(refused)).toEqual(failure); // recorded failures replay too
    // The same request id from another account is another request.
    held(await inventory.hold({ ...refused, accountId: fan(3), attemptKey: "key-other" }));
  });

  it("refuses holds outside the sale window without recording them", async () => {
    const { inventory, fan, event, setTime, clock } = await calmEvent();
    const open = clock();
    setTime(Date.parse(event.saleStartsAt) - 1);
    const early = seatsRequest(fan(0), [0]);
    expect(refusal(await inventory.hold(early))).toBe("not_on_sale");
    setTime(Date.parse(event.startsAt));
    expect(refusal(await inventory.hold(seatsRequest(fan(0), [0])))).toBe("not_on_sale");
    setTime(open);
    held(await inventory.hold(early));
    expect(refusal(await new PostgresInventory(testDb(), crypto.randomUUID(), clock).hold(seatsRequest(fan(0), [0])))).toBe("not_on_sale");
  });
});

describe("PostgresInventory expiry, release and confirmation", () => {
  it("treats an expired hold's seats as available with no sweep", async () => {
    const { inventory, fan, setTime, db, event } = await calmEvent();
    const hold = held(await inventory.hold(seatsRequest(fan(0), [0, 1])));
    setTime(hold.expiresAt - 1);
    expect(refusal(await inventory.hold(seatsRequest(fan(1), [1])))).toBe("seat_taken");
    expect((await inventory.getHold(hold.holdId))?.status).toBe("live");
    setTime(hold.expiresAt);
    expect((await inventory.getHold(hold.holdId))?.status).toBe("expired");
    expect((await inventory.availability()).sections.find((s) => s.label === "A")?.available).toBe(18);
    const taker = held(await inventory.hold(seatsRequest(fan(1), [1, 2])));
    expect(await seatRows(db, event.id, [0, 1])).toEqual([
      { seat_index: 0, status: "held", hold_id: hold.holdId }, // stale but free: nobody swept it
      { seat_index: 1, status: "held", hold_id: taker.holdId },
    ]);
    const stored = await db.execute<{ status: string }>(sql`select status from holds where id = ${hold.holdId}`);
    expect(stored.rows[0]?.status).toBe("expired"); // marked lazily by the taker
    expect(refusal(await inventory.confirm({ requestId: "pay", holdId: hold.holdId, allowLapsed: false }))).toBe("hold_expired");
    expect(refusal(await inventory.confirm({ requestId: "pay", holdId: hold.holdId, allowLapsed: true }))).toBe("hold_expired");
  });

  it("returns expired general-admission places to the counter", async () => {
    const { inventory, fan, setTime } = await calmEvent();
    const hold = held(await inventory.hold(bestRequest(fan(0), 4, { priceTier: "GA" })));
    held(await inventory.hold(bestRequest(fan(1), 4, { priceTier: "GA" })));
    expect(refusal(await inventory.hold(bestRequest(fan(2), 4, { priceTier: "GA" })))).toBe("sold_out");
    setTime(hold.expiresAt + 60_000 + 1); // past both holds' jitter
    held(await inventory.hold(bestRequest(fan(2), 4, { priceTier: "GA" })));
    expect((await inventory.availability()).sections.find((s) => s.label === "PIT")?.available).toBe(6);
  });

  it("releases a live hold for its owner only, idempotently", async () => {
    const { inventory, fan, db, event } = await calmEvent();
    const hold = held(await inventory.hold(seatsRequest(fan(0), [0, 1])));
    expect(refusal(await inventory.release({ accountId: fan(1), requestId: "r1", holdId: hold.holdId }))).toBe("hold_not_found");
    expect(refusal(await inventory.release({ accountId: fan(0), requestId: "r1", holdId: crypto.randomUUID() }))).toBe("hold_not_found");
    expect(refusal(await inventory.release({ accountId: fan(0), requestId: "r1", holdId: "nope" }))).toBe("hold_not_found");
    const released = held(await inventory.release({ accountId: fan(0), requestId: "r2", holdId: hold.holdId }));
    expect(released).toEqual({ ...hold, status: "released" });
    expect(await seatRows(db, event.id, [0, 1])).toEqual([
      { seat_index: 0, status: "available", hold_id: null },
      { seat_index: 1, status: "available", hold_id: null },
    ]);
    expect(held(await inventory.release({ accountId: fan(0), requestId: "r3", holdId: hold.holdId }))).toEqual(released);
    held(await inventory.hold(seatsRequest(fan(1), [0, 1])));
    // Releasing the old hold again must not free the new holder's seats.
    held(await inventory.release({ accountId: fan(0), requestId: "r4", holdId: hold.holdId }));
    expect((await seatRows(db, event.id, [0, 1])).map((r) => r.status)).toEqual(["held", "held"]);
  });

  it("reports an expired hold as expired when its owner releases it", async () => {
    const { inventory, fan, setTime } = await calmEvent();
    const hold = held(await inventory.hold(seatsRequest(fan(0), [0])));
    setTime(hold.expiresAt);
    expect(held(await inventory.release({ accountId: fan(0), requestId: "r", holdId: hold.holdId })).status).toBe("expired");
  });

  it("confirms a live hold: seats sold, general admission counted, and confirming again returns it", async () => {
    const { inventory, fan, db, event } = await calmEvent();
    const seated = held(await inventory.hold(seatsRequest(fan(0), [0, 1])));
    const ga = held(await inventory.hold(bestRequest(fan(1), 3, { priceTier: "GA" })));
    const confirmed = held(await inventory.confirm({ requestId: "pay-1", holdId: seated.holdId, allowLapsed: false }));
    expect(confirmed).toEqual({ ...seated, status: "confirmed" });
    expect((await seatRows(db, event.id, [0, 1])).map((r) => [r.status, r.hold_id])).toEqual([
      ["sold", seated.holdId],
      ["sold", seated.holdId],
    ]);
    held(await inventory.confirm({ requestId: "pay-2", holdId: ga.holdId, allowLapsed: false }));
    expect(held(await inventory.confirm({ requestId: "pay-2", holdId: ga.holdId, allowLapsed: false })).status).toBe("confirmed");
    const counter = await db.execute<{ sold: number }>(sql`select sold from event_ga_sections where event_id = ${event.id}`);
    expect(counter.rows).toEqual([{ sold: 3 }]);
    expect((await inventory.availability()).sections.find((s) => s.label === "PIT")?.available).toBe(7);
    expect(refusal(await inventory.release({ accountId: fan(0), requestId: "r", holdId: seated.holdId }))).toBe("hold_confirmed");
    expect(refusal(await inventory.confirm({ requestId: "x", holdId: crypto.randomUUID(), allowLapsed: true }))).toBe("hold_not_found");
  });

  it("confirms a lapsed hold only when allowed and its places are still free", async () => {
    const { inventory, fan, setTime, db, event } = await calmEvent();
    const lapsedFree = held(await inventory.hold(seatsRequest(fan(0), [0, 1])));
    const released = held(await inventory.hold(seatsRequest(fan(1), [5])));
    held(await inventory.release({ accountId: fan(1), requestId: "r", holdId: released.holdId }));
    setTime(lapsedFree.expiresAt);
    expect(refusal(await inventory.confirm({ requestId: "p", holdId: lapsedFree.holdId, allowLapsed: false }))).toBe("hold_expired");
    expect(held(await inventory.confirm({ requestId: "p", holdId: lapsedFree.holdId, allowLapsed: true })).status).toBe("confirmed");
    expect((await seatRows(db, event.id, [0, 1])).map((r) => r.status)).toEqual(["sold", "sold"]);

    held(await inventory.hold(seatsRequest(fan(2), [5]))); // someone else takes the released seat
    expect(await inventory.confirm({ requestId: "p", holdId: released.holdId, allowLapsed: true })).toEqual({
      ok: false,
      reason: "hold_expired",
      message: expect.stringContaining("taken"),
    });
    expect((await inventory.getHold(released.holdId))?.status).toBe("released");
  });

  it("confirms a lapsed hold only within the purchase limit, since it stopped counting", async () => {
    const { inventory, fan, setTime, db, event } = await calmEvent({ purchaseLimit: 4 });
    const lapsed = held(await inventory.hold(seatsRequest(fan(0), [0, 1, 2])));
    setTime(lapsed.expiresAt);
    const since = held(await inventory.hold(seatsRequest(fan(0), [3, 4])));
    expect(refusal(await inventory.confirm({ requestId: "p", holdId: lapsed.holdId, allowLapsed: true }))).toBe("over_limit");
    expect((await seatRows(db, event.id, [0, 1, 2])).map((r) => r.status)).toEqual(["held", "held", "held"]); // untouched, and free by time
    held(await inventory.release({ accountId: fan(0), requestId: "r", holdId: since.holdId }));
    // The same request is refused again (its payment's refund may be under way on the first answer); another is not.
    expect(refusal(await inventory.confirm({ requestId: "p", holdId: lapsed.holdId, allowLapsed: true }))).toBe("over_limit");
    expect(held(await inventory.confirm({ requestId: "p2", holdId: lapsed.holdId, allowLapsed: true })).status).toBe("confirmed");
  });

  it("confirms a lapsed general-admission hold only while the section has room", async () => {
    const { inventory, fan, setTime, db, event } = await calmEvent();
    const first = held(await inventory.hold(bestRequest(fan(0), 4, { priceTier: "GA" })));
    const second = held(await inventory.hold(bestRequest(fan(1), 4, { priceTier: "GA" })));
    setTime(Math.max(first.expiresAt, second.expiresAt));
    held(await inventory.hold(bestRequest(fan(2), 4, { priceTier: "GA" })));
    held(await inventory.confirm({ requestId: "p1", holdId: first.holdId, allowLapsed: true })); // 10 - 4 held >= 4
    expect(refusal(await inventory.confirm({ requestId: "p2", holdId: second.holdId, allowLapsed: true }))).toBe("hold_expired"); // 2 left
    const counter = await db.execute<{ sold: number }>(sql`select sold from event_ga_sections where event_id = ${event.id}`);
    expect(counter.rows).toEqual([{ sold: 4 }]);
  });
});

describe("PostgresInventory availability", () => {
  it("counts places per section and sets one bit per available seat", async () => {
    const { inventory, fan, venue, event, clock } = await calmEvent();
    const fresh = await inventory.availability();
    expect(fresh).toMatchObject({ eventId: event.id, seatCount: 36, generatedAt: clock() });
    expect([...fresh.bitmap]).toEqual([0xff, 0xff, 0xff, 0xff, 0xf0]);
    expect(fresh.sections).toEqual([
      { sectionId: venue.sections[0]?.id, label: "A", kind: "seated", priceTier: "A", capacity: 18, available: 18 },
      { sectionId: venue.sections[1]?.id, label: "B", kind: "seated", priceTier: "B", capacity: 18, available: 18 },
      { sectionId: venue.sections[2]?.id, label: "PIT", kind: "general_admission", priceTier: "GA", capacity: 10, available: 10 },
    ]);
    held(await inventory.hold(seatsRequest(fan(0), [0, 9])));
    const sold = held(await inventory.hold(seatsRequest(fan(1), [35])));
    held(await inventory.confirm({ requestId: "p", holdId: sold.holdId, allowLapsed: false }));
    held(await inventory.hold(bestRequest(fan(2), 2, { priceTier: "GA" })));
    const after = await inventory.availability();
    expect([...after.bitmap]).toEqual([0x7f, 0xbf, 0xff, 0xff, 0xe0]);
    expect(after.sections.map((s) => s.available)).toEqual([16, 17, 8]);
  });
});

/** A row of exactly three seats: every hold fights over the same places. */
const threeSeats = (): SeatingChart => ({ name: `Three ${crypto.randomUUID()}`, sections: [{ label: "S", priceTier: "T", rows: [{ label: "1", seats: 3 }] }] });

/** Inventories of one event on separate pools: the Neon Pool holds 4 connections each. */
function inventoriesOnPools(eventId: string, pools: number): PostgresInventory[] {
  return Array.from({ length: pools }, () => new PostgresInventory(testDb(), eventId));
}

async function liveSeatOwners(db: Db, eventId: string) {
  const rows = await db.execute<{ seat_index: number; holds: number }>(sql`
    select hi.seat_index, count(*)::int as holds
    from hold_items hi join holds h on h.id = hi.hold_id
    where h.event_id = ${eventId} and h.status = 'live' and hi.seat_index is not null
    group by hi.seat_index order by hi.seat_index`);
  return rows.rows;
}

describe("PostgresInventory under concurrency", () => {
  it("gives each of 3 seats to exactly one of 200 simultaneous fans", { timeout: 60_000 }, async () => {
    const { event, accounts, db } = await calmEvent({ chart: threeSeats(), accounts: 200 });
    const inventories = inventoriesOnPools(event.id, 12);
    const results = await Promise.all(
      accounts.map((accountId, i) => (inventories[i % inventories.length] as PostgresInventory).hold(seatsRequest(accountId, [i % 3]))),
    );
    const winners = results.flatMap((r) => (r.ok ? [r.hold] : []));
    expect(winners.map((w) => w.seats[0]?.seatIndex).sort()).toEqual([0, 1, 2]);
    expect(results.filter((r) => !r.ok).map(refusal)).toEqual(Array(197).fill("seat_taken"));
    const seatState = await seatRows(db, event.id, [0, 1, 2]);
    for (const winner of winners) {
      const seat = winner.seats[0]?.seatIndex;
      expect(seatState.find((s) => s.seat_index === seat)).toEqual({ seat_index: seat, status: "held", hold_id: winner.holdId });
    }
    expect(await liveSeatOwners(db, event.id)).toEqual([0, 1, 2].map((seat_index) => ({ seat_index, holds: 1 })));
  });

  it("never holds a seat twice under random racing seat and best-available requests", { timeout: 120_000 }, async () => {
    const request = fc.oneof(
      fc.record({ kind: fc.constant("seats" as const), seats: fc.subarray([0, 1, 2], { minLength: 1 }) }),
      fc.record({ kind: fc.constant("best" as const), quantity: fc.integer({ min: 1, max: 3 }), allowSplit: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 200, maxLength: 200 }), async (requests) => {
        const { event, accounts, db } = await calmEvent({ chart: threeSeats(), accounts: 200 });
        const inventories = inventoriesOnPools(event.id, 12);
        const results = await Promise.all(
          requests.map((r, i) => {
            const accountId = accounts[i] ?? "";
            const inventory = inventories[i % inventories.length] as PostgresInventory;
            return inventory.hold(r.kind === "seats" ? seatsRequest(accountId, r.seats) : bestRequest(accountId, r.quantity, { allowSplit: r.allowSplit }));
          }),
        );
        const owner = new Map<number, string>();
        results.forEach((result, i) => {
          if (!result.ok) {
            expect(["seat_taken", "sold_out"]).toContain(result.reason);
            return;
          }
          const asked = requests[i];
          const got = result.hold.seats.map((s) => s.seatIndex);
          if (asked?.kind === "seats") expect(got).toEqual(asked.seats);
          else expect(got).toHaveLength(asked?.quantity ?? 0);
          for (const seat of got) {
            expect(owner.has(seat)).toBe(false);
            owner.set(seat, result.hold.holdId);
          }
        });
        // A refused exact-seats request names a seat somebody won.
        results.forEach((result, i) => {
          const asked = requests[i];
          if (!result.ok && asked?.kind === "seats") expect(asked.seats.some((seat) => owner.has(seat))).toBe(true);
        });
        const seatState = await seatRows(db, event.id, [0, 1, 2]);
        for (const row of seatState) expect(row.hold_id).toBe(owner.get(row.seat_index) ?? null);
        expect((await liveSeatOwners(db, event.id)).every((row) => row.holds === 1)).toBe(true);
      }),
      { numRuns: 3, endOnFailure: true },
    );
  });

  it("never oversells general admission under simultaneous holds", { timeout: 60_000 }, async () => {
    const { event, accounts, inventory } = await calmEvent({ accounts: 60 });
    const inventories = inventoriesOnPools(event.id, 8);
    const quantities = accounts.map((_, i) => 1 + (i % 3));
    const results = await Promise.all(
      accounts.map((accountId, i) => (inventories[i % inventories.length] as PostgresInventory).hold(bestRequest(accountId, quantities[i] ?? 1, { priceTier: "GA" }))),
    );
    const heldPlaces = results.reduce((sum, r) => sum + (r.ok ? (r.hold.generalAdmission[0]?.quantity ?? 0) : 0), 0);
    expect(heldPlaces).toBeLessThanOrEqual(10);
    const left = (await inventory.availability()).sections.find((s) => s.label === "PIT")?.available ?? -1;
    expect(left).toBe(10 - heldPlaces);
    // Every refusal was right when made: places only ran out.
    results.forEach((r, i) => {
      if (!r.ok) {
        expect(r.reason).toBe("sold_out");
        expect(quantities[i]).toBeGreaterThan(left);
      }
    });
  });
});
