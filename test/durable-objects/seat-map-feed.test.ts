import { createExecutionContext, env, evictDurableObject, runDurableObjectAlarm, runInDurableObject, SELF, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { FLUSH_INTERVAL_MS, RECENT_WINDOW_MS } from "../../durable-objects/seat-map-feed";
import worker from "../../workers/index";
import { signFanSession } from "../../workers/sign-in/fan-session";
import type { HoldChangeResult, HoldResult, HoldView, Inventory } from "../../core/holds/contract";
import { withSeatFeed, type SeatFeed } from "../../workers/holds/seat-feed";
import { expectApiError, ORIGIN, rawRequest } from "../fixtures/http";
import { openEvent } from "../fixtures/seeding";

/**
 * Tests run a day ahead of the real clock: every alarm the feed sets lies in
 * workerd's future, so alarms run only when a test runs them.
 */
const CLOCK_AHEAD_MS = 86_400_000;
let clock = 0;

function setClock(at: number): void {
  clock = at;
  vi.setSystemTime(at);
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  setClock(Math.floor(Date.now() / 1000) * 1000 + CLOCK_AHEAD_MS);
});

const sockets: WebSocket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
  vi.restoreAllMocks();
  vi.useRealTimers();
});

// ---------------------------------------------------------------- a viewer

const wireSeat = z.tuple([z.number().int().min(0), z.union([z.literal(0), z.literal(1)])]);
const feedMessage = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("hello"), at: z.number(), recent: z.array(wireSeat) }),
  z.strictObject({ type: z.literal("seats"), at: z.number(), changes: z.array(wireSeat) }),
]);
type FeedMessage = z.infer<typeof feedMessage> | { type: "pong" };
type SeatsMessage = Extract<FeedMessage, { type: "seats" }>;

/** A seat no test chart has: published last so its message proves nothing else was sent before it. */
const PROBE_SEAT = 99_999;

/** One WebSocket viewer: every message, validated, in arrival order. */
class Viewer {
  private readonly inbox: FeedMessage[] = [];
  private readonly waiting: ((message: FeedMessage) => void)[] = [];

  constructor(readonly socket: WebSocket) {
    socket.addEventListener("message", (event) => {
      const message: FeedMessage = event.data === "pong" ? { type: "pong" } : feedMessage.parse(JSON.parse(String(event.data)));
      const waiter = this.waiting.shift();
      if (waiter) waiter(message);
      else this.inbox.push(message);
    });
  }

  /** The next message (waits for it). */
  next(): Promise<FeedMessage> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async nextSeats(): Promise<SeatsMessage> {
    const message = await this.next();
    if (message.type !== "seats") throw new Error(`expected a seats message, got ${JSON.stringify(message)}`);
    return message;
  }
}

/** Accepts the client end of an upgrade response as a viewer. */
function viewerOf(response: Response): Viewer {
  expect(response.status).toBe(101);
  const socket = response.webSocket;
  if (!socket) throw new Error("no WebSocket in the 101 response");
  socket.accept();
  sockets.push(socket);
  return new Viewer(socket);
}

/** A viewer connected straight to a feed object. */
async function connect(feed: DurableObjectStub<import("../../workers/index").SeatMapFeed>): Promise<Viewer> {
  const viewer = viewerOf(await feed.fetch("https://feed.test/", { headers: { Upgrade: "websocket" } }));
  expect(await viewer.next()).toEqual({ type: "hello", at: clock, recent: [] });
  return viewer;
}

function newFeed() {
  return env.SEAT_MAP_FEED.getByName(crypto.randomUUID());
}

async function alarmTime(feed: DurableObjectStub): Promise<number | null> {
  return runInDurableObject(feed, (_instance, state) => state.storage.getAlarm());
}

/**
 * Publishes the probe seat and flushes it (a flush interval later), then
 * returns the next message, failing if anything was sent before the probe.
 */
async function expectNothingSentBeforeProbe(feed: DurableObjectStub<import("../../workers/index").SeatMapFeed>, viewer: Viewer): Promise<void> {
  setClock(clock + FLUSH_INTERVAL_MS);
  await feed.publish([{ seatIndex: PROBE_SEAT, available: false }]);
  expect(await runDurableObjectAlarm(feed)).toBe(true);
  expect((await viewer.nextSeats()).changes).toEqual([[PROBE_SEAT, 0]]);
}

// ---------------------------------------------------------------- the object

describe("SeatMapFeed", () => {
  it("answers anything but a WebSocket upgrade with 426", async () => {
    const response = await newFeed().fetch("https://feed.test/");
    expect(response.status).toBe(426);
    expect(response.headers.get("Upgrade")).toBe("websocket");
    expect(await response.json()).toEqual({ error: { code: "upgrade_required", message: expect.any(String) } });
  });

  it("sends changes made within one flush interval as one message, last state per seat winning", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    const start = clock;

    await feed.publish([{ seatIndex: 7, available: false }, { seatIndex: 3, available: false }]);
    setClock(start + 30);
    await feed.publish([{ seatIndex: 12, available: false }]);
    setClock(start + 60);
    await feed.publish([{ seatIndex: 3, available: true }, { seatIndex: 40, available: false }]);
    expect(await alarmTime(feed)).toBe(start);

    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: start + 60, changes: [[3, 1], [7, 0], [12, 0], [40, 0]] });
    // Nothing left: no alarm, and running it anyway sends nothing.
    expect(await alarmTime(feed)).toBeNull();
    expect(await runDurableObjectAlarm(feed)).toBe(false);
    await expectNothingSentBeforeProbe(feed, viewer);
  });

  it("sends at most one message per flush interval, and an early alarm sends nothing", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    await feed.publish([{ seatIndex: 1, available: false }]);
    await runDurableObjectAlarm(feed);
    const first = await viewer.nextSeats();

    setClock(first.at + 10);
    await feed.publish([{ seatIndex: 2, available: false }]);
    expect(await alarmTime(feed)).toBe(first.at + FLUSH_INTERVAL_MS);
    // Run early: too soon after the last message, so it only re-arms.
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await alarmTime(feed)).toBe(first.at + FLUSH_INTERVAL_MS);

    setClock(first.at + FLUSH_INTERVAL_MS);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: first.at + FLUSH_INTERVAL_MS, changes: [[2, 0]] });
  });

  it("delivers exactly the last published state of every seat, whatever the timing of publishes and alarms", async () => {
    const step = fc.oneof(
      fc.record({
        kind: fc.constant("publish" as const),
        // Plain objects: RPC cannot serialize null-prototype ones.
        changes: fc.array(fc.record({ seatIndex: fc.integer({ min: 0, max: 15 }), available: fc.boolean() }, { noNullPrototype: true }), { minLength: 1, maxLength: 5 }),
      }, { noNullPrototype: true }),
      fc.record({ kind: fc.constant("alarm" as const) }, { noNullPrototype: true }),
      fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 150 }) }, { noNullPrototype: true }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const feed = newFeed();
        const viewer = await connect(feed);
        const published = new Map<number, 0 | 1>();
        for (const s of steps) {
          if (s.kind === "publish") {
            await feed.publish(s.changes);
            for (const change of s.changes) published.set(change.seatIndex, change.available ? 1 : 0);
          } else if (s.kind === "alarm") {
            await runDurableObjectAlarm(feed);
          } else {
            setClock(clock + s.ms);
          }
        }
        setClock(clock + FLUSH_INTERVAL_MS);
        await runDurableObjectAlarm(feed);
        setClock(clock + FLUSH_INTERVAL_MS);
        await feed.publish([{ seatIndex: PROBE_SEAT, available: false }]);
        await runDurableObjectAlarm(feed);

        const seen = new Map<number, 0 | 1>();
        const times: number[] = [];
        for (;;) {
          const message = await viewer.nextSeats();
          times.push(message.at);
          if (message.changes.some(([seat]) => seat === PROBE_SEAT)) break;
          const seats = message.changes.map(([seat]) => seat);
          expect(new Set(seats).size).toBe(seats.length);
          for (const [seat, available] of message.changes) seen.set(seat, available);
        }
        expect(seen).toEqual(published);
        for (let i = 1; i < times.length; i += 1) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(FLUSH_INTERVAL_MS);
        viewer.socket.close();
      }),
      { numRuns: 30 },
    );
  });

  it("announces held seats as available when the hold expires", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    const expiresAt = clock + 600_000;
    await feed.publish(
      [{ seatIndex: 4, available: false }, { seatIndex: 5, available: false }],
      [{ holdId: crypto.randomUUID(), seatIndexes: [4, 5], at: expiresAt }],
    );
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[4, 0], [5, 0]]);
    expect(await alarmTime(feed)).toBe(expiresAt);

    setClock(expiresAt - 1);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await alarmTime(feed)).toBe(expiresAt);

    setClock(expiresAt);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: expiresAt, changes: [[4, 1], [5, 1]] });
    // Running the alarm again announces nothing twice.
    await runDurableObjectAlarm(feed);
    await expectNothingSentBeforeProbe(feed, viewer);
  });

  it("does not announce the expiry of seats released, sold or held again before it", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    const start = clock;
    const expiresAt = start + 600_000;
    const released = crypto.randomUUID();
    const sold = crypto.randomUUID();
    await feed.publish(
      [1, 2, 3].map((seatIndex) => ({ seatIndex, available: false })),
      [
        { holdId: released, seatIndexes: [1, 2], at: expiresAt },
        { holdId: sold, seatIndexes: [3], at: expiresAt },
      ],
    );
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[1, 0], [2, 0], [3, 0]]);

    setClock(start + 1_000);
    await feed.publish([1, 2].map((seatIndex) => ({ seatIndex, available: true }))); // released
    await feed.publish([{ seatIndex: 3, available: false }]); // confirmed
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[1, 1], [2, 1], [3, 0]]);

    // Someone else holds seat 1 for longer.
    setClock(start + 2_000);
    await feed.publish([{ seatIndex: 1, available: false }], [{ holdId: crypto.randomUUID(), seatIndexes: [1], at: expiresAt + 5_000 }]);
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[1, 0]]);

    setClock(expiresAt);
    await runDurableObjectAlarm(feed);
    await expectNothingSentBeforeProbe(feed, viewer);
    setClock(expiresAt + 5_000);
    await runDurableObjectAlarm(feed);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: expiresAt + 5_000, changes: [[1, 1]] });
  });

  it("keeps buffered changes, scheduled expiries and hibernated viewers across an eviction", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    const expiresAt = clock + 60_000;
    await feed.publish([{ seatIndex: 8, available: false }], [{ holdId: crypto.randomUUID(), seatIndexes: [8], at: expiresAt }]);
    await feed.publish([{ seatIndex: 9, available: false }]);

    await evictDurableObject(feed);
    expect(await feed.viewerCount()).toBe(1);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect((await viewer.nextSeats()).changes).toEqual([[8, 0], [9, 0]]);

    await evictDurableObject(feed);
    viewer.socket.send("ping");
    expect(await viewer.next()).toEqual({ type: "pong" });
    setClock(expiresAt);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect((await viewer.nextSeats()).changes).toEqual([[8, 1]]);
  });

  it("tells new viewers which seats changed recently, for an edge-cached bitmap to catch up", async () => {
    const feed = newFeed();
    await feed.publish([{ seatIndex: 6, available: false }, { seatIndex: 2, available: true }]);
    await runDurableObjectAlarm(feed);

    setClock(clock + RECENT_WINDOW_MS);
    const late = viewerOf(await feed.fetch("https://feed.test/", { headers: { Upgrade: "websocket" } }));
    expect(await late.next()).toEqual({ type: "hello", at: clock, recent: [[2, 1], [6, 0]] });

    setClock(clock + 1);
    const later = viewerOf(await feed.fetch("https://feed.test/", { headers: { Upgrade: "websocket" } }));
    expect(await later.next()).toEqual({ type: "hello", at: clock, recent: [] });
  });

  it("drops a viewer that disconnects", async () => {
    const feed = newFeed();
    const viewer = await connect(feed);
    await connect(feed);
    expect(await feed.viewerCount()).toBe(2);
    const closed = new Promise((resolve) => viewer.socket.addEventListener("close", resolve));
    viewer.socket.close(1000, "bye");
    await closed;
    await feed.publish([{ seatIndex: 0, available: false }]);
    await runDurableObjectAlarm(feed);
    expect(await feed.viewerCount()).toBe(1);
  });
});

// ---------------------------------------------------------------- the decorator

function holdView(seatIndexes: number[], overrides: Partial<HoldView> = {}): HoldView {
  return {
    holdId: crypto.randomUUID(),
    eventId: crypto.randomUUID(),
    accountId: crypto.randomUUID(),
    status: "live",
    expiresAt: clock + 600_000,
    createdAt: clock,
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

    setClock(clock + 1_000);
    await inventory.release({ ...caller, holdId: released.holdId });
    await inventory.confirm({ requestId: "confirm-1", holdId: sold.holdId, allowLapsed: false });
    await Promise.all(kept);
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[10, 0], [11, 0], [12, 1]]);

    // Neither hold's expiry is announced.
    expect(await alarmTime(feed)).toBeNull();
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

// ---------------------------------------------------------------- through the API

/** A fan API call through the Worker, waiting for its after-response work (the feed publish). */
async function fanCall(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const request = new Request(`${ORIGIN}/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const response = await worker.fetch(request, env, ctx);
  const json: unknown = await response.json();
  await waitOnExecutionContext(ctx);
  return { status: response.status, json };
}

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
    expect(await viewer.next()).toEqual({ type: "hello", at: clock, recent: [] });
    const [first, second] = await Promise.all(accounts.map((accountId) => signFanSession(env.TOKEN_SIGNING_KEY, accountId)));
    if (!first || !second) throw new Error("two fans expected");

    const held = await fanCall(first, "POST", `/events/${event.id}/holds`, { requestId: "feed-hold-1", seats: [3, 4] });
    expect(held.status, JSON.stringify(held.json)).toBe(201);
    const released = heldSchema.parse(held.json).hold;
    const other = await fanCall(second, "POST", `/events/${event.id}/holds`, { requestId: "feed-hold-2", seats: [9] });
    expect(other.status, JSON.stringify(other.json)).toBe(201);
    const expiring = heldSchema.parse(other.json).hold;
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect((await viewer.nextSeats()).changes).toEqual([[3, 0], [4, 0], [9, 0]]);

    setClock(clock + 1_000);
    const release = await fanCall(first, "DELETE", `/events/${event.id}/holds/${released.holdId}`);
    expect(release.status, JSON.stringify(release.json)).toBe(200);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect((await viewer.nextSeats()).changes).toEqual([[3, 1], [4, 1]]);

    // Postgres lets the second hold lapse silently; the feed announces it on time.
    const expiresAt = Date.parse(expiring.expiresAt);
    expect(await alarmTime(feed)).toBe(expiresAt);
    setClock(expiresAt);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: expiresAt, changes: [[9, 1]] });
    const lapsed = await fanCall(second, "GET", `/events/${event.id}/holds/${expiring.holdId}`);
    expect(lapsed.json).toMatchObject({ hold: { status: "expired" } });
  });
});
