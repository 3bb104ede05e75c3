/**
 * The calm seat map's live feed from the Worker's side: `withSeatFeed`
 * (workers/holds/seat-feed.ts) publishes what a calm inventory changes to the
 * event's `SeatMapFeed`, after the answer and without ever failing a fan, and
 * `GET /api/events/:id/seat-feed` connects viewers to it. Tests run a day
 * ahead of the real clock, so the feed's alarms run only when a test runs them.
 */
import { env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import type { HoldChangeResult, HoldResult, HoldView, Inventory } from "../../../core/holds/contract";
import { withSeatFeed, type SeatFeed } from "../../../workers/holds/seat-feed";
import { setClock } from "../../fixtures/clocks";
import { callApp, expectApiError, ORIGIN, rawRequest } from "../../fixtures/http";
import { alarmOf } from "../../fixtures/objects";
import { connect, expectNothingSentBeforeProbe, newFeed, seatFeedTestFile, viewerOf } from "../../fixtures/seat-feed";
import { openEvent } from "../../fixtures/seeding";
import { fanSession } from "../../fixtures/tokens";

seatFeedTestFile();

function holdView(seatIndexes: number[], overrides: Partial<HoldView> = {}): HoldView {
  return {
    holdId: crypto.randomUUID(),
    eventId: crypto.randomUUID(),
    accountId: crypto.randomUUID(),
    status: "live",
    expiresAt: Date.now() + 600_000,
    createdAt: Date.now(),
    seats: seatIndexes.map((seatIndex) => ({ seatIndex, section: "A", row: "1", seat: String(seatIndex + 1), priceTier: "A", priceCents: 1000 })),
    generalAdmission: [],
    totalCents: 1000 * seatIndexes.length,
    ...overrides,
  };
}

/** An inventory answering every call with `results`, in order. */
function scriptedInventory(results: HoldChangeResult[]): Inventory {
  const next = async (): Promise<HoldResult> => {
    const result = results.shift();
    if (!result) throw new Error("no scripted result left");
    return result;
  };
  return {
    hold: next,
    release: next,
    confirm: next,
    unsell: next,
    getHold: async () => null,
    accountHolds: async () => [],
    availability: () => Promise.reject(new Error("not scripted")),
    openTo: () => Promise.reject(new Error("not scripted")),
  };
}

describe("withSeatFeed", () => {
  it("publishes holds with their expiry, releases as available and confirmations as taken", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    const kept: Promise<unknown>[] = [];
    const sold = holdView([10, 11]);
    const released = holdView([12]);
    const inventory = withSeatFeed(
      scriptedInventory([
        { ok: true, hold: sold },
        { ok: true, hold: released },
        { ok: false, reason: "seat_taken", message: "taken" },
        { ok: true, hold: { ...released, status: "released" } },
        { ok: true, hold: { ...sold, status: "confirmed" } },
      ]),
      feed,
      (promise) => kept.push(promise),
    );
    const caller = { accountId: sold.accountId, attemptKey: "k", requestId: "request-1" };

    expect(await inventory.hold({ ...caller, kind: "seats", seatIndexes: [10, 11] })).toEqual({ ok: true, hold: sold });
    await inventory.hold({ ...caller, kind: "seats", seatIndexes: [12] });
    expect(await inventory.hold({ ...caller, kind: "seats", seatIndexes: [10] })).toMatchObject({ ok: false });
    await Promise.all(kept);
    expect(kept).toHaveLength(2);
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[10, 0], [11, 0], [12, 0]]);

    setClock(Date.now() + 1_000);
    await inventory.release({ ...caller, holdId: released.holdId });
    await inventory.confirm({ requestId: "confirm-1", holdId: sold.holdId, allowLapsed: false });
    await Promise.all(kept);
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[10, 0], [11, 0], [12, 1]]);

    // Neither hold's expiry is announced.
    expect(await alarmOf(feed)).toBeNull();
    setClock(sold.expiresAt);
    await expectNothingSentBeforeProbe(feed, viewer);
  });

  it("answers fans even when the feed cannot be reached", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const hold = holdView([1]);
    const broken: SeatFeed[] = [
      { publish: () => Promise.reject(new Error("feed down")) },
      {
        publish: () => {
          throw new Error("no stub");
        },
      },
    ];
    for (const feed of broken) {
      const kept: Promise<unknown>[] = [];
      const inventory = withSeatFeed(scriptedInventory([{ ok: true, hold }]), feed, (promise) => kept.push(promise));
      expect(await inventory.hold({ kind: "seats", accountId: hold.accountId, attemptKey: "k", requestId: "request-1", seatIndexes: [1] })).toEqual({ ok: true, hold });
      expect(kept).toHaveLength(1);
      await expect(Promise.all(kept)).resolves.toBeDefined();
    }
    expect(errors).toHaveBeenCalledTimes(2);
    expect(String(errors.mock.calls[0]?.[0])).toContain("seat_feed_publish_failed");
  });
});

const heldSchema = z.object({ hold: z.object({ holdId: z.uuid(), expiresAt: z.iso.datetime(), seats: z.array(z.object({ seatIndex: z.number() })) }) });

describe("GET /api/events/:id/seat-feed", () => {
  it("refuses requests that are not WebSocket upgrades, unknown events and hot events", async () => {
    const calm = await openEvent({ demandClass: "calm", accounts: 0 });
    const hot = await openEvent({ demandClass: "hot", accounts: 0 });
    const upgrade = { headers: { Upgrade: "websocket" } };
    const plain = await rawRequest(`/api/events/${calm.event.id}/seat-feed`);
    expectApiError(plain, 426, "upgrade_required");
    expect(plain.headers.get("Upgrade")).toBe("websocket");
    expectApiError(await rawRequest(`/api/events/${crypto.randomUUID()}/seat-feed`, upgrade), 404, "not_found");
    expectApiError(await rawRequest(`/api/events/${hot.event.id}/seat-feed`, upgrade), 409, "no_seat_feed");
    expectApiError(await rawRequest(`/api/events/not-an-id/seat-feed`, upgrade), 400, "invalid_request");
  });

  it("pushes a calm event's holds, releases and lazy expiries to viewers", async () => {
    const { event, accounts } = await openEvent({ demandClass: "calm", accounts: 2, holdTtlSeconds: 600 });
    const feed = env.SEAT_MAP_FEED.getByName(event.id);
    const viewer = viewerOf(await SELF.fetch(`${ORIGIN}/api/events/${event.id}/seat-feed`, { headers: { Upgrade: "websocket" } }));
    expect(await viewer.next()).toEqual({ type: "hello", at: Date.now(), recent: [] });
    const [first, second] = await Promise.all(accounts.map((accountId) => fanSession(accountId)));
    if (!first || !second) throw new Error("two fans expected");

    const held = await callApp("POST", `/api/events/${event.id}/holds`, { bearer: first, body: { requestId: "feed-hold-1", seats: [3, 4] } });
    expect(held.status, JSON.stringify(held.json)).toBe(201);
    const released = heldSchema.parse(held.json).hold;
    const other = await callApp("POST", `/api/events/${event.id}/holds`, { bearer: second, body: { requestId: "feed-hold-2", seats: [9] } });
    expect(other.status, JSON.stringify(other.json)).toBe(201);
    const expiring = heldSchema.parse(other.json).hold;
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect((await viewer.nextSeats()).changes).toEqual([[3, 0], [4, 0], [9, 0]]);

    setClock(Date.now() + 1_000);
    const release = await callApp("DELETE", `/api/events/${event.id}/holds/${released.holdId}`, { bearer: first });
    expect(release.status, JSON.stringify(release.json)).toBe(200);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect((await viewer.nextSeats()).changes).toEqual([[3, 1], [4, 1]]);

    // Postgres lets the second hold lapse silently; the feed announces it on time.
    const expiresAt = Date.parse(expiring.expiresAt);
    expect(await alarmOf(feed)).toBe(expiresAt);
    setClock(expiresAt);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: expiresAt, changes: [[9, 1]] });
    const lapsed = await callApp("GET", `/api/events/${event.id}/holds/${expiring.holdId}`, { bearer: second });
    expect(lapsed.json).toMatchObject({ hold: { status: "expired" } });
  });
});
