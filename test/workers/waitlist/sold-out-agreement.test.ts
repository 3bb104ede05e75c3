/**
 * The waitlist's "sold out" agrees with what the room and the holds tell
 * fans (issue 17, seen in the sellout bench): a fan told sold out can join
 * the waitlist, whether the places left are kept for the waitlist's pass
 * (returned after a sell-out) or promised to fans admitted before them; a
 * fan who could hold what they ask for is sent to hold it (409 not_sold_out).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { callApp, errorCode } from "../../fixtures/http";
import { lobbyJoin, promisedPlaces, publishedState, roomOf, withInventory } from "../../fixtures/objects";
import { fanOf, type Sale } from "../../fixtures/seeding";
import { clock, closeEntries, holdSeats, join, openWaitlistSale, releaseHold, sellSeats, serve, statuses } from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(async () => {
  clock.stop();
  await closeEntries();
});

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

    const refused = await withInventory(sale.eventId, (inventory) =>
      inventory.hold({ kind: "best", accountId: later.accountId, attemptKey: crypto.randomUUID(), requestId: crypto.randomUUID(), quantity: 1, allowSplit: true }),
    );
    expect(refused).toMatchObject({ ok: false, reason: "sold_out" });
    expect(await join(sale, later, { quantity: 1 })).toMatchObject({ status: "waiting", position: 1 });

    // The admitted fan can hold them: sent to hold, not to the waitlist.
    const path = `/api/events/${sale.eventId}/waitlist`;
    expect(errorCode(await callApp("POST", path, { bearer: admitted.session, body: { quantity: 2 } }), 409)).toBe("not_sold_out");
    expect(await join(sale, admitted, { quantity: 3 })).toMatchObject({ status: "waiting", position: 2 });
  });
});
