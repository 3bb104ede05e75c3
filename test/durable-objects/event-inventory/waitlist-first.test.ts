/**
 * Places that come back go to the waitlist first: while fans wait on it,
 * places returned lately are kept from every hold but the waitlist pass's
 * offers (as they are kept from the room's grants), until the pass has
 * drained them or the waitlist's turn is over. An admitted fan whose promise
 * lapsed cannot take them ahead of the waitlist.
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventInventory } from "../../../durable-objects/event-inventory";
import { smallChart } from "../../fixtures/charts";
import { startFakeClock } from "../../fixtures/clocks";
import { hotSale } from "../../fixtures/hot-sale";
import { inventoryOf, restartObject } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A hot sale on now of five places (two seats in each section, one standing),
 * sold out as orders of `quantities` to its first accounts in turn, with
 * `accounts` accounts in all; returns the orders' hold ids.
 */
async function soldOutSale(accounts: number, quantities: number[]) {
  const sale = await hotSale({ chart: smallChart(1, 2, 1), saleStartsInMs: -60_000, accounts, purchaseLimit: 4 });
  const inventory = inventoryOf(sale.eventId);
  await inventory.prepare(sale.eventId);
  const sold: string[] = [];
  for (const [i, quantity] of quantities.entries()) {
    const accountId = sale.accounts[i] ?? "";
    const held = await inventory.hold({ kind: "best", accountId, attemptKey: `k-${accountId}`, requestId: `r-${accountId}`, quantity, allowSplit: true });
    if (!held.ok) throw new Error(held.message);
    expect((await inventory.confirm({ requestId: `c-${accountId}`, holdId: held.hold.holdId, allowLapsed: false })).ok).toBe(true);
    sold.push(held.hold.holdId);
  }
  return { sale, inventory, sold };
}

describe("EventInventory: returned places are the waitlist's first", () => {
  it("keeps them from a fan's hold until the waitlist's pass has offered them, and lets the pass's offer take them", async () => {
    startFakeClock();
    // Five places in all, sold as two orders (four and one).
    const { sale, inventory, sold } = await soldOutSale(4, [4, 1]);
    const [, , fan = "", waiting = ""] = sale.accounts;
    const [refunded = ""] = sold;
    const available = async () => (await inventory.availability()).sections.reduce((sum, section) => sum + section.available, 0);
    expect(await available()).toBe(0);

    // Sold out: a fan joins the waitlist, then an order is refunded and its four places come back.
    await inventory.noteWaitlist(true);
    expect((await inventory.unsell({ requestId: "unsell-1", holdId: refunded })).ok).toBe(true);
    expect(await available()).toBe(4);

    // A fan the room admitted earlier (no promise left) tries for them before the waitlist's pass: they are kept.
    const early = await inventory.hold({ kind: "best", accountId: fan, attemptKey: "fan-1", requestId: "fan-1", quantity: 1, allowSplit: true });
    expect(early).toMatchObject({ ok: false, reason: "sold_out" });

    // The waitlist's pass offers two of them to its fan.
    const key = "waitlist:entry-1:1";
    const offer = await inventory.hold({ kind: "best", accountId: waiting, attemptKey: key, requestId: key, quantity: 2, allowSplit: true, forWaitlist: true });
    expect(offer.ok).toBe(true);

    // Once the pass has drained the returns (nobody else waits), what is left is the line's.
    await inventory.takeReturns(100);
    await inventory.noteWaitlist(false);
    const later = await inventory.hold({ kind: "best", accountId: fan, attemptKey: "fan-2", requestId: "fan-2", quantity: 1, allowSplit: true });
    expect(later.ok).toBe(true);
  });

  it("keeps the waitlist's word in memory on the hold path, rebuilt from storage when the object restarts or reloads", async () => {
    startFakeClock();
    // Five places in all; all sold, then an order of four is refunded while fans wait on the waitlist.
    const { sale, inventory, sold } = await soldOutSale(3, [4, 1]);
    const [, , fan = ""] = sale.accounts;
    await inventory.noteWaitlist(true);
    expect((await inventory.unsell({ requestId: "unsell-1", holdId: sold[0] ?? "" })).ok).toBe(true);
    let attempt = 0;
    const fanHolds = async () => {
      attempt++;
      return inventoryOf(sale.eventId).hold({ kind: "best", accountId: fan, attemptKey: `fan-${attempt}`, requestId: `fan-${attempt}`, quantity: 1, allowSplit: true });
    };

    // After a restart (memory gone, storage kept) and after a reload of the event, the places are still kept for the waitlist.
    // (A restart breaks the stub it went through: each call below gets the object's stub afresh.)
    await restartObject(inventory);
    expect(await fanHolds()).toMatchObject({ ok: false, reason: "sold_out" });
    await inventoryOf(sale.eventId).refreshConfig();
    expect(await fanHolds()).toMatchObject({ ok: false, reason: "sold_out" });

    // The hold path does not read the waitlist's word from storage: ending it there behind the object's back changes
    // nothing until the object restarts and rebuilds its memory from storage.
    await runInDurableObject(inventoryOf(sale.eventId), (_inventory: EventInventory, state) => {
      state.storage.sql.exec("UPDATE waitlist_watch SET waiting_until = 0");
    });
    expect(await fanHolds()).toMatchObject({ ok: false, reason: "sold_out" });
    await restartObject(inventoryOf(sale.eventId));
    expect((await fanHolds()).ok).toBe(true);
  });

  it("lets a pass drain only the returns it saw before its offers: a place back meanwhile stays kept for the next pass", async () => {
    startFakeClock();
    // Five places in all, sold as three orders (two, two and one); fans wait on the waitlist.
    const { sale, inventory, sold: orders } = await soldOutSale(4, [2, 2, 1]);
    const [, , , fan = ""] = sale.accounts;
    await inventory.noteWaitlist(true);
    const [before = "", during = ""] = orders;
    expect((await inventory.unsell({ requestId: "unsell-before", holdId: before })).ok).toBe(true);

    // The pass reads where the outbox stands, then makes its offers (here: none taken); meanwhile another order is refunded.
    const mark = await inventory.waitlistPassMark();
    expect((await inventory.unsell({ requestId: "unsell-during", holdId: during })).ok).toBe(true);
    const drained = await inventory.takeReturns(100, mark.returnsThrough);
    expect(drained.map((r) => r.holdId)).toEqual([before]);

    // The place that came back during the pass is still the waitlist's: a fan's hold is refused, and the next pass drains it.
    const fanHold = (n: number) => inventory.hold({ kind: "best", accountId: fan, attemptKey: `fan-${n}`, requestId: `fan-${n}`, quantity: 3, allowSplit: true });
    expect(await fanHold(1)).toMatchObject({ ok: false, reason: "sold_out" });
    const next = await inventory.waitlistPassMark();
    expect((await inventory.takeReturns(100, next.returnsThrough)).map((r) => r.holdId)).toEqual([during]);
    expect((await fanHold(2)).ok).toBe(true);
  });

  it("keeps the places for a fan who joined while a pass ran: the pass's word that nobody waits, read before the join, is stale", async () => {
    startFakeClock();
    // Five places in all, sold as three orders; an order of two is refunded while the waitlist is empty.
    const { sale, inventory, sold } = await soldOutSale(4, [2, 2, 1]);
    const [, , , fan = ""] = sale.accounts;

    // A pass begins and finds nobody waiting; a fan joins (the inventory hears of it once the entry is in); the refund
    // comes in; then the pass, done, says what its query found: nobody waits. That word is older than the join's.
    const mark = await inventory.waitlistPassMark();
    await inventory.noteWaitlist(true);
    expect((await inventory.unsell({ requestId: "unsell-1", holdId: sold[0] ?? "" })).ok).toBe(true);
    await inventory.noteWaitlist(false, mark.watch);

    // The refunded places are still the waitlist's: an earlier admitted fan's hold is refused.
    const fanHold = (n: number) => inventory.hold({ kind: "best", accountId: fan, attemptKey: `fan-${n}`, requestId: `fan-${n}`, quantity: 1, allowSplit: true });
    expect(await fanHold(1)).toMatchObject({ ok: false, reason: "sold_out" });
    // The next pass, which sees the fan, has offered and drained them, and nobody else waits: the line's again.
    const next = await inventory.waitlistPassMark();
    await inventory.takeReturns(100, next.returnsThrough);
    await inventory.noteWaitlist(false, next.watch);
    expect((await fanHold(2)).ok).toBe(true);
  });

  it("never lets a pass's word that nobody waits undo a join it did not see, however joins and passes interleave", async () => {
    /** A join: tells the inventory, adds the entry, tells it again. A pass: reads its mark, queries the entries, says what it found. */
    type Step = { actor: "join"; step: "note" | "insert" | "noteAgain" } | { actor: "pass"; step: "mark" | "query" | "note" };
    const joinSteps = ["note", "insert", "noteAgain"] as const;
    const passSteps = ["mark", "query", "note"] as const;
    const scenario = fc.record({ joins: fc.integer({ min: 1, max: 3 }), passes: fc.integer({ min: 1, max: 3 }), order: fc.array(fc.nat(), { minLength: 24, maxLength: 24 }) });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ joins, passes, order }) => {
        // An object of its own (unprepared: the waitlist's word needs no event).
        const inventory = inventoryOf(`watch-${crypto.randomUUID()}`);
        const waiting = () =>
          runInDurableObject(inventory, (_inventory: EventInventory, state) => {
            const row = state.storage.sql.exec<{ waiting_until: number }>("SELECT waiting_until FROM waitlist_watch").toArray()[0];
            return row !== undefined && row.waiting_until > Date.now();
          });
        let entries = 0;
        const actors: { steps: Step[]; done: number; mark?: number; found?: boolean }[] = [
          ...Array.from({ length: joins }, () => ({ steps: joinSteps.map((step): Step => ({ actor: "join", step })), done: 0 })),
          ...Array.from({ length: passes }, () => ({ steps: passSteps.map((step): Step => ({ actor: "pass", step })), done: 0 })),
        ];
        // Each turn, the scenario picks which unfinished actor takes its next step.
        for (let turn = 0; ; turn++) {
          const ready = actors.filter((a) => a.done < a.steps.length);
          if (ready.length === 0) break;
          const actor = ready[(order[turn % order.length] ?? 0) % ready.length];
          if (!actor) break;
          const step = actor.steps[actor.done++];
          if (step?.actor === "join") {
            if (step.step === "insert") entries++;
            else await inventory.noteWaitlist(true);
          } else if (step?.step === "mark") {
            actor.mark = (await inventory.waitlistPassMark()).watch;
          } else if (step?.step === "query") {
            actor.found = entries > 0;
          } else if (step?.step === "note") {
            await inventory.noteWaitlist(actor.found ?? false, actor.mark);
          }
        }
        // Every join's entry is in: the inventory must know fans wait.
        expect(await waiting()).toBe(true);
        // Once they have all left, a pass that begins after that says so, and is heard.
        const mark = await inventory.waitlistPassMark();
        await inventory.noteWaitlist(false, mark.watch);
        expect(await waiting()).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});
