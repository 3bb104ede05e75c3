/**
 * Sold out is "for now": when every place is held or sold the room says so
 * and re-checks every SOLD_OUT_RECHECK_MS (no spinning); when places come
 * back (a declined payment, a hold that runs out, a refund) they are the
 * waitlist's first while fans wait on it (and the line's at once while
 * nobody does), and then fans beyond the old threshold are admitted in
 * queue order, exactly as many as the returned places serve. After the sale
 * ends nobody more is admitted and the alarm stops.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WAITLIST_FIRST_MS, type EventInventory } from "../../../durable-objects/event-inventory";
import { SOLD_OUT_RECHECK_MS, TICK_MS, type WaitingRoom } from "../../../durable-objects/waiting-room";
import type { Db } from "../../../core/db/client";
import { waitlistEntries } from "../../../core/db/schema";
import type { HoldView } from "../../../core/holds/contract";
import { joinWaitlist } from "../../../workers/waitlist/entries";
import { serveWaitlist } from "../../../workers/waitlist/serve";
import type { WorkContext } from "../../../workers/work-context";
import type { QueueState } from "../../../core/waiting-room/queue-state";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { withDb } from "../../fixtures/db";
import { hotSale, type HotSale } from "../../fixtures/hot-sale";
import { inventoryOf, lobbyExchange, lobbyJoin, promisedPlaces, publishedState, roomOf } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

interface QueuedFan {
  accountId: string;
  orderKey: number;
}

/** A sold-out-able sale: 2 x 2 x 4 seats and 6 standing places (22), 2 per fan, so 11 fans take everything. */
async function smallSale(accounts: number): Promise<{ sale: HotSale; room: DurableObjectStub<WaitingRoom>; inventory: DurableObjectStub<EventInventory> }> {
  const sale = await hotSale({ chart: smallChart(2, 4, 6), accounts, purchaseLimit: 2, admissionRatePerSecond: 100, saleStartsInMs: 600_000 });
  expect(sale.capacity).toBe(22);
  const inventory = inventoryOf(sale.eventId);
  await inventory.prepare(sale.eventId);
  return { sale, room: roomOf(sale.eventId), inventory };
}

/** Everyone in `accountIds` joins the lobby; returns them in queue order. */
async function lineUp(eventId: string, accountIds: string[]): Promise<QueuedFan[]> {
  const line: QueuedFan[] = [];
  for (const accountId of accountIds) {
    const joined = await lobbyJoin(eventId, accountId);
    if (!joined.ok) throw new Error(`join refused: ${joined.reason}`);
    line.push({ accountId, orderKey: joined.orderKey });
  }
  return line.sort((a, b) => a.orderKey - b.orderKey);
}

function fanAt(line: QueuedFan[], i: number): QueuedFan {
  const fan = line[i];
  if (!fan) throw new Error(`nobody at place ${i}`);
  return fan;
}

/** Runs the room's alarm at `at`; returns the document it published and when it will look again. */
async function tickAt(room: DurableObjectStub<WaitingRoom>, eventId: string, at: number): Promise<{ state: QueueState; nextAlarm: number | null }> {
  setClock(at);
  expect(await runDurableObjectAlarm(room)).toBe(true);
  const state = await publishedState(eventId);
  if (!state) throw new Error("nothing published");
  const nextAlarm = await runInDurableObject(room, (_room: WaitingRoom, storage) => storage.storage.getAlarm());
  return { state, nextAlarm };
}

/** An admitted fan exchanges their ticket and holds 2 best-available places with the admission. */
async function holdTwo(eventId: string, inventory: DurableObjectStub<EventInventory>, fan: QueuedFan): Promise<HoldView> {
  const exchange = await lobbyExchange(eventId, fan.accountId, fan.orderKey);
  if (!exchange.ok) throw new Error(`exchange refused: ${exchange.reason}`);
  const result = await inventory.hold({ kind: "best", accountId: fan.accountId, attemptKey: exchange.admissionId, requestId: crypto.randomUUID(), quantity: 2, allowSplit: true });
  if (!result.ok) throw new Error(`hold refused: ${result.reason}`);
  return result.hold;
}

async function confirm(inventory: DurableObjectStub<EventInventory>, hold: HoldView): Promise<void> {
  expect((await inventory.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: false })).ok).toBe(true);
}

describe("WaitingRoom after a sell-out", () => {
  it("re-checks slowly while every place is held, and admits past the old threshold as places come back: a declined payment, a hold that ran out, refunds", async () => {
    startFakeClock();
    const { sale, room, inventory } = await smallSale(17);
    const line = await lineUp(sale.eventId, sale.accounts);
    const start = sale.saleStartsAt;

    let tick = await tickAt(room, sale.eventId, start + 1_000);
    expect(tick.state).toMatchObject({ admitted: 11, soldOut: false, available: 22 });
    const holds: HoldView[] = [];
    for (let i = 0; i < 11; i++) holds.push(await holdTwo(sale.eventId, inventory, fanAt(line, i)));

    // Every place is held, none paid yet: sold out for now, and the room looks again in 15 s, not every second.
    tick = await tickAt(room, sale.eventId, start + 2_000);
    expect(tick.state).toMatchObject({ soldOut: true, available: 0, held: 22, admitted: 11, threshold: fanAt(line, 10).orderKey });
    expect(tick.nextAlarm).toBe(start + 2_000 + SOLD_OUT_RECHECK_MS);
    expect(await lobbyExchange(sale.eventId, fanAt(line, 11).accountId, fanAt(line, 11).orderKey)).toMatchObject({ ok: false, reason: "sold_out" });
    for (const hold of holds.slice(0, 9)) await confirm(inventory, hold);

    // A declined payment releases 2 places. Fans wait on the waitlist (a join said so), so the places are the
    // waitlist's first: the line stays shut for WAITLIST_FIRST_MS.
    const declined = holds[9];
    if (!declined) throw new Error("no hold to decline");
    const declinedAt = start + 3_000;
    setClock(declinedAt);
    await inventory.noteWaitlist(true);
    expect((await inventory.release({ accountId: declined.accountId, requestId: crypto.randomUUID(), holdId: declined.holdId })).ok).toBe(true);
    for (const at of [declinedAt, declinedAt + WAITLIST_FIRST_MS - 1_000]) {
      tick = await tickAt(room, sale.eventId, at);
      expect(tick.state).toMatchObject({ soldOut: true, available: 2, admitted: 11, threshold: fanAt(line, 10).orderKey });
      expect(tick.nextAlarm).toBe(at + SOLD_OUT_RECHECK_MS);
      expect(await promisedPlaces(sale.eventId)).toBe(0);
    }

    // Nobody on the waitlist took them: the next fan in line, and only one (2 places, 2 per fan), is admitted.
    let at = declinedAt + WAITLIST_FIRST_MS + 1;
    tick = await tickAt(room, sale.eventId, at);
    expect(tick.state).toMatchObject({ soldOut: false, available: 2, admitted: 12, threshold: fanAt(line, 11).orderKey });
    expect(tick.nextAlarm).toBe(at + TICK_MS);
    expect(await promisedPlaces(sale.eventId)).toBe(2);
    expect(await lobbyExchange(sale.eventId, fanAt(line, 12).accountId, fanAt(line, 12).orderKey)).toMatchObject({ ok: false, reason: "not_admitted_yet" });
    at += TICK_MS;
    tick = await tickAt(room, sale.eventId, at);
    expect(tick.state).toMatchObject({ soldOut: false, admitted: 12 }); // the 2 places are promised: nobody more
    const bought = await holdTwo(sale.eventId, inventory, fanAt(line, 11));
    await confirm(inventory, bought);
    holds.push(bought);
    at += TICK_MS;
    tick = await tickAt(room, sale.eventId, at);
    expect(tick.state).toMatchObject({ soldOut: true, available: 0, admitted: 12 });

    // The 11th fan never pays: their hold runs out and 2 places come back. The waitlist's last pass left nobody
    // waiting, so they are the line's at once: one more fan is admitted at the next tick.
    const lapsing = holds[10];
    if (!lapsing) throw new Error("no hold to lapse");
    const lapsedAt = lapsing.expiresAt + 1;
    setClock(lapsedAt - 1_000);
    await inventory.noteWaitlist(false);
    setClock(lapsedAt);
    expect(await runDurableObjectAlarm(inventory)).toBe(true);
    tick = await tickAt(room, sale.eventId, lapsedAt);
    expect(tick.state).toMatchObject({ soldOut: false, available: 2, admitted: 13, threshold: fanAt(line, 12).orderKey });
    const boughtToo = await holdTwo(sale.eventId, inventory, fanAt(line, 12));
    await confirm(inventory, boughtToo);
    at = lapsedAt + 1_000;
    tick = await tickAt(room, sale.eventId, at);
    expect(tick.state).toMatchObject({ soldOut: true, available: 0, held: 0, admitted: 13 });

    // Two orders are refunded (4 places) while fans wait on the waitlist; its pass finds nobody for them and
    // drains the outbox: at once, exactly two more fans are admitted, and the fans behind them keep waiting.
    at += 1_000;
    setClock(at);
    await inventory.noteWaitlist(true);
    for (const hold of holds.slice(0, 2)) expect((await inventory.unsell({ requestId: crypto.randomUUID(), holdId: hold.holdId })).ok).toBe(true);
    tick = await tickAt(room, sale.eventId, at);
    expect(tick.state).toMatchObject({ soldOut: true, available: 4, admitted: 13 });
    expect((await inventory.takeReturns(100)).reduce((sum, r) => sum + r.places, 0)).toBe(2 + 2 + 4);
    tick = await tickAt(room, sale.eventId, at + 1_000);
    expect(tick.state).toMatchObject({ soldOut: false, available: 4, admitted: 15, threshold: fanAt(line, 14).orderKey });
    expect(await promisedPlaces(sale.eventId)).toBe(4);
    tick = await tickAt(room, sale.eventId, at + 2_000);
    expect(tick.state).toMatchObject({ admitted: 15, threshold: fanAt(line, 14).orderKey });
  });

  it("stops for good at the end of the sale, whatever comes back", async () => {
    startFakeClock();
    const { sale, room, inventory } = await smallSale(14);
    const line = await lineUp(sale.eventId, sale.accounts);
    await tickAt(room, sale.eventId, sale.saleStartsAt + 1_000);
    const holds: HoldView[] = [];
    for (let i = 0; i < 11; i++) holds.push(await holdTwo(sale.eventId, inventory, fanAt(line, i)));
    for (const hold of holds) await confirm(inventory, hold);
    let tick = await tickAt(room, sale.eventId, sale.saleStartsAt + 2_000);
    expect(tick.state).toMatchObject({ soldOut: true, admitted: 11 });

    // A refund after the end: nobody is admitted to it, the document says the sale is over, and the alarm runs out.
    setClock(sale.saleEndsAt - 1_000);
    expect((await inventory.unsell({ requestId: crypto.randomUUID(), holdId: holds[0]?.holdId ?? "" })).ok).toBe(true);
    expect(await inventory.takeReturns(100)).toHaveLength(1);
    tick = await tickAt(room, sale.eventId, sale.saleEndsAt);
    expect(tick.state).toMatchObject({ admitted: 11, threshold: fanAt(line, 10).orderKey });
    expect(tick.state.updatedAt).toBeGreaterThanOrEqual(tick.state.saleEndsAt);
    let ticks = 0;
    while (tick.nextAlarm !== null) {
      expect(++ticks).toBeLessThan(10);
      tick = await tickAt(room, sale.eventId, tick.nextAlarm);
      expect(tick.state).toMatchObject({ admitted: 11, threshold: fanAt(line, 10).orderKey });
    }
    expect(await promisedPlaces(sale.eventId)).toBe(0);
    expect(await lobbyExchange(sale.eventId, fanAt(line, 11).accountId, fanAt(line, 11).orderKey)).toMatchObject({ ok: false });
  });

  it("offers returned places to the waitlist first; the line gets only what the waitlist leaves, and nothing is promised twice", async () => {
    startFakeClock();
    // Two years ahead: to every other test file's cron this sale has not opened, so no other pass serves its waitlist.
    setClock(Date.now() + 2 * 365 * 86_400_000);
    const { sale, room, inventory } = await smallSale(15);
    const [waitlistFan, ...queued] = sale.accounts;
    if (!waitlistFan) throw new Error("no accounts");
    const line = await lineUp(sale.eventId, queued);
    await tickAt(room, sale.eventId, sale.saleStartsAt + 1_000);
    const holds: HoldView[] = [];
    for (let i = 0; i < 11; i++) holds.push(await holdTwo(sale.eventId, inventory, fanAt(line, i)));
    for (const hold of holds) await confirm(inventory, hold);
    let tick = await tickAt(room, sale.eventId, sale.saleStartsAt + 2_000);
    expect(tick.state).toMatchObject({ soldOut: true, held: 0, admitted: 11 });

    await withDb(async (db) => {
      const pending: Promise<unknown>[] = [];
      const ctx: WorkContext = { env, db, keepAlive: (promise) => pending.push(promise) };
      try {
        await joinWaitlist(ctx, { eventId: sale.eventId, accountId: waitlistFan, quantity: 1 });
        // An order of 2 is refunded: before the waitlist's pass the line gets none of it.
        expect((await inventory.unsell({ requestId: crypto.randomUUID(), holdId: holds[0]?.holdId ?? "" })).ok).toBe(true);
        tick = await tickAt(room, sale.eventId, sale.saleStartsAt + 3_000);
        expect(tick.state).toMatchObject({ soldOut: true, available: 2, admitted: 11 });
        expect(await promisedPlaces(sale.eventId)).toBe(0);

        // The waitlist's pass offers 1 place to its fan (a hold), and drains the returns: the line gets the other one.
        expect(await serveWaitlist(ctx, sale.eventId)).toMatchObject({ offered: 1, returnedPlaces: 2 });
        const offer = (await inventory.accountHolds(waitlistFan)).filter((h) => h.status === "live");
        expect(offer.map((h) => h.seats.length + h.generalAdmission.reduce((sum, g) => sum + g.quantity, 0))).toEqual([1]);
        tick = await tickAt(room, sale.eventId, sale.saleStartsAt + 4_000);
        expect(tick.state).toMatchObject({ soldOut: false, available: 1, held: 1, admitted: 12, threshold: fanAt(line, 11).orderKey });
        expect(await promisedPlaces(sale.eventId)).toBe(1);
        tick = await tickAt(room, sale.eventId, sale.saleStartsAt + 5_000);
        expect(tick.state).toMatchObject({ admitted: 12 });

        // Its one fan has an offer, so nobody waits any more, and the pass told the inventory so: an order refunded
        // now is the line's at once (within the join's minute and a half, which no longer counts).
        expect((await inventory.unsell({ requestId: crypto.randomUUID(), holdId: holds[1]?.holdId ?? "" })).ok).toBe(true);
        tick = await tickAt(room, sale.eventId, sale.saleStartsAt + 6_000);
        expect(tick.state).toMatchObject({ soldOut: false, available: 3, admitted: 13, threshold: fanAt(line, 12).orderKey });
      } finally {
        await Promise.allSettled(pending);
        await closeWaitlist(db, sale.eventId);
      }
    });
  });
});

/** Leaves no open entry behind, so no other file's cron keeps visiting this event. */
async function closeWaitlist(db: Db, eventId: string): Promise<void> {
  await db.update(waitlistEntries).set({ status: "cancelled" }).where(eq(waitlistEntries.eventId, eventId));
}
