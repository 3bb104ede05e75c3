/**
 * The waitlist: fans join only when what they ask for is sold out; returned
 * places are offered in line order (a bigger request is never overtaken by a
 * later smaller one for the same places, other price tiers go on); an offer
 * is a hold in the fan's name with an email; an unclaimed offer passes to the
 * next fan (calm, and hot through the inventory's alarm); a paid one fulfils
 * the entry; passes running at once never offer twice.
 */
import { env, runDurableObjectAlarm } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { HoldView } from "../../../core/holds/contract";
import { serveWaitlists } from "../../../workers/waitlist/serve";
import { withDb } from "../../fixtures/db";
import { callApp, errorCode } from "../../fixtures/http";
import { inventoryOf, withInventory } from "../../fixtures/objects";
import { type Fan, fanOf, type Sale } from "../../fixtures/seeding";
import {
  clock,
  closeEntries,
  entries,
  freeSeats,
  holdOf,
  holdSeats,
  join,
  myEntry,
  offerEmails,
  openWaitlistSale,
  pay,
  releaseHold,
  sellSeats,
  serve,
  statuses,
} from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(async () => {
  clock.stop();
  await closeEntries();
});

/** The live holds a fan has at the event. */
async function liveHolds(sale: Sale, who: Fan): Promise<HoldView[]> {
  return (await withInventory(sale.eventId, (inventory) => inventory.accountHolds(who.accountId))).filter((h) => h.status === "live");
}

/** The offered hold of a fan's entry, as the inventory reports it. */
async function offeredHold(sale: Sale, who: Fan): Promise<HoldView> {
  const row = (await entries(sale)).filter((e) => e.accountId === who.accountId).at(-1);
  if (!row?.offerHoldId) throw new Error("no offer");
  const hold = await holdOf(sale, row.offerHoldId);
  if (!hold) throw new Error("offered hold unknown to the inventory");
  return hold;
}

/** Where an offer email sends the fan to pay: the checkout page, at the configured public origin. */
function payLinkOf(sale: Sale, holdId: string): string {
  return `${env.PUBLIC_ORIGIN}/checkout.html?event=${sale.eventId}&hold=${holdId}`;
}

/** The links of an offer email (the text's pay line, the HTML's hrefs), each checked to be absolute. */
function payLinks(email: { text: string | null; html: string | null } | undefined): string[] {
  const inText = [...(email?.text ?? "").matchAll(/^Pay here: (\S+)$/gm)].map((m) => m[1] ?? "");
  const inHtml = [...(email?.html ?? "").matchAll(/href="([^"]*)"/g)].map((m) => (m[1] ?? "").replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))));
  const links = [...inText, ...inHtml];
  for (const link of links) expect(URL.canParse(link), `${link} is not an absolute URL`).toBe(true);
  return links;
}

describe("joining", () => {
  it("is allowed only when the event or the price tier has fewer places on sale than asked, once per account", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 5 });
    const [x, y, z, blockerA, blockerB] = [0, 1, 2, 3, 4].map((i) => fanOf(sale, i)) as [Fan, Fan, Fan, Fan, Fan];
    const path = `/api/events/${sale.eventId}/waitlist`;

    expect(errorCode(await callApp("POST", path, { bearer: x.session, body: { quantity: 1 } }), 409)).toBe("not_sold_out");
    await holdSeats(sale, blockerA.accountId, [0, 1, 2, 3]);
    expect(await freeSeats(sale)).toEqual([4, 5]); // tier A is sold out, tier B is not

    const first = await join(sale, x, { quantity: 1, priceTier: "A" });
    expect(first).toMatchObject({ status: "waiting", position: 1, quantity: 1, priceTier: "A", offer: null });
    expect(errorCode(await callApp("POST", path, { bearer: x.session, body: { quantity: 2 } }), 409)).toBe("already_waiting");
    expect(errorCode(await callApp("POST", path, { bearer: y.session, body: { quantity: 1 } }), 409)).toBe("not_sold_out");
    expect(errorCode(await callApp("POST", path, { bearer: y.session, body: { quantity: 2, priceTier: "B" } }), 409)).toBe("not_sold_out");
    // Two places left anywhere, three wanted: sold out for this request.
    expect(await join(sale, y, { quantity: 3 })).toMatchObject({ status: "waiting", position: 2 });
    expect(errorCode(await callApp("POST", path, { bearer: z.session, body: { quantity: 1, priceTier: "C" } }), 400)).toBe("invalid_price_tier");
    expect(errorCode(await callApp("POST", path, { bearer: z.session, body: { quantity: 5 } }), 400)).toBe("invalid_request");
    expect(errorCode(await callApp("POST", path, { body: { quantity: 1 } }), 401)).toBe("unauthorized");
    // Holding all four A seats, the blocker may not wait for more.
    expect(errorCode(await callApp("POST", path, { bearer: blockerA.session, body: { quantity: 1, priceTier: "A" } }), 409)).toBe("over_limit");

    await holdSeats(sale, blockerB.accountId, [4, 5]);
    expect(await join(sale, z, { quantity: 2 })).toMatchObject({ status: "waiting", position: 3 });

    expect(await myEntry(sale, x)).toMatchObject({ entryId: first.entryId, status: "waiting", position: 1 });
    const left = await callApp("DELETE", path, { bearer: x.session });
    expect(left.status, left.text).toBe(200);
    expect(await myEntry(sale, x)).toMatchObject({ entryId: first.entryId, status: "cancelled", position: null });
    expect(errorCode(await callApp("DELETE", path, { bearer: x.session }), 404)).toBe("not_waiting");
    expect((await myEntry(sale, y)).position).toBe(1);
    expect((await myEntry(sale, z)).position).toBe(2);
    // Leaving and joining again puts the fan at the back.
    expect(await join(sale, x, { quantity: 1 })).toMatchObject({ status: "waiting", position: 3 });
    expect(errorCode(await callApp("GET", `/api/events/${crypto.randomUUID()}/waitlist`, { bearer: x.session }), 404)).toBe("not_waiting");
  });

  it("counts a row priced apart from its section in that row's price tier", async () => {
    const sale = await openWaitlistSale({
      demandClass: "calm",
      fans: 3,
      chart: {
        name: `Hall ${crypto.randomUUID()}`,
        sections: [{ label: "ORCH", priceTier: "orchestra", rows: [{ label: "A", priceTier: "premium", seats: 2 }, { label: "B", seats: 3 }] }],
      },
    });
    await holdSeats(sale, fanOf(sale, 2).accountId, [0, 1]);
    expect(await freeSeats(sale)).toEqual([2, 3, 4]);
    expect(await join(sale, fanOf(sale, 0), { quantity: 1, priceTier: "premium" })).toMatchObject({ status: "waiting", position: 1 });
    const path = `/api/events/${sale.eventId}/waitlist`;
    expect(errorCode(await callApp("POST", path, { bearer: fanOf(sale, 1).session, body: { quantity: 3, priceTier: "orchestra" } }), 409)).toBe("not_sold_out");
    expect(await join(sale, fanOf(sale, 1), { quantity: 4, priceTier: "orchestra" })).toMatchObject({ status: "waiting", position: 2 });
  });
});

describe("offers", () => {
  it("go to the first fans in line: a hold in their name, an email with the pay link, once", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 5 });
    const waiters = [0, 1, 2].map((i) => fanOf(sale, i));
    const blocker = fanOf(sale, 3);
    const singles = [await holdSeats(sale, blocker.accountId, [0]), await holdSeats(sale, blocker.accountId, [1])];
    await holdSeats(sale, blocker.accountId, [2, 3]);
    await holdSeats(sale, fanOf(sale, 4).accountId, [4, 5]);
    for (const waiter of waiters) await join(sale, waiter, { quantity: 1 });

    for (const hold of singles) await releaseHold(sale, blocker.accountId, hold.holdId);
    const report = await serve(sale);
    expect(report.offered).toBe(2);
    expect(await statuses(sale)).toEqual(["offered", "offered", "waiting", undefined, undefined]);

    const offers = [await offeredHold(sale, fanOf(sale, 0)), await offeredHold(sale, fanOf(sale, 1))];
    for (const [i, hold] of offers.entries()) {
      expect(hold).toMatchObject({ status: "live", accountId: fanOf(sale, i).accountId });
      expect(hold.expiresAt - Date.now()).toBeGreaterThanOrEqual(3600_000); // the event's hold TTL (plus jitter)
      const emails = await offerEmails(fanOf(sale, i));
      expect(emails).toHaveLength(1);
      expect(payLinks(emails[0])).toEqual([payLinkOf(sale, hold.holdId), payLinkOf(sale, hold.holdId)]);
    }
    expect(offers.flatMap((h) => h.seats.map((s) => s.seatIndex)).sort()).toEqual([0, 1]);
    expect(await freeSeats(sale)).toEqual([]);
    expect(await offerEmails(fanOf(sale, 2))).toHaveLength(0);

    const mine = await myEntry(sale, fanOf(sale, 0));
    expect(mine.offer?.hold.holdId).toBe(offers[0]?.holdId);
    expect(mine.offer?.paymentPath).toBe(`/api/events/${sale.eventId}/holds/${offers[0]?.holdId}/payment`);
    expect((await myEntry(sale, fanOf(sale, 2))).position).toBe(1);

    // Another pass changes nothing and sends nothing.
    expect((await serve(sale)).offered).toBe(0);
    expect(await statuses(sale)).toEqual(["offered", "offered", "waiting", undefined, undefined]);
    expect(await offerEmails(fanOf(sale, 0))).toHaveLength(1);
    for (const waiter of waiters) expect(await liveHolds(sale, waiter)).toHaveLength(waiter === fanOf(sale, 2) ? 0 : 1);
  });

  it("serve a bigger request only when enough places are back, never overtaken by later fans for the same places; other tiers go on", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 6 });
    const [wantsTwoA, wantsOneA, wantsOneB, wantsAny] = [0, 1, 2, 3].map((i) => fanOf(sale, i)) as [Fan, Fan, Fan, Fan];
    const blockerA = fanOf(sale, 4);
    const blockerB = fanOf(sale, 5);
    const aSeats = [];
    for (const seat of [0, 1, 2, 3]) aSeats.push(await holdSeats(sale, blockerA.accountId, [seat]));
    const bSeats = [await holdSeats(sale, blockerB.accountId, [4]), await holdSeats(sale, blockerB.accountId, [5])];
    await join(sale, wantsTwoA, { quantity: 2, priceTier: "A" });
    await join(sale, wantsOneA, { quantity: 1, priceTier: "A" });
    await join(sale, wantsOneB, { quantity: 1, priceTier: "B" });
    await join(sale, wantsAny, { quantity: 1 });

    await releaseHold(sale, blockerA.accountId, aSeats[0]?.holdId ?? "");
    await releaseHold(sale, blockerB.accountId, bSeats[0]?.holdId ?? "");
    await serve(sale);
    // One A seat: not enough for the first fan, who holds back the later A and any-tier fans; the B fan is served.
    expect(await statuses(sale)).toEqual(["waiting", "waiting", "offered", "waiting", undefined, undefined]);
    expect((await offeredHold(sale, wantsOneB)).seats.map((s) => s.seatIndex)).toEqual([4]);
    expect(await freeSeats(sale)).toEqual([0]);

    await releaseHold(sale, blockerA.accountId, aSeats[2]?.holdId ?? "");
    await serve(sale);
    expect(await statuses(sale)).toEqual(["offered", "waiting", "offered", "waiting", undefined, undefined]);
    expect((await offeredHold(sale, wantsTwoA)).seats.map((s) => s.seatIndex)).toEqual([0, 2]); // split: no two adjacent seats were free
    expect(await offerEmails(wantsTwoA)).toHaveLength(1);
    expect(await offerEmails(wantsOneA)).toHaveLength(0);
  });

  it("pass to the next fan when they lapse or are given up, and fulfil the entry when paid", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 5, holdTtlSeconds: 60 });
    const [first, second, third, fourth] = [0, 1, 2, 3].map((i) => fanOf(sale, i)) as [Fan, Fan, Fan, Fan];
    const blocker = fanOf(sale, 4);
    const back = await holdSeats(sale, blocker.accountId, [0]);
    await sellSeats(sale, blocker.accountId, [1, 2, 3]); // sold: they never come back
    for (const waiter of [first, second, third, fourth]) await join(sale, waiter, { quantity: 1, priceTier: "A" });
    await releaseHold(sale, blocker.accountId, back.holdId);
    await serve(sale);
    const lapsing = await offeredHold(sale, first);
    expect(await statuses(sale)).toEqual(["offered", "waiting", "waiting", "waiting", undefined]);

    clock.advance(lapsing.expiresAt - Date.now() + 1);
    expect(await serve(sale)).toMatchObject({ expired: 1, offered: 1 });
    expect(await statuses(sale)).toEqual(["expired", "offered", "waiting", "waiting", undefined]);
    expect(await myEntry(sale, first)).toMatchObject({ status: "expired", offer: null });
    expect((await offeredHold(sale, second)).seats.map((s) => s.seatIndex)).toEqual([0]);

    // The second fan leaves: the offer is released and passes on.
    const leaving = await offeredHold(sale, second);
    const left = await callApp("DELETE", `/api/events/${sale.eventId}/waitlist`, { bearer: second.session });
    expect(left.status, left.text).toBe(200);
    expect((await holdOf(sale, leaving.holdId))?.status).toBe("released");
    await serve(sale);
    expect(await statuses(sale)).toEqual(["expired", "cancelled", "offered", "waiting", undefined]);

    // The third pays: the entry is fulfilled (seen at once by the fan, and by the next pass).
    const paid = await offeredHold(sale, third);
    await pay(sale, third, paid.holdId);
    expect(await myEntry(sale, third)).toMatchObject({ status: "fulfilled", offer: null });
    expect(await serve(sale)).toMatchObject({ offered: 0 });
    expect(await statuses(sale)).toEqual(["expired", "cancelled", "fulfilled", "waiting", undefined]);
    expect((await holdOf(sale, paid.holdId))?.status).toBe("confirmed");
  });

  it("pass to the next fan at a hot event when the inventory's alarm expires the offer", async () => {
    const sale = await openWaitlistSale({ demandClass: "hot", fans: 4, holdTtlSeconds: 60 });
    const [first, second] = [fanOf(sale, 0), fanOf(sale, 1)];
    const back = await holdSeats(sale, fanOf(sale, 2).accountId, [0]);
    await sellSeats(sale, fanOf(sale, 2).accountId, [1, 2, 3]); // sold: they never come back
    await sellSeats(sale, fanOf(sale, 3).accountId, [4, 5]);
    await join(sale, first, { quantity: 1 });
    await join(sale, second, { quantity: 1 });

    await releaseHold(sale, fanOf(sale, 2).accountId, back.holdId);
    expect(await serve(sale)).toMatchObject({ returnedPlaces: 1, offered: 1 });
    const lapsing = await offeredHold(sale, first);
    expect(lapsing).toMatchObject({ status: "live", accountId: first.accountId });
    expect(await offerEmails(first)).toHaveLength(1);

    clock.advance(lapsing.expiresAt - Date.now() + 1);
    const stub = inventoryOf(sale.eventId);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await holdOf(sale, lapsing.holdId))?.status).toBe("expired");
    expect(await serve(sale)).toMatchObject({ returnedPlaces: 1, expired: 1, offered: 1 });
    expect(await statuses(sale)).toEqual(["expired", "offered", undefined, undefined]);
    expect((await offeredHold(sale, second)).seats.map((s) => s.seatIndex)).toEqual([0]);
    expect(await serve(sale)).toMatchObject({ returnedPlaces: 0, offered: 0 });
  });

  it("are made by the cron's pass over every event with fans waiting", async () => {
    // At real time: every other event this suite leaves waiting is a year ahead, so not yet on sale for this pass.
    clock.stop();
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 3 });
    const back = await holdSeats(sale, fanOf(sale, 1).accountId, [0, 1, 2, 3]);
    await holdSeats(sale, fanOf(sale, 2).accountId, [4, 5]);
    await join(sale, fanOf(sale, 0), { quantity: 1, priceTier: "A" });
    await releaseHold(sale, fanOf(sale, 1).accountId, back.holdId);
    const pass = await withDb((db) => serveWaitlists({ env, db, keepAlive: () => undefined }));
    expect(pass.events).toBeGreaterThanOrEqual(1);
    expect(await statuses(sale)).toEqual(["offered", undefined, undefined]);
    // No request behind this pass, yet the email's links are absolute, at PUBLIC_ORIGIN.
    const offer = await offeredHold(sale, fanOf(sale, 0));
    const emails = await offerEmails(fanOf(sale, 0));
    expect(emails).toHaveLength(1);
    expect(payLinks(emails[0])).toEqual([payLinkOf(sale, offer.holdId), payLinkOf(sale, offer.holdId)]);
  });
});

describe("concurrent passes", () => {
  it("never offer twice, never overtake, and end where one pass would", async () => {
    const scenario = fc.record({
      requests: fc.array(fc.record({ quantity: fc.integer({ min: 1, max: 3 }), priceTier: fc.constantFrom("A", "B", null) }), { minLength: 2, maxLength: 5 }),
      returned: fc.subarray([0, 1, 2, 3, 4, 5], { minLength: 1 }),
      passes: fc.integer({ min: 2, max: 3 }),
      demandClass: fc.constantFrom("calm" as const, "hot" as const),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ requests, returned, passes, demandClass }) => {
        const sale = await openWaitlistSale({ demandClass, fans: requests.length + 2 });
        const blockerA = fanOf(sale, requests.length);
        const blockerB = fanOf(sale, requests.length + 1);
        const singles = new Map<number, HoldView>();
        for (const seat of [0, 1, 2, 3, 4, 5]) singles.set(seat, await holdSeats(sale, (seat < 4 ? blockerA : blockerB).accountId, [seat]));
        for (const [i, request] of requests.entries()) await join(sale, fanOf(sale, i), request.priceTier === null ? { quantity: request.quantity } : { quantity: request.quantity, priceTier: request.priceTier });
        for (const seat of returned) await releaseHold(sale, (seat < 4 ? blockerA : blockerB).accountId, singles.get(seat)?.holdId ?? "");

        await Promise.all(Array.from({ length: passes }, () => serve(sale)));
        await checkOffers(sale, requests, returned.length);
        await serve(sale);
        const offered = await checkOffers(sale, requests, returned.length);
        expect(offered).toEqual(expectedOffers(requests, returned, await offeredTiers(sale, requests.length)));
        await closeEntries();
      }),
      { numRuns: 8 },
    );
  }, 240_000);
});

/**
 * Checks every invariant of the offers made so far and returns which
 * entries (by fan index) are offered: one live hold per offered fan and none
 * for the others, of the size and tier asked, on distinct seats among those
 * returned; one email each; no waiting fan ahead of an offered one wants the
 * same places.
 */
async function checkOffers(sale: Sale, requests: { quantity: number; priceTier: string | null }[], returnedCount: number): Promise<number[]> {
  const rows = await entries(sale);
  const offered: number[] = [];
  const seats = new Set<number>();
  for (const [i, request] of requests.entries()) {
    const who = fanOf(sale, i);
    const row = rows.find((r) => r.accountId === who.accountId);
    const live = await liveHolds(sale, who);
    expect(row?.status === "offered" || row?.status === "waiting", row?.status).toBe(true);
    if (row?.status !== "offered") {
      expect(live).toHaveLength(0);
      continue;
    }
    offered.push(i);
    expect(live.map((h) => h.holdId)).toEqual([row.offerHoldId]);
    const hold = live[0];
    expect(hold?.seats).toHaveLength(request.quantity);
    for (const seat of hold?.seats ?? []) {
      if (request.priceTier !== null) expect(seat.priceTier).toBe(request.priceTier);
      expect(seats.has(seat.seatIndex)).toBe(false);
      seats.add(seat.seatIndex);
    }
    expect(await offerEmails(who)).toHaveLength(1);
    for (const earlier of rows) {
      if (earlier.position >= row.position || earlier.status !== "waiting") continue;
      const overlaps = earlier.priceTier === null || request.priceTier === null || earlier.priceTier === request.priceTier;
      expect(overlaps, `fan ${i} was offered places ahead of an earlier fan waiting for the same`).toBe(false);
    }
  }
  expect(seats.size).toBeLessThanOrEqual(returnedCount);
  return offered;
}

/** Tiers of the seats each offered fan got (to follow any-tier offers in the model). */
async function offeredTiers(sale: Sale, count: number): Promise<Map<number, string[]>> {
  const tiers = new Map<number, string[]>();
  for (let i = 0; i < count; i++) {
    const live = await liveHolds(sale, fanOf(sale, i));
    if (live[0]) tiers.set(i, live[0].seats.map((s) => s.priceTier));
  }
  return tiers;
}

/** The fairness rule, as a model: which fans (by index) one pass over the returned seats offers. */
function expectedOffers(requests: { quantity: number; priceTier: string | null }[], returned: number[], tiersTaken: Map<number, string[]>): number[] {
  const free = new Map<string, number>([
    ["A", returned.filter((s) => s < 4).length],
    ["B", returned.filter((s) => s >= 4).length],
  ]);
  const inScope = (tier: string | null) => (tier === null ? (free.get("A") ?? 0) + (free.get("B") ?? 0) : (free.get(tier) ?? 0));
  const blocked = new Set<string>();
  let closed = false;
  const offered: number[] = [];
  for (const [i, request] of requests.entries()) {
    if (closed) break;
    const held = request.priceTier === null ? blocked.size > 0 : blocked.has(request.priceTier);
    if (held || inScope(request.priceTier) < request.quantity) {
      if (request.priceTier === null) closed = true;
      else blocked.add(request.priceTier);
      continue;
    }
    offered.push(i);
    const taken = request.priceTier === null ? (tiersTaken.get(i) ?? []) : Array.from({ length: request.quantity }, () => request.priceTier ?? "");
    for (const tier of taken) free.set(tier, (free.get(tier) ?? 0) - 1);
  }
  return offered;
}
