/**
 * The admission budget, as a model test: random lobby and late joins, ticks
 * of the room's alarm, holds by admitted fans (attempt key = their admission
 * id), purchases, abandoned holds that expire, and admitted fans who go idle
 * past the promise timeout and come back while their admission is still
 * valid. After every step:
 *  - places promised to admitted fans who hold nothing yet + held + sold never
 *    exceed the capacity (admission never outruns the inventory);
 *  - the admission threshold and the admitted count only move forward;
 *  - once the last place is sold nobody more is admitted, and the published
 *    document says soldOut after the next tick.
 * Each run ends by selling the rest out, so the sold-out path runs every time.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMISSION_PROMISE_MS, type EventInventory } from "../../durable-objects/event-inventory";
import { ADMISSION_TTL_MS, type WaitingRoom } from "../../durable-objects/waiting-room";
import { HOLD_JITTER_MS, type HoldResult } from "../../workers/inventory/contract";
import { smallChart } from "./fixtures";
import { hotSale, inventoryOf, publishedState, roomOf, setClock, startFakeClock, type HotSale } from "./waiting-room-fixtures";

const FANS = 40;
const HOLD_TTL_SECONDS = 60;
const RUNS = 12;

afterEach(() => {
  vi.useRealTimers();
});

type Step =
  | { kind: "join"; fan: number }
  | { kind: "tick"; ms: number }
  | { kind: "hold"; fan: number; quantity: number; tier: "A" | "B" | "GA" | undefined }
  | { kind: "confirm"; hold: number }
  | { kind: "abandon" }
  | { kind: "idle" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("join" as const), fan: fc.nat(FANS - 1) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 200, max: 4_000 }) }), weight: 4 },
  {
    arbitrary: fc.record({ kind: fc.constant("hold" as const), fan: fc.nat(FANS - 1), quantity: fc.integer({ min: 1, max: 4 }), tier: fc.constantFrom("A" as const, "B" as const, "GA" as const, undefined) }),
    weight: 5,
  },
  { arbitrary: fc.record({ kind: fc.constant("confirm" as const), hold: fc.nat(50) }), weight: 3 },
  { arbitrary: fc.constant({ kind: "abandon" as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: "idle" as const }), weight: 1 },
);

interface Fan {
  accountId: string;
  orderKey?: number;
  admissionId?: string;
  admissionExpiresAt?: number;
}

interface Ledger {
  promised: number;
  held: number;
  sold: number;
}

/** The inventory's own books: live promises, places in live holds (due or not), places sold. */
function ledger(eventId: string): Promise<Ledger> {
  return runInDurableObject(inventoryOf(eventId), (_inventory: EventInventory, state) => {
    const sql = state.storage.sql;
    const sum = (query: string, ...args: SqlStorageValue[]) => sql.exec<{ n: number }>(query, ...args).one().n;
    return {
      promised: sum("SELECT coalesce(sum(places), 0) AS n FROM promises WHERE expires_at > ?", Date.now()),
      held: sum("SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'live'"),
      sold: sum("SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'confirmed'"),
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
  admitted = 0;
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
        return this.confirm(step.hold);
      case "abandon":
        // Every live hold is past its time; the inventory's alarm returns the places, then the room ticks.
        this.advance(HOLD_TTL_SECONDS * 1000 + HOLD_JITTER_MS + 1_000);
        await runDurableObjectAlarm(this.inventory);
        return this.tick();
      case "idle":
        // Admitted fans who held nothing lose their promise; their admission stays valid a while longer.
        expect(ADMISSION_PROMISE_MS).toBeLessThan(ADMISSION_TTL_MS);
        this.advance(ADMISSION_PROMISE_MS + 1_000);
        return this.tick();
    }
  }

  async join(index: number): Promise<void> {
    const fan = this.fans[index];
    if (!fan) return;
    const result = await this.room.join(this.sale.eventId, fan.accountId);
    if (!result.ok) throw new Error(`join refused: ${result.reason}`);
    expect(fan.orderKey === undefined || fan.orderKey === result.orderKey).toBe(true);
    fan.orderKey = result.orderKey;
  }

  async tick(): Promise<void> {
    const before = await ledger(this.sale.eventId);
    await runDurableObjectAlarm(this.room);
    const published = await publishedState(this.sale.eventId);
    if (!published) throw new Error("no queue document after a tick");
    const state = await this.room.snapshot();
    expect(published.threshold).toBe(state.threshold);
    // Forward only.
    expect(state.threshold).toBeGreaterThanOrEqual(this.threshold);
    expect(state.admitted).toBeGreaterThanOrEqual(this.admitted);
    const soldOut = before.sold === this.sale.capacity;
    if (soldOut) {
      // Nobody admitted once the last place is sold, and the document says so within this one tick.
      expect(state.threshold).toBe(this.threshold);
      expect(state.admitted).toBe(this.admitted);
    }
    expect(published.soldOut).toBe(soldOut);
    this.threshold = state.threshold;
    this.admitted = state.admitted;
  }

  /** An admitted fan (order key at or below the threshold) exchanges their ticket, then holds with the admission as attempt key. */
  async hold(index: number, quantity: number, priceTier: "A" | "B" | "GA" | undefined): Promise<void> {
    const admitted = this.fans.filter((f) => f.orderKey !== undefined && f.orderKey <= this.threshold);
    const fan = admitted[index % Math.max(1, admitted.length)];
    if (!fan || fan.orderKey === undefined) return;
    if (fan.admissionId === undefined || (fan.admissionExpiresAt ?? 0) <= this.now) {
      const exchange = await this.room.exchange(fan.accountId, fan.orderKey);
      if (!exchange.ok) {
        expect(exchange.reason).toBe("sold_out");
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

  async confirm(index: number): Promise<void> {
    const hold = this.holds[index % Math.max(1, this.holds.length)];
    if (!hold) return;
    const result = await this.inventory.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: false });
    if (!result.ok) expect(["hold_expired", "hold_not_found"]).toContain(result.reason);
  }

  async checkBudget(): Promise<Ledger> {
    const books = await ledger(this.sale.eventId);
    expect(books.promised + books.held + books.sold, `${JSON.stringify(books)} after\n${this.log.join("\n")}`).toBeLessThanOrEqual(this.sale.capacity);
    return books;
  }

  /** Everyone joins, and admitted fans hold and pay until nothing is left; then more ticks admit nobody. */
  async sellOut(): Promise<void> {
    for (let i = 0; i < FANS; i++) await this.join(i);
    for (let round = 0; round < 200; round++) {
      const books = await this.checkBudget();
      if (books.sold === this.sale.capacity) break;
      this.advance(6_000); // past the 5 s attempt spacing, so every admitted fan may try again
      await this.tick();
      for (let i = 0; i < FANS; i++) {
        await this.hold(i, 1, undefined);
        await this.checkBudget();
      }
      for (let h = 0; h < this.holds.length; h++) await this.confirm(h);
      await this.checkBudget();
    }
    expect((await this.checkBudget()).sold).toBe(this.sale.capacity);
    const threshold = this.threshold;
    this.advance(1_000);
    await this.tick();
    expect((await publishedState(this.sale.eventId))?.soldOut).toBe(true);
    for (let i = 0; i < 3; i++) {
      this.advance(5_000);
      await this.tick();
    }
    expect(this.threshold).toBe(threshold);
  }
}

describe("WaitingRoom admission budget", () => {
  it(
    "never promises, holds and sells more than the capacity, moves forward only, and stops at sold out",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            lobby: fc.uniqueArray(fc.nat(FANS - 1), { maxLength: FANS }),
            rate: fc.integer({ min: 1, max: 6 }),
            purchaseLimit: fc.integer({ min: 1, max: 4 }),
            steps: fc.array(stepArb, { minLength: 10, maxLength: 60 }),
          }),
          async ({ lobby, rate, purchaseLimit, steps }) => {
            const start = startFakeClock();
            // 2 x 2 x 4 seats in tiers A and B, and 6 standing places: 22 in all.
            const sale = await hotSale({
              chart: smallChart(2, 4, 6),
              admissionRatePerSecond: rate,
              purchaseLimit,
              holdTtlSeconds: HOLD_TTL_SECONDS,
              accounts: FANS,
              saleStartsInMs: 600_000,
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
          },
        ),
        { numRuns: RUNS },
      );
    },
    300_000,
  );
});
