/**
 * The `EventInventory` alarm with a controlled clock: expiry releases exactly
 * the due holds, the alarm follows the earliest remaining expiry, running it
 * again changes nothing, expired seats are free before the alarm runs, jitter
 * spreads expiries over its window, a restarted object forgets nothing, and the
 * waitlist hook hears of every returned place.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { EventInventory } from "../../../durable-objects/event-inventory";
import { MIRROR_RETRY_MS } from "../../../durable-objects/event-inventory/postgres-mirror";
import { HOLD_JITTER_MS, type HoldView } from "../../../core/holds/contract";
import { readInventoryStorage } from "../../inventory-model/durable-object-subject";
import { smallChart } from "../../fixtures/charts";
import { withDb } from "../../fixtures/db";
import { bestRequest, held, seatsRequest } from "../../fixtures/holds";
import { alarmOf, inventoryOf, rejectionOf, restartObject } from "../../fixtures/objects";
import { seededRandom } from "../../fixtures/random";
import { openEvent } from "../../fixtures/seeding";

const DAY_MS = 86_400_000;
const TTL_MS = 60_000;

type Stub = DurableObjectStub<EventInventory>;

/** A prepared hot event; the clock is frozen a day ahead, so no alarm ever fires on its own. */
async function hotEvent(options: { accounts?: number; purchaseLimit?: number; chart?: ReturnType<typeof smallChart> } = {}) {
  vi.setSystemTime(Date.now() + DAY_MS);
  const opened = await openEvent({ demandClass: "hot", holdTtlSeconds: TTL_MS / 1000, accounts: options.accounts ?? 6, purchaseLimit: options.purchaseLimit ?? 8, chart: options.chart });
  const stub: Stub = inventoryOf(opened.event.id);
  await stub.prepare(opened.event.id);
  return { eventId: opened.event.id, accounts: opened.accounts, stub };
}

function account(accounts: string[], i: number): string {
  const id = accounts[i];
  if (!id) throw new Error(`no account ${i}`);
  return id;
}

/** Everything observable about the object, for before/after comparisons. */
async function snapshot(stub: Stub, holdIds: string[], accounts: string[]) {
  const availability = await stub.availability();
  return {
    holds: await Promise.all(holdIds.map((id) => stub.getHold(id))),
    accountHolds: await Promise.all(accounts.map((a) => stub.accountHolds(a))),
    availability: { ...availability, bitmap: Array.from(availability.bitmap) },
    stored: await runInDurableObject(stub, (_instance: EventInventory, state) => readInventoryStorage(state.storage.sql, Date.now())),
    alarm: await alarmOf(stub),
  };
}

function mirroredStatuses(eventId: string): Promise<Map<string, string>> {
  return withDb(async (db) => {
    const rows = await db.execute<{ id: string; status: string }>(sql`select id, status from holds where event_id = ${eventId}`);
    return new Map(rows.rows.map((r) => [r.id, r.status]));
  });
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("EventInventory alarm", () => {
  it("expires exactly the due holds and re-arms at the earliest remaining expiry", async () => {
    const { eventId, accounts, stub } = await hotEvent();
    const holds: HoldView[] = [];
    // Six holds made 5 s apart (all within the TTL): seats 0-4 one each, and two general-admission places.
    for (let i = 0; i < 6; i++) {
      const request = i < 5 ? seatsRequest(account(accounts, i), [i]) : bestRequest(account(accounts, i), 2, { priceTier: "GA" });
      holds.push(held(await stub.hold(request)));
      vi.setSystemTime(Date.now() + 5_000);
    }
    const byExpiry = [...holds].sort((a, b) => a.expiresAt - b.expiresAt);
    const first = byExpiry[0]?.expiresAt ?? 0;
    // The first alarm is the mirror's, a second after the first hold; it then moves to the earliest expiry.
    expect(await alarmOf(stub)).toBe((holds[0]?.createdAt ?? 0) + 1_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await alarmOf(stub)).toBe(first);
    expect([...(await mirroredStatuses(eventId)).values()]).toEqual(holds.map(() => "live"));

    // Move to the third expiry exactly: the first three are due (expires_at <= now), the rest not.
    const cut = byExpiry[2]?.expiresAt ?? 0;
    vi.setSystemTime(cut);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const due = new Set(byExpiry.filter((h) => h.expiresAt <= cut).map((h) => h.holdId));
    expect(due.size).toBeGreaterThanOrEqual(3);
    for (const hold of holds) expect((await stub.getHold(hold.holdId))?.status, hold.holdId).toBe(due.has(hold.holdId) ? "expired" : "live");
    const remaining = byExpiry.filter((h) => !due.has(h.holdId));
    expect(await alarmOf(stub)).toBe(remaining[0]?.expiresAt ?? null);
    const mirrored = await mirroredStatuses(eventId);
    for (const hold of holds) expect(mirrored.get(hold.holdId)).toBe(due.has(hold.holdId) ? "expired" : "live");
    const availability = await stub.availability();
    for (const hold of holds) {
      for (const seat of hold.seats) expect(((availability.bitmap[seat.seatIndex >> 3] ?? 0) & (0x80 >> (seat.seatIndex & 7))) !== 0, `seat ${seat.seatIndex}`).toBe(due.has(hold.holdId));
    }

    // Running the alarm again, early, or the handler itself twice, changes nothing.
    const before = await snapshot(stub, holds.map((h) => h.holdId), accounts);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await runInDurableObject(stub, async (instance: EventInventory) => {
      await instance.alarm();
      await instance.alarm();
    });
    const after = await snapshot(stub, holds.map((h) => h.holdId), accounts);
    expect({ ...after, availability: { ...after.availability, generatedAt: 0 } }).toEqual({ ...before, availability: { ...before.availability, generatedAt: 0 } });

    // Past the last expiry everything is expired and no alarm is left.
    vi.setSystemTime((byExpiry[byExpiry.length - 1]?.expiresAt ?? 0) + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    for (const hold of holds) expect((await stub.getHold(hold.holdId))?.status).toBe("expired");
    expect(await alarmOf(stub)).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    expect((await stub.availability()).sections.map((s) => s.available)).toEqual([18, 18, 10]);
  });

  it("frees an expired hold's places at its expiry, before the alarm runs", async () => {
    const { accounts, stub } = await hotEvent({ chart: smallChart(3, 6, 4), purchaseLimit: 4 });
    const [a, b] = [account(accounts, 0), account(accounts, 1)];
    const seats = held(await stub.hold(seatsRequest(a, [3, 4])));
    const ga = held(await stub.hold(bestRequest(a, 2, { priceTier: "GA" })));
    const rest = held(await stub.hold(bestRequest(account(accounts, 2), 2, { priceTier: "GA" }))); // the other half of the pit
    const alarm = await alarmOf(stub);
    const lapse = Math.max(seats.expiresAt, ga.expiresAt);

    // A millisecond before the first of them expires: all still taken.
    vi.setSystemTime(Math.min(seats.expiresAt, ga.expiresAt, rest.expiresAt) - 1);
    expect(await stub.hold(seatsRequest(b, [4]))).toMatchObject({ ok: false, reason: "seat_taken" });
    expect(await stub.hold(bestRequest(b, 1, { priceTier: "GA" }))).toMatchObject({ ok: false, reason: "sold_out" });

    // At the expiry: free, though the alarm has not run (it is still set where it was).
    vi.setSystemTime(lapse);
    expect(await alarmOf(stub)).toBe(alarm);
    const retaken = held(await stub.hold(seatsRequest(b, [4, 3])));
    expect(retaken.seats.map((s) => s.seatIndex)).toEqual([3, 4]);
    expect(held(await stub.hold(bestRequest(b, 2, { priceTier: "GA" }))).generalAdmission).toMatchObject([{ quantity: 2 }]);
    expect((await stub.getHold(seats.holdId))?.status).toBe("expired");
    expect((await stub.getHold(ga.holdId))?.status).toBe("expired");
    // A lapsed hold cannot be confirmed once its places are gone; the new ones can.
    expect(await stub.confirm({ requestId: crypto.randomUUID(), holdId: seats.holdId, allowLapsed: true })).toMatchObject({ ok: false, reason: "hold_expired" });
    expect(await stub.confirm({ requestId: crypto.randomUUID(), holdId: retaken.holdId, allowLapsed: false })).toMatchObject({ ok: true, hold: { status: "confirmed" } });
  });

  it("spreads expiries evenly over the jitter window", async () => {
    // The object runs in this isolate: a seeded Math.random makes the verdict reproducible.
    const random = vi.spyOn(Math, "random").mockImplementation(seededRandom(0x5eed));
    const holdsWanted = 600;
    const { accounts, stub } = await hotEvent({ accounts: 12, purchaseLimit: 50, chart: { name: `Field ${crypto.randomUUID()}`, sections: [{ label: "FIELD", priceTier: "GA", generalAdmission: { capacity: holdsWanted } }] } });
    const requests = Array.from({ length: holdsWanted }, (_, i) => bestRequest(account(accounts, i % accounts.length), 1, { priceTier: "GA" }));
    const results = await stub.applyHolds(requests);
    expect(random.mock.calls.length).toBeGreaterThanOrEqual(holdsWanted); // the seeded source reached the object
    const offsets = results.map((r) => {
      const hold = held(r);
      return hold.expiresAt - hold.createdAt - TTL_MS;
    });
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...offsets)).toBeLessThan(HOLD_JITTER_MS);
    expect(Math.min(...offsets)).toBeLessThan(5_000);
    expect(Math.max(...offsets)).toBeGreaterThan(55_000);
    const buckets = new Array<number>(6).fill(0);
    for (const offset of offsets) buckets[Math.floor(offset / 10_000)] = (buckets[Math.floor(offset / 10_000)] ?? 0) + 1;
    const expected = holdsWanted / buckets.length;
    const chiSquare = buckets.reduce((sum, observed) => sum + (observed - expected) ** 2 / expected, 0);
    // 5 degrees of freedom: P(chi-square > 20.515) = 0.001 for uniform expiries.
    expect(chiSquare, `buckets ${buckets.join(", ")}`).toBeLessThan(20.515);
  });

  it("knows every hold after a restart", async () => {
    const opened = await hotEvent();
    const { accounts, eventId } = opened;
    let stub = opened.stub;
    const [a, b, c] = [account(accounts, 0), account(accounts, 1), account(accounts, 2)];
    const live = held(await stub.hold(seatsRequest(a, [0, 1])));
    const liveGa = held(await stub.hold(bestRequest(b, 3, { priceTier: "GA" })));
    const released = held(await stub.hold(seatsRequest(c, [2])));
    const confirmed = held(await stub.hold(seatsRequest(c, [5])));
    expect(await stub.release({ accountId: c, holdId: released.holdId, requestId: crypto.randomUUID() })).toMatchObject({ ok: true, hold: { status: "released" } });
    expect(await stub.confirm({ requestId: crypto.randomUUID(), holdId: confirmed.holdId, allowLapsed: false })).toMatchObject({ ok: true });
    const retry = { ...seatsRequest(account(accounts, 3), [7]) };
    const retried = held(await stub.hold(retry));
    const ids = [live, liveGa, released, confirmed, retried].map((h) => h.holdId);
    const before = await snapshot(stub, ids, accounts);

    await restartObject(stub);
    stub = inventoryOf(eventId); // the old stub is broken with its instance
    const after = await snapshot(stub, ids, accounts);
    expect(after).toEqual({ ...before, availability: { ...before.availability, generatedAt: after.availability.generatedAt } });
    // And it still acts on them: taken seats stay taken, retries replay, attempt keys are remembered.
    expect(await stub.hold(seatsRequest(account(accounts, 4), [1]))).toMatchObject({ ok: false, reason: "seat_taken" });
    expect(held(await stub.hold(retry)).holdId).toBe(retried.holdId);
    expect(await stub.hold({ ...seatsRequest(account(accounts, 3), [9]), attemptKey: retry.attemptKey })).toMatchObject({ ok: false, reason: "too_fast" });
    // Expiry still comes: the alarm survived the restart.
    vi.setSystemTime(Math.max(live.expiresAt, liveGa.expiresAt, retried.expiresAt));
    await restartObject(stub);
    stub = inventoryOf(eventId); // the old stub is broken with its instance
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.getHold(live.holdId))?.status).toBe("expired");
    expect((await stub.getHold(liveGa.holdId))?.status).toBe("expired");
    expect((await stub.getHold(confirmed.holdId))?.status).toBe("confirmed");
  });

  it("reports returned places to the waitlist hook after release and expiry", async () => {
    const { eventId, accounts, stub } = await hotEvent();
    const [a, b, c] = [account(accounts, 0), account(accounts, 1), account(accounts, 2)];
    const released = held(await stub.hold(seatsRequest(a, [0, 1])));
    const expiring = held(await stub.hold(bestRequest(b, 3, { priceTier: "GA" })));
    const sold = held(await stub.hold(seatsRequest(c, [8])));
    const lapsedBySweep = held(await stub.hold(seatsRequest(account(accounts, 3), [9])));
    expect(await stub.takeReturns()).toEqual([]);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // mirrors the new holds; the alarm moves to the first expiry
    expect(await alarmOf(stub)).toBeGreaterThan(Date.now() + TTL_MS - 1);

    const releasedAt = Date.now();
    await stub.release({ accountId: a, holdId: released.holdId, requestId: crypto.randomUUID() });
    await stub.release({ accountId: a, holdId: released.holdId, requestId: crypto.randomUUID() }); // twice: reported once
    // The release reaches Postgres within a second.
    expect(await alarmOf(stub)).toBeLessThanOrEqual(releasedAt + 1_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await mirroredStatuses(eventId)).get(released.holdId)).toBe("released");
    expect(await stub.takeReturns()).toEqual([{ holdId: released.holdId, places: 2, reason: "released", at: releasedAt }]);
    expect(await stub.takeReturns()).toEqual([]);

    await stub.confirm({ requestId: crypto.randomUUID(), holdId: sold.holdId, allowLapsed: false });
    const lapse = Math.max(expiring.expiresAt, lapsedBySweep.expiresAt, sold.expiresAt);
    vi.setSystemTime(lapse);
    // A hold request expires due holds itself, so the hook hears of them with or without the alarm.
    await stub.hold(seatsRequest(account(accounts, 4), [20]));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const returns = await stub.takeReturns();
    expect(returns.sort((x, y) => x.places - y.places)).toEqual([
      { holdId: lapsedBySweep.holdId, places: 1, reason: "expired", at: lapse },
      { holdId: expiring.holdId, places: 3, reason: "expired", at: lapse },
    ]);
    expect(await stub.takeReturns()).toEqual([]);
  });

  it("sets the alarm for the holds a batch made before a later request in it failed, and expires them on time", async () => {
    const { eventId, accounts, stub } = await hotEvent();
    expect(await alarmOf(stub)).toBeNull();
    // The batch's second request finds an unreadable stored answer under its request id, and throws after the first hold committed.
    const failing = seatsRequest(account(accounts, 1), [1]);
    await runInDurableObject(stub, (_instance: EventInventory, state) => {
      state.storage.sql.exec(`INSERT INTO requests (request_key, result, created_at) VALUES (?, '{"ok": false, "reason": "no_such_reason", "message": "?"}', ?)`, `${failing.accountId}:${failing.requestId}`, Date.now());
    });
    const thrown = await runInDurableObject(stub, (instance: EventInventory) => rejectionOf(instance.applyHolds([seatsRequest(account(accounts, 0), [0]), failing])));
    expect(thrown).toMatch(/stored request result does not match its schema/);
    const liveHolds = () =>
      runInDurableObject(stub, (_instance: EventInventory, state) => state.storage.sql.exec<{ hold_id: string; status: string; expires_at: number }>("SELECT hold_id, status, expires_at FROM holds").toArray());
    const [made, ...others] = await liveHolds();
    expect(others).toEqual([]);
    if (!made) throw new Error("the first hold of the batch was not made");
    expect(made.status).toBe("live");

    // The alarm is set for it (the mirror's send first, never later than its expiry), with no other call to the object.
    const alarm = await alarmOf(stub);
    expect(alarm).not.toBeNull();
    expect(alarm ?? Infinity).toBeLessThanOrEqual(made.expires_at);
    // At its expiry the alarm, and nothing else, ends it: in the object, and in Postgres.
    vi.setSystemTime(made.expires_at);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await liveHolds()).map((h) => h.status)).toEqual(["expired"]);
    expect((await mirroredStatuses(eventId)).get(made.hold_id)).toBe("expired");
  });

  it("answers holds while Postgres refuses them, tries the mirror again MIRROR_RETRY_MS after it refused a batch, and loses nothing", async () => {
    const { eventId, accounts, stub } = await hotEvent();
    // A row Postgres cannot take (its account id is no uuid) makes the batch's one statement fail.
    await runInDurableObject(stub, (_instance: EventInventory, state) => {
      state.storage.sql.exec(
        `INSERT INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at) VALUES (?, 'not-a-uuid', 'r', 'live', 0, 0, ?, ?)`,
        crypto.randomUUID(),
        Date.now() + DAY_MS,
        Date.now(),
      );
    });
    const warnings = vi.spyOn(console, "error").mockImplementation(() => {});
    // The hold's own send fails: the hold is answered all the same.
    const hold = held(await stub.hold(seatsRequest(account(accounts, 0), [0, 1])));
    expect(warnings.mock.calls.map((call) => String(call[0]))).toEqual([expect.stringContaining('"event":"inventory_mirror_failed"')]);
    warnings.mockClear();
    const failedAt = Date.now() + 1_000;
    vi.setSystemTime(failedAt);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(warnings.mock.calls.map((call) => String(call[0]))).toEqual([expect.stringContaining('"event":"inventory_mirror_failed"')]);
    expect(await alarmOf(stub)).toBe(failedAt + MIRROR_RETRY_MS);
    expect((await mirroredStatuses(eventId)).has(hold.holdId)).toBe(false);

    await runInDurableObject(stub, (_instance: EventInventory, state) => state.storage.sql.exec("DELETE FROM holds WHERE account_id = 'not-a-uuid'"));
    vi.setSystemTime(failedAt + MIRROR_RETRY_MS);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await mirroredStatuses(eventId)).get(hold.holdId)).toBe("live");
    expect(await alarmOf(stub)).toBe(hold.expiresAt);
  });
});
