/**
 * The `SeatMapFeed` object (a calm event's live seat map): changes batched per
 * flush interval, hold expiries announced on time, state kept across
 * evictions, and what new viewers are told. Tests run a day ahead of the real
 * clock: every alarm the feed sets lies in workerd's future, so alarms run
 * only when a test runs them.
 */
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FLUSH_INTERVAL_MS, RECENT_WINDOW_MS } from "../../durable-objects/seat-map-feed";
import { setClock } from "../fixtures/clocks";
import { alarmOf } from "../fixtures/objects";
import { connect, expectNothingSentBeforeProbe, newFeed, PROBE_SEAT, seatFeedTestFile, viewerOf } from "../fixtures/seat-feed";

seatFeedTestFile();

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
    const start = Date.now();

    await feed.publish([{ seatIndex: 7, available: false }, { seatIndex: 3, available: false }]);
    setClock(start + 30);
    await feed.publish([{ seatIndex: 12, available: false }]);
    setClock(start + 60);
    await feed.publish([{ seatIndex: 3, available: true }, { seatIndex: 40, available: false }]);
    expect(await alarmOf(feed)).toBe(start);

    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await viewer.nextSeats()).toEqual({ type: "seats", at: start + 60, changes: [[3, 1], [7, 0], [12, 0], [40, 0]] });
    // Nothing left: no alarm, and running it anyway sends nothing.
    expect(await alarmOf(feed)).toBeNull();
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
    expect(await alarmOf(feed)).toBe(first.at + FLUSH_INTERVAL_MS);
    // Run early: too soon after the last message, so it only re-arms.
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await alarmOf(feed)).toBe(first.at + FLUSH_INTERVAL_MS);

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
            setClock(Date.now() + s.ms);
          }
        }
        setClock(Date.now() + FLUSH_INTERVAL_MS);
        await runDurableObjectAlarm(feed);
        setClock(Date.now() + FLUSH_INTERVAL_MS);
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
    const expiresAt = Date.now() + 600_000;
    await feed.publish(
      [{ seatIndex: 4, available: false }, { seatIndex: 5, available: false }],
      [{ holdId: crypto.randomUUID(), seatIndexes: [4, 5], at: expiresAt }],
    );
    await runDurableObjectAlarm(feed);
    expect((await viewer.nextSeats()).changes).toEqual([[4, 0], [5, 0]]);
    expect(await alarmOf(feed)).toBe(expiresAt);

    setClock(expiresAt - 1);
    expect(await runDurableObjectAlarm(feed)).toBe(true);
    expect(await alarmOf(feed)).toBe(expiresAt);

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
    const start = Date.now();
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
    const expiresAt = Date.now() + 60_000;
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

    setClock(Date.now() + RECENT_WINDOW_MS);
    const late = viewerOf(await feed.fetch("https://feed.test/", { headers: { Upgrade: "websocket" } }));
    expect(await late.next()).toEqual({ type: "hello", at: Date.now(), recent: [[2, 1], [6, 0]] });

    setClock(Date.now() + 1);
    const later = viewerOf(await feed.fetch("https://feed.test/", { headers: { Upgrade: "websocket" } }));
    expect(await later.next()).toEqual({ type: "hello", at: Date.now(), recent: [] });
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
