/**
 * The admission budget, as a model test: random lobby and late joins, ticks
 * of the room's alarm, holds by admitted fans (attempt key = their admission
 * id), purchases, abandoned holds that expire, admitted fans who go idle
 * past the promise timeout and come back while their admission is still
 * valid, payments that succeed after their hold lapsed and the room ticked, and places coming back after a sell-out: released holds (a declined
 * payment), refunds, waitlist offers (holds in any fan's name, no admission),
 * fans joining the waitlist, the waitlist's pass draining the outbox of
 * returns (and saying whether fans still wait), and time passing beyond the
 * waitlist's turn. After every step:
 *  - places promised to admitted fans who hold nothing yet + held + sold never
 *    exceed the capacity (admission never outruns the inventory);
 *  - the admission threshold and the admitted count only move forward;
 *  - a tick's document says soldOut exactly when no place is free for the
 *    line: none is free, or the free ones came back recently, fans wait on
 *    the waitlist, and it has not had its pass over them (waitlist first;
 *    with nobody waiting, what comes back is the line's at once);
 *  - a tick promises places only out of those free for the line, never the
 *    places kept for the waitlist.
 * Each run sells the rest out, takes more random steps from there (where
 * returns, waitlist offers and the waitlist's turn meet a sold-out room),
 * sells out again, and ends by returning a few places while fans wait on the
 * waitlist: the line stays shut while they are the waitlist's, and once the
 * waitlist's pass has drained them the room admits again, promising no more
 * than came back.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMISSION_PROMISE_MS, WAITLIST_FIRST_MS, type EventInventory } from "../../../durable-objects/event-inventory";
import { ADMISSION_TTL_MS, type WaitingRoom } from "../../../durable-objects/waiting-room";
import { HOLD_JITTER_MS, type HoldResult } from "../../../core/holds/contract";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { hotSale, type HotSale } from "../../fixtures/hot-sale";
import { inventoryOf, lobbyExchange, lobbyJoin, publishedState, roomOf } from "../../fixtures/objects";

const FANS = 40;
const HOLD_TTL_SECONDS = 60;
const RUNS = 16;

afterEach(() => {
  vi.useRealTimers();
});

type Step =
  | { kind: "join"; fan: number }
  | { kind: "tick"; ms: number }
  | { kind: "hold"; fan: number; quantity: number; tier: "A" | "B" | "GA" | undefined }
  | { kind: "confirm"; hold: number; late: boolean }
  | { kind: "abandon" }
  | { kind: "latePayment" }
  | { kind: "idle" }
  | { kind: "release"; hold: number }
  | { kind: "refund"; hold: number }
  | { kind: "offer"; fan: number; quantity: number }
  | { kind: "waitlistJoin" }
  | { kind: "drain"; stillWaiting: boolean }
  | { kind: "waitlistTurn" };

const tickArb = fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 200, max: 4_000 }) });
const holdArb = fc.record({ kind: fc.constant("hold" as const), fan: fc.nat(FANS - 1), quantity: fc.integer({ min: 1, max: 4 }), tier: fc.constantFrom("A" as const, "B" as const, "GA" as const, undefined) });
// `late`: the payment succeeded after the hold lapsed (expired or released), which the inventory confirms only if its places are still free.
const confirmArb = fc.record({ kind: fc.constant("confirm" as const), hold: fc.nat(50), late: fc.boolean() });
const releaseArb = fc.record({ kind: fc.constant("release" as const), hold: fc.nat(50) });
const refundArb = fc.record({ kind: fc.constant("refund" as const), hold: fc.nat(50) });
const offerArb = fc.record({ kind: fc.constant("offer" as const), fan: fc.nat(FANS - 1), quantity: fc.integer({ min: 1, max: 4 }) });
const drainArb = fc.record({ kind: fc.constant("drain" as const), stillWaiting: fc.boolean() });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("join" as const), fan: fc.nat(FANS - 1) }), weight: 3 },
  { arbitrary: tickArb, weight: 4 },
  { arbitrary: holdArb, weight: 5 },
  { arbitrary: confirmArb, weight: 3 },
  { arbitrary: fc.constant({ kind: "abandon" as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: "latePayment" as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: "idle" as const }), weight: 1 },
  { arbitrary: releaseArb, weight: 1 },
  { arbitrary: refundArb, weight: 1 },
  { arbitrary: offerArb, weight: 1 },
  { arbitrary: fc.constant({ kind: "waitlistJoin" as const }), weight: 1 },
  { arbitrary: drainArb, weight: 1 },
  { arbitrary: fc.constant({ kind: "waitlistTurn" as const }), weight: 1 },
);

/** Once sold out: mostly places coming back, the waitlist taking some, and the line buying the rest. */
const afterSellOutArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: tickArb, weight: 3 },
  { arbitrary: holdArb, weight: 3 },
  { arbitrary: confirmArb, weight: 2 },
  { arbitrary: fc.constant({ kind: "abandon" as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: "latePayment" as const }), weight: 1 },
  { arbitrary: releaseArb, weight: 1 },
  { arbitrary: refundArb, weight: 3 },
  { arbitrary: offerArb, weight: 2 },
  { arbitrary: fc.constant({ kind: "waitlistJoin" as const }), weight: 2 },
  { arbitrary: drainArb, weight: 2 },
  { arbitrary: fc.constant({ kind: "waitlistTurn" as const }), weight: 2 },
);

interface Fan {
  accountId: string;
  orderKey?: number;
  joinedAt?: number;
  admissionId?: string;
  admissionExpiresAt?: number;
}

interface Ledger {
  promised: number;
  /** Of `promised`, places promised at this instant (by a tick that just ran). */
  promisedNow: number;
  held: number;
  sold: number;
  /** Places in the outbox of returns, younger than the waitlist's turn (not drained by its pass yet), while fans wait on the waitlist; else 0. */
  returnedRecently: number;
}

/** The inventory's own books: live promises, places in live holds (due or not), places sold, recent returns. */
function ledger(eventId: string): Promise<Ledger> {
  return runInDurableObject(inventoryOf(eventId), (_inventory: EventInventory, state) => {
    const sql = state.storage.sql;
    const sum = (query: string, ...args: SqlStorageValue[]) => sql.exec<{ n: number }>(query, ...args).one().n;
    const now = Date.now();
    const waitlistWaiting = sum("SELECT count(*) AS n FROM waitlist_watch WHERE waiting_until > ?", now) > 0;
    return {
      promised: sum("SELECT coalesce(sum(places), 0) AS n FROM promises WHERE expires_at > ?", now),
      promisedNow: sum("SELECT coalesce(sum(places), 0) AS n FROM promises WHERE expires_at = ?", now + ADMISSION_PROMISE_MS),
      held: sum("SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'live'"),
      sold: sum("SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'confirmed'"),
      returnedRecently: waitlistWaiting ? sum("SELECT coalesce(sum(places), 0) AS n FROM returns WHERE at > ?", now - WAITLIST_FIRST_MS) : 0,
    };
  });
}

/** One sale, driven step by step, checking the invariants after each. */
class BudgetRun {
  readonly room: DurableObjectStub<WaitingRoom>;
  readonly inventory: DurableObjectStub<EventInventory>;
  readonly fans: Fan[];
  readonly holds: { holdId: string; accountId: string }[] = [];
  now: number;
  threshold = -1;
  /** When a tick last moved the threshold. */
  thresholdMovedAt = 0;
  admitted = 0;
  /** What the last tick published. */
  soldOut = false;
  log: string[] = [];

  constructor(
    readonly sale: HotSale,
    now: number,
  ) {
    this.room = roomOf(sale.eventId);
    this.inventory = inventoryOf(sale.eventId);
    this.fans = sale.accounts.map((accountId) => ({ accountId }));
    this.now = now;
  }

  advance(ms: number): void {
    this.now += ms;
    setClock(this.now);
  }

  async run(step: Step): Promise<void> {
    this.log.push(JSON.stringify(step));
    switch (step.kind) {
      case "join":
        return this.join(step.fan);
      case "tick":
        this.advance(step.ms);
        return this.tick();
      case "hold":
        return this.hold(step.fan, step.quantity, step.tier);
      case "confirm":
        return this.confirm(step.hold, step.late);
      case "abandon":
        return this.abandon();
      case "latePayment":
        return this.latePayment();
      case "idle":
        // Admitted fans who held nothing lose their promise; their admission stays valid a while longer.
        expect(ADMISSION_PROMISE_MS).toBeLessThan(ADMISSION_TTL_MS);
        this.advance(ADMISSION_PROMISE_MS + 1_000);
        return this.tick();
      case "release":
        return this.release(step.hold);
      case "refund":
        return this.refund(step.hold);
      case "offer":
        return this.offer(step.fan, step.quantity);
      case "waitlistJoin":
        // A fan joins the waitlist: from now on, what comes back is the waitlist's first.
        await this.inventory.noteWaitlist(true);
        return;
      case "drain":
        // The waitlist's pass is over: what it did not offer is the line's again; it says whether fans still wait.
        await this.inventory.takeReturns(1_000);
        await this.inventory.noteWaitlist(step.stillWaiting);
        return;
      case "waitlistTurn":
        // No pass drained the returns: they are the line's once the waitlist's turn (and a join's word) is over.
        this.advance(WAITLIST_FIRST_MS + 1_000);
        return this.tick();
    }
  }

  async join(index: number): Promise<void> {
    const fan = this.fans[index];
    if (!fan) return;
    const result = await lobbyJoin(this.sale.eventId, fan.accountId);
    if (!result.ok) throw new Error(`join refused: ${result.reason}`);
    expect(fan.orderKey === undefined || fan.orderKey === result.orderKey).toBe(true);
    fan.orderKey = result.orderKey;
    fan.joinedAt ??= this.now;
  }

  async tick(): Promise<void> {
    await runDurableObjectAlarm(this.room);
    const published = await publishedState(this.sale.eventId);
    if (!published) throw new Error("no queue document after a tick");
    const state = published;
    // Forward only.
    expect(state.threshold).toBeGreaterThanOrEqual(this.threshold);
    expect(state.admitted).toBeGreaterThanOrEqual(this.admitted);
    // The tick's grant saw these books (it expired what was due; nothing ran since).
    const books = await ledger(this.sale.eventId);
    const context = `${JSON.stringify({ books, published })} after\n${this.log.join("\n")}`;
    const available = this.sale.capacity - books.held - books.sold;
    // Places that came back are the waitlist's (while fans wait on it) until its pass drains them or its turn is over.
    const keptForWaitlist = Math.min(available, books.returnedRecently);
    expect(published.available, context).toBe(available);
    expect(published.soldOut, context).toBe(available - keptForWaitlist <= 0);
    // New promises come out of the places free for the line, never out of the waitlist's.
    if (books.promisedNow > 0) expect(books.promised + keptForWaitlist, context).toBeLessThanOrEqual(available);
    if (state.threshold !== this.threshold) this.thresholdMovedAt = this.now;
    this.threshold = state.threshold;
    this.admitted = state.admitted;
    this.soldOut = published.soldOut;
  }

  /** An admitted fan (order key at or below the threshold) exchanges their ticket, then holds with the admission as attempt key. */
  async hold(index: number, quantity: number, priceTier: "A" | "B" | "GA" | undefined): Promise<void> {
    const admitted = this.fans.filter((f) => f.orderKey !== undefined && f.orderKey <= this.threshold);
    const fan = admitted[index % Math.max(1, admitted.length)];
    if (!fan || fan.orderKey === undefined) return;
    if (fan.admissionId === undefined || (fan.admissionExpiresAt ?? 0) <= this.now) {
      const exchange = await lobbyExchange(this.sale.eventId, fan.accountId, fan.orderKey);
      if (!exchange.ok) {
        // A fan who joined at the very instant of the tick that moved the threshold can draw a key just below it (arrivals
        // within one millisecond are ordered at random) without having been admitted: the next tick admits them.
        // So can a late arrival who drew the key of a fan in another shard (same millisecond, same random tie-break; keys are
        // unique within a shard only): the threshold passes both when the room admits the other, and the next tick admits this one.
        const tied = this.fans.some((other) => other !== fan && other.orderKey === fan.orderKey);
        if (exchange.reason !== "not_admitted_yet") expect(exchange.reason).toBe("sold_out");
        else if (!tied) expect(fan.joinedAt).toBeGreaterThanOrEqual(this.thresholdMovedAt);
        return;
      }
      expect(exchange.expiresAt).toBe(this.now + ADMISSION_TTL_MS);
      fan.admissionId = exchange.admissionId;
      fan.admissionExpiresAt = exchange.expiresAt;
    }
    const result: HoldResult = await this.inventory.hold({
      kind: "best",
      accountId: fan.accountId,
      attemptKey: fan.admissionId,
      requestId: crypto.randomUUID(),
      quantity,
      priceTier,
      allowSplit: true,
    });
    if (result.ok) this.holds.push({ holdId: result.hold.holdId, accountId: fan.accountId });
    else expect(["sold_out", "over_limit", "too_fast"]).toContain(result.reason);
  }

  /** Every live hold is past its time; the inventory's alarm returns the places, then the room ticks (promising them to fans it admits). */
  async abandon(): Promise<void> {
    this.advance(HOLD_TTL_SECONDS * 1000 + HOLD_JITTER_MS + 1_000);
    await runDurableObjectAlarm(this.inventory);
    await this.tick();
  }

  /** The newest hold lapses, the room ticks, and then its payment succeeds: confirmed only into places nobody else was promised. */
  async latePayment(): Promise<void> {
    const hold = this.holds.at(-1);
    if (!hold) return;
    await this.abandon();
    await this.confirm(this.holds.length - 1, true);
  }

  /** A declined payment: the owner's hold is released at once. */
  async release(index: number): Promise<void> {
    const hold = this.holds[index % Math.max(1, this.holds.length)];
    if (!hold) return;
    const result = await this.inventory.release({ accountId: hold.accountId, requestId: crypto.randomUUID(), holdId: hold.holdId });
    if (!result.ok) expect(result.reason).toBe("hold_confirmed");
  }

  /** The organizer refunds a sale: its places go back to the pool. */
  async refund(index: number): Promise<void> {
    const hold = this.holds[index % Math.max(1, this.holds.length)];
    if (!hold) return;
    const result = await this.inventory.unsell({ requestId: crypto.randomUUID(), holdId: hold.holdId });
    if (!result.ok) expect(result.reason).toBe("not_sold");
  }

  /** A waitlist offer: a hold in a fan's name, admitted or not, as the waitlist's pass makes it. */
  async offer(index: number, quantity: number): Promise<void> {
    const fan = this.fans[index];
    if (!fan) return;
    const key = `waitlist:${crypto.randomUUID()}`;
    const result = await this.inventory.hold({ kind: "best", accountId: fan.accountId, attemptKey: key, requestId: key, quantity, allowSplit: true, forWaitlist: true });
    if (result.ok) this.holds.push({ holdId: result.hold.holdId, accountId: fan.accountId });
    else expect(["sold_out", "over_limit"]).toContain(result.reason);
  }

  async confirm(index: number, late = false): Promise<void> {
    const hold = this.holds[index % Math.max(1, this.holds.length)];
    if (!hold) return;
    const result = await this.inventory.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: late });
    if (!result.ok) expect(late ? ["hold_expired", "hold_not_found", "over_limit"] : ["hold_expired", "hold_not_found"]).toContain(result.reason);
  }

  async checkBudget(): Promise<Ledger> {
    const books = await ledger(this.sale.eventId);
    expect(books.promised + books.held + books.sold, `${JSON.stringify(books)} after\n${this.log.join("\n")}`).toBeLessThanOrEqual(this.sale.capacity);
    return books;
  }

  /** Everyone joins, and admitted fans hold and pay until nothing is left; then more ticks admit nobody. */
  async sellOut(): Promise<void> {
    this.log.push("sell out");
    for (let i = 0; i < FANS; i++) await this.join(i);
    for (let round = 0; round < 200; round++) {
      const books = await this.checkBudget();
      if (books.sold === this.sale.capacity) break;
      // Past the 5 s attempt spacing, so every admitted fan may try again; every other round past the
      // waitlist's turn too, so places the steps returned while sold out reach the line.
      this.advance(round % 2 === 0 ? 6_000 : WAITLIST_FIRST_MS + 1_000);
      await this.tick();
      for (let i = 0; i < FANS; i++) {
        await this.hold(i, 1, undefined);
        await this.checkBudget();
      }
      for (let h = 0; h < this.holds.length; h++) await this.confirm(h);
      await this.checkBudget();
    }
    expect((await this.checkBudget()).sold).toBe(this.sale.capacity);
    this.advance(1_000);
    await this.tick();
    expect(this.soldOut).toBe(true);
    // More ticks promise nobody anything (the threshold may still pass fans who bought their limit from the waitlist).
    for (let i = 0; i < 3; i++) {
      this.advance(5_000);
      await this.tick();
      expect(this.soldOut).toBe(true);
      expect((await this.checkBudget()).promised).toBe(0);
    }
  }

  /**
   * After the sell-out, `count` sales are refunded while fans wait on the
   * waitlist: the line stays shut while the waitlist may want the places,
   * then the waitlist's pass drains them
   * (it had nobody for them) and the room admits fans beyond the old
   * threshold, promising no more places than came back.
   */
  async comeBack(count: number): Promise<void> {
    this.log.push(`come back: ${count}`);
    const sold = await runInDurableObject(this.inventory, (_inventory: EventInventory, state) =>
      state.storage.sql.exec<{ hold_id: string; places: number }>("SELECT hold_id, places FROM holds WHERE status = 'confirmed' ORDER BY hold_id").toArray(),
    );
    await this.inventory.takeReturns(1_000); // the waitlist's last pass: the outbox is empty
    await this.inventory.noteWaitlist(true); // and fans still wait on it
    let returned = 0;
    for (const hold of sold.slice(0, count)) {
      expect((await this.inventory.unsell({ requestId: crypto.randomUUID(), holdId: hold.hold_id })).ok).toBe(true);
      returned += hold.places;
    }
    this.advance(1_000);
    await this.tick();
    expect(this.soldOut).toBe(true);
    expect((await ledger(this.sale.eventId)).promised).toBe(0);

    expect((await this.inventory.takeReturns(1_000)).reduce((sum, r) => sum + r.places, 0)).toBe(returned);
    const threshold = this.threshold;
    const admitted = this.admitted;
    const waiting = this.fans.filter((f) => f.orderKey !== undefined && f.orderKey > threshold).length;
    this.advance(1_000);
    await this.tick();
    const books = await this.checkBudget();
    expect(books.promised).toBeLessThanOrEqual(returned);
    if (waiting > 0 && returned > 0) {
      expect(this.soldOut).toBe(false);
      expect(this.admitted).toBeGreaterThan(admitted);
      // A fan who shares the threshold's key (another shard's, same millisecond and tie-break) is next in line, and may be
      // the only one admitted: the threshold then stays where it was.
      if (this.fans.filter((f) => f.orderKey === threshold).length > 1) expect(this.threshold).toBeGreaterThanOrEqual(threshold);
      else expect(this.threshold).toBeGreaterThan(threshold);
    }
  }
}

describe("WaitingRoom admission budget", () => {
  it(
    "never promises, holds and sells more than the capacity, moves forward only, keeps returned places for the waitlist first, and admits again when places come back",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            lobby: fc.uniqueArray(fc.nat(FANS - 1), { maxLength: FANS }),
            rate: fc.integer({ min: 1, max: 6 }),
            purchaseLimit: fc.integer({ min: 1, max: 4 }),
            steps: fc.array(stepArb, { minLength: 10, maxLength: 60 }),
            afterSellOut: fc.array(afterSellOutArb, { minLength: 5, maxLength: 40 }),
            refunds: fc.integer({ min: 1, max: 4 }),
          }),
          async ({ lobby, rate, purchaseLimit, steps, afterSellOut, refunds }) => {
            const start = startFakeClock();
            // 2 x 2 x 4 seats in tiers A and B, and 6 standing places: 22 in all.
            const sale = await hotSale({
              chart: smallChart(2, 4, 6),
              admissionRatePerSecond: rate,
              purchaseLimit,
              holdTtlSeconds: HOLD_TTL_SECONDS,
              accounts: FANS,
              saleStartsInMs: 600_000,
              saleLastsMs: 7 * 86_400_000, // longer than any run's steps, however many idle ones it draws
            });
            expect(sale.capacity).toBe(22);
            const run = new BudgetRun(sale, start);
            await run.inventory.prepare(sale.eventId);
            await run.room.configure(sale.eventId);
            for (const fan of lobby) await run.join(fan);
            run.now = sale.saleStartsAt;
            setClock(run.now);
            for (const step of steps) {
              await run.run(step);
              await run.checkBudget();
            }
            await run.sellOut();
            for (const step of afterSellOut) {
              await run.run(step);
              await run.checkBudget();
            }
            await run.sellOut();
            await run.comeBack(refunds);
          },
        ),
        // A run takes seconds: a failure is reported as found (its steps are in the message), not shrunk past the timeout.
        { numRuns: RUNS, endOnFailure: true },
      );
    },
    300_000,
  );
});
