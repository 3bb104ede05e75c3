/**
 * The waitlist's "sold out" agrees with what the room and the holds tell
 * fans (issue 17, seen in the sellout bench): a fan told sold out can join
 * the waitlist, whether the places left are kept for the waitlist's pass
 * (returned after a sell-out) or promised to fans admitted before them; a
 * fan who could hold what they ask for is sent to hold it (409 not_sold_out).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOLD_JITTER_MS, type HoldResult } from "../../../core/holds/contract";
import { ADMISSION_PROMISE_MS, WAITLIST_FIRST_MS } from "../../../durable-objects/event-inventory";
import { callApp, errorCode } from "../../fixtures/http";
import { inventoryOf, lobbyJoin, promisedPlaces, publishedState, recentlyReturnedPlaces, roomOf, wipeInventory, withInventory } from "../../fixtures/objects";
import { type Fan, fanOf, type Sale } from "../../fixtures/seeding";
import { clock, closeEntries, freeSeats, holdSeats, join, openWaitlistSale, releaseHold, sellSeats, serve, statuses } from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(async () => {
  clock.stop();
  await closeEntries();
});

/** A best-available hold for a fan, straight at the inventory (as an admitted fan's or a waitlist offer's). */
function holdBest(sale: Sale, accountId: string, quantity: number, priceTier: string | undefined): Promise<HoldResult> {
  return withInventory(sale.eventId, (inventory) =>
    inventory.hold({ kind: "best", accountId, attemptKey: crypto.randomUUID(), requestId: crypto.randomUUID(), quantity, priceTier, allowSplit: true }),
  );
}

/** One tick of the event's room; returns whether its published document says sold out. */
async function roomSaysSoldOut(sale: Sale): Promise<boolean> {
  expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
  const document = await publishedState(sale.eventId);
  if (!document) throw new Error("no queue document after a tick");
  return document.soldOut;
}

describe("joining the waitlist of a hot event", () => {
  it("is open to a fan the room told sold out while a returned place is kept for the waitlist, which then gets it", async () => {
    const sale = await openWaitlistSale({ demandClass: "hot", fans: 4 });
    await roomOf(sale.eventId).configure(sale.eventId);
    const [fan, seller] = [fanOf(sale, 0), fanOf(sale, 2)];
    await sellSeats(sale, seller.accountId, [0, 1, 2, 3]);
    await sellSeats(sale, fanOf(sale, 3).accountId, [5]);
    const back = await holdSeats(sale, fanOf(sale, 3).accountId, [4]);
    await inventoryOf(sale.eventId).noteWaitlist(true); // fans wait on the waitlist (as a join says): what comes back is theirs first
    await releaseHold(sale, fanOf(sale, 3).accountId, back.holdId); // a declined payment: seat 4 is the waitlist's first

    expect(await roomSaysSoldOut(sale)).toBe(true);
    expect(await join(sale, fan, { quantity: 1 })).toMatchObject({ status: "waiting", position: 1 });

    expect(await serve(sale)).toMatchObject({ returnedPlaces: 1, offered: 1 });
    expect(await statuses(sale)).toEqual(["offered", undefined, undefined, undefined]);
  });

  it("is open to a fan refused sold out because the places left are promised to an admitted fan, not to that fan", async () => {
    const sale = await openWaitlistSale({ demandClass: "hot", fans: 3 });
    await roomOf(sale.eventId).configure(sale.eventId);
    const [admitted, later] = [fanOf(sale, 0), fanOf(sale, 1)];
    await sellSeats(sale, fanOf(sale, 2).accountId, [0, 1, 2, 3]);
    const lobby = await lobbyJoin(sale.eventId, admitted.accountId);
    expect(lobby.ok).toBe(true);
    clock.advance(1_000);
    expect(await roomSaysSoldOut(sale)).toBe(false);
    expect(await promisedPlaces(sale.eventId)).toBe(2); // seats 4 and 5, to the admitted fan

    expect(await holdBest(sale, later.accountId, 1, undefined)).toMatchObject({ ok: false, reason: "sold_out" });
    expect(await join(sale, later, { quantity: 1 })).toMatchObject({ status: "waiting", position: 1 });

    // The admitted fan can hold them: sent to hold, not to the waitlist.
    const path = `/api/events/${sale.eventId}/waitlist`;
    expect(errorCode(await callApp("POST", path, { bearer: admitted.session, body: { quantity: 2 } }), 409)).toBe("not_sold_out");
    expect(await join(sale, admitted, { quantity: 3 })).toMatchObject({ status: "waiting", position: 2 });
  });
});

describe("joining the waitlist after the inventory object lost its storage", () => {
  it("rebuilds the object from Postgres and answers as before (it answered 500 in the chaos bench)", async () => {
    const sale = await openWaitlistSale({ demandClass: "hot", fans: 4 });
    await sellSeats(sale, fanOf(sale, 2).accountId, [0, 1, 2, 3]);
    const live = await holdSeats(sale, fanOf(sale, 3).accountId, [4, 5]);
    expect(await join(sale, fanOf(sale, 0), { quantity: 1 })).toMatchObject({ status: "waiting", position: 1 }); // this isolate now takes the object as prepared

    await wipeInventory(sale.eventId);
    expect(await join(sale, fanOf(sale, 1), { quantity: 1 })).toMatchObject({ status: "waiting", position: 2 });
    // Rebuilt with the sale and the live hold: nothing came free.
    expect(await freeSeats(sale)).toEqual([]);
    await releaseHold(sale, fanOf(sale, 3).accountId, live.holdId);
    expect(await serve(sale)).toMatchObject({ returnedPlaces: 2, offered: 2 });
    expect(await statuses(sale)).toEqual(["offered", "offered", undefined, undefined]);
  });
});

const BUYERS = 6;
const PROBES = 10;
const HOLD_TTL_SECONDS = 60;

type Step =
  | { kind: "lobby"; buyer: number }
  | { kind: "tick"; ms: number }
  | { kind: "hold"; buyer: number; quantity: number; tier: "A" | "B" | undefined }
  | { kind: "confirm" | "release" | "refund"; hold: number }
  | { kind: "drain" }
  | { kind: "wait"; what: "holds" | "promises" | "waitlistTurn" }
  | { kind: "probe"; quantity: number; tier: "A" | "B" | undefined };

const tierArb = fc.constantFrom("A" as const, "B" as const, undefined);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("lobby" as const), buyer: fc.nat(BUYERS - 1) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.integer({ min: 500, max: 5_000 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("hold" as const), buyer: fc.nat(BUYERS - 1), quantity: fc.integer({ min: 1, max: 2 }), tier: tierArb }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constantFrom("confirm" as const, "release" as const, "refund" as const), hold: fc.nat(20) }), weight: 4 },
  { arbitrary: fc.constant({ kind: "drain" as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("wait" as const), what: fc.constantFrom("holds" as const, "promises" as const, "waitlistTurn" as const) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("probe" as const), quantity: fc.integer({ min: 1, max: 3 }), tier: tierArb }), weight: 4 },
);

/** One random sale: buyers in the lobby, holding, paying, giving back; probes asking to join the waitlist right after a tick. */
class AgreementRun {
  readonly holds: { holdId: string; accountId: string }[] = [];
  private probesUsed = 0;
  readonly log: string[] = [];

  constructor(readonly sale: Sale) {}

  async run(step: Step): Promise<void> {
    this.log.push(JSON.stringify(step));
    const buyer = (i: number) => fanOf(this.sale, i).accountId;
    const hold = (i: number) => this.holds[i % Math.max(1, this.holds.length)];
    switch (step.kind) {
      case "lobby": {
        const joined = await lobbyJoin(this.sale.eventId, buyer(step.buyer));
        expect(joined.ok).toBe(true);
        return;
      }
      case "tick":
        clock.advance(step.ms);
        await roomSaysSoldOut(this.sale);
        return;
      case "hold": {
        const result = await holdBest(this.sale, buyer(step.buyer), step.quantity, step.tier);
        if (result.ok) this.holds.push({ holdId: result.hold.holdId, accountId: result.hold.accountId });
        else expect(["sold_out", "over_limit"]).toContain(result.reason);
        return;
      }
      case "confirm":
      case "release":
      case "refund":
        return this.change(step.kind, hold(step.hold));
      case "drain":
        await inventoryOf(this.sale.eventId).takeReturns(1_000); // the waitlist's pass is over
        return;
      case "wait":
        clock.advance(step.what === "holds" ? HOLD_TTL_SECONDS * 1000 + HOLD_JITTER_MS + 1 : step.what === "promises" ? ADMISSION_PROMISE_MS + 1 : WAITLIST_FIRST_MS + 1);
        await runDurableObjectAlarm(inventoryOf(this.sale.eventId));
        return;
      case "probe":
        return this.probe(step.quantity, step.tier);
    }
  }

  private async change(kind: "confirm" | "release" | "refund", hold: { holdId: string; accountId: string } | undefined): Promise<void> {
    if (!hold) return;
    const result = await withInventory(this.sale.eventId, (inventory) =>
      kind === "confirm"
        ? inventory.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: false })
        : kind === "release"
          ? inventory.release({ accountId: hold.accountId, requestId: crypto.randomUUID(), holdId: hold.holdId })
          : inventory.unsell({ requestId: crypto.randomUUID(), holdId: hold.holdId }),
    );
    if (!result.ok) expect(["hold_expired", "hold_confirmed", "not_sold"]).toContain(result.reason);
  }

  /**
   * A fan who holds nothing asks to join the waitlist the instant the room
   * ticked, then tries to hold the same. Told sold out by the room: joined.
   * Sent to hold (409 not_sold_out): the hold succeeds. Joined while the room
   * was selling: the hold is refused sold out, or takes places that came back
   * for the waitlist.
   */
  private async probe(quantity: number, tier: "A" | "B" | undefined): Promise<void> {
    if (this.probesUsed >= PROBES) return;
    const fan: Fan = fanOf(this.sale, BUYERS + this.probesUsed++);
    clock.advance(1_000);
    const soldOut = await roomSaysSoldOut(this.sale);
    const keptBack = await recentlyReturnedPlaces(this.sale.eventId);
    const path = `/api/events/${this.sale.eventId}/waitlist`;
    const answer = await callApp("POST", path, { bearer: fan.session, body: tier === undefined ? { quantity } : { quantity, priceTier: tier } });
    const context = `${JSON.stringify({ soldOut, keptBack, status: answer.status, body: answer.json })} after\n${this.log.join("\n")}`;
    if (soldOut) expect(answer.status, context).toBe(201);
    if (answer.status !== 201) expect(errorCode(answer, 409), context).toBe("not_sold_out");
    const held = await holdBest(this.sale, fan.accountId, quantity, tier);
    if (held.ok) this.holds.push({ holdId: held.hold.holdId, accountId: fan.accountId });
    if (answer.status === 201) {
      if (held.ok) expect(keptBack, context).toBeGreaterThan(0);
      else expect(held.reason, context).toBe("sold_out");
      expect((await callApp("DELETE", path, { bearer: fan.session })).status).toBe(200);
    } else {
      expect(held.ok, `${JSON.stringify(held)} ${context}`).toBe(true);
    }
  }
}

describe("the waitlist and the room, after random steps", () => {
  it("agree: a fan the room tells sold out joins; a fan sent to hold can hold", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 20, maxLength: 50 }), async (steps) => {
        const sale = await openWaitlistSale({ demandClass: "hot", fans: BUYERS + PROBES, holdTtlSeconds: HOLD_TTL_SECONDS });
        await roomOf(sale.eventId).configure(sale.eventId);
        const run = new AgreementRun(sale);
        for (const step of steps) await run.run(step);
        await closeEntries();
      }),
      // Not shrunk: each step of a shrink replays a whole sale, past the test's time; the log in the message names the steps.
      { numRuns: 16, endOnFailure: true },
    );
  }, 120_000);
});
