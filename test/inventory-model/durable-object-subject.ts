/**
 * The harness adapter for hot events: the `EventInventory` Durable Object
 * through its RPC stub. Its clock is the test isolate's faked `Date` (the
 * object runs in the same isolate); its stored state is read straight from
 * its SQLite with `runInDurableObject`.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { vi } from "vitest";
import type { EventInventory } from "../../durable-objects/event-inventory";
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD } from "../../durable-objects/inventory-schema";
import type { OpenSubject, Subject } from "./harness";
import type { GaItem, StoredHold, StoredState } from "./model";

interface HoldRow extends Record<string, SqlStorageValue> {
  hold_id: string;
  account_id: string;
  status: string;
  expires_at: number;
  created_at: number;
  places: number;
}

/** Reads the object's holds, seats and counters and checks them against each other. */
export function readInventoryStorage(sql: SqlStorage, now: number): StoredState {
  const problems: string[] = [];
  const rows = sql.exec<HoldRow>("SELECT hold_id, account_id, status, expires_at, created_at, places FROM holds WHERE status IN ('live', 'confirmed')").toArray();
  const holds = new Map<string, StoredHold>();
  for (const row of rows) {
    if (row.status !== "live" && row.status !== "confirmed") continue;
    holds.set(row.hold_id, { holdId: row.hold_id, accountId: row.account_id, status: row.status, expiresAt: row.expires_at, createdAt: row.created_at, seats: [], ga: [] });
  }
  const claimedBy = new Map<number, string>();
  for (const { hold_id, seat_index } of sql.exec<{ hold_id: string; seat_index: number }>(
    "SELECT hs.hold_id, hs.seat_index FROM hold_seats hs JOIN holds h ON h.hold_id = hs.hold_id WHERE h.status IN ('live', 'confirmed') ORDER BY hs.seat_index",
  )) {
    holds.get(hold_id)?.seats.push(seat_index);
    const other = claimedBy.get(seat_index);
    // Stronger than the generic check: due holds are expired before any new hold, so even stored 'live' rows never share a seat.
    if (other !== undefined) problems.push(`seat ${seat_index} is in stored holds ${other} and ${hold_id}`);
    claimedBy.set(seat_index, hold_id);
  }
  const gaClaimed = new Map<string, number>();
  for (const { hold_id, section_id, quantity } of sql.exec<{ hold_id: string; section_id: string; quantity: number }>(
    "SELECT g.hold_id, g.section_id, g.quantity FROM hold_ga g JOIN holds h ON h.hold_id = g.hold_id WHERE h.status IN ('live', 'confirmed')",
  )) {
    const item: GaItem = { sectionId: section_id, quantity };
    holds.get(hold_id)?.ga.push(item);
    gaClaimed.set(section_id, (gaClaimed.get(section_id) ?? 0) + quantity);
  }
  for (const row of rows) {
    const hold = holds.get(row.hold_id);
    const places = (hold?.seats.length ?? 0) + (hold?.ga.reduce((sum, g) => sum + g.quantity, 0) ?? 0);
    if (places !== row.places) problems.push(`hold ${row.hold_id} says ${row.places} places, has ${places}`);
  }
  for (const s of sql.exec<{ section_id: string; kind: string; capacity: number; ga_available: number }>("SELECT section_id, kind, capacity, ga_available FROM sections")) {
    if (s.kind !== "general_admission") continue;
    const expected = s.capacity - (gaClaimed.get(s.section_id) ?? 0);
    if (s.ga_available !== expected || s.ga_available < 0 || s.ga_available > s.capacity) {
      problems.push(`general admission ${s.section_id}: ga_available ${s.ga_available}, capacity ${s.capacity} minus stored claims is ${expected}`);
    }
  }
  const seats = sql
    .exec<{ seat_index: number; state: number; hold_id: string | null }>("SELECT seat_index, state, hold_id FROM seats ORDER BY seat_index")
    .toArray()
    .map((seat) => {
      const hold = seat.hold_id === null ? undefined : holds.get(seat.hold_id);
      const listed = hold?.seats.includes(seat.seat_index) ?? false;
      if (seat.state === SEAT_FREE && (seat.hold_id !== null || claimedBy.has(seat.seat_index))) problems.push(`seat ${seat.seat_index} is free but claimed`);
      if (seat.state === SEAT_HELD && (hold?.status !== "live" || !listed)) problems.push(`seat ${seat.seat_index} is held by ${seat.hold_id ?? "nobody"}, not a live hold listing it`);
      if (seat.state === SEAT_SOLD && (hold?.status !== "confirmed" || !listed)) problems.push(`seat ${seat.seat_index} is sold to ${seat.hold_id ?? "nobody"}, not a confirmed hold listing it`);
      if (seat.state !== SEAT_FREE && claimedBy.get(seat.seat_index) !== seat.hold_id) problems.push(`seat ${seat.seat_index} points at ${seat.hold_id ?? "nobody"}, claimed by ${claimedBy.get(seat.seat_index) ?? "nobody"}`);
      // A held seat of a due hold is free now (it is expired on the next call).
      const due = seat.state === SEAT_HELD && hold !== undefined && hold.expiresAt <= now;
      return { seatIndex: seat.seat_index, takenBy: seat.state === SEAT_FREE || due ? null : seat.hold_id, sold: seat.state === SEAT_SOLD };
    });
  return { holds: [...holds.values()], seats, problems };
}

/** Opens a hot event's object (prepared from Postgres) as a harness subject. Needs `vi.useFakeTimers({ toFake: ["Date"] })`. */
export const openDurableObjectSubject: OpenSubject = async ({ eventId }) => {
  let stub = env.EVENT_INVENTORY.getByName(eventId);
  await stub.prepare(eventId);
  /**
   * The alarm run in flight, if any. It mirrors holds to Postgres, so the next
   * operations run while it waits, as requests do in production. An alarm
   * asked for meanwhile runs once after it, as the runtime runs an alarm that
   * fell due during the handler (never two at once).
   */
  let alarm: Promise<void> | undefined;
  let alarmAgain = false;
  let alarmFailure: { error: unknown } | undefined;
  const runAlarms = async () => {
    do {
      alarmAgain = false;
      await runDurableObjectAlarm(stub);
    } while (alarmAgain);
  };
  const settle = async () => {
    while (alarm) await alarm;
    const failure = alarmFailure;
    alarmFailure = undefined;
    if (failure) throw new Error(`an alarm run started earlier failed: ${failure.error instanceof Error ? failure.error.message : String(failure.error)}`, { cause: failure.error });
  };
  const subject: Subject = {
    hold: (requests) => stub.applyHolds(requests),
    release: (request) => stub.release(request),
    confirm: (request) => stub.confirm(request),
    getHold: (holdId, accountId) => stub.getHold(holdId, accountId),
    accountHolds: (accountId) => stub.accountHolds(accountId),
    availability: () => stub.availability(),
    setTime: (now) => {
      vi.setSystemTime(now);
    },
    runAlarm: async () => {
      if (alarm) {
        alarmAgain = true;
        return;
      }
      alarm = runAlarms()
        .catch((error: unknown) => void (alarmFailure ??= { error })) // thrown by the next settle()
        .finally(() => (alarm = undefined));
    },
    settle,
    restart: async () => {
      await settle();
      await stub.isPrepared(); // eviction needs a running object
      await evictDurableObject(stub);
      stub = env.EVENT_INVENTORY.getByName(eventId);
      await stub.ensurePrepared(eventId); // what the Worker does first (a no-op: storage survived)
    },
    // One call into the object for both reads: storage first, as it is, then availability (which expires due holds).
    audit: (now, withAvailability) =>
      runInDurableObject(stub, (instance: EventInventory, state) => ({
        stored: readInventoryStorage(state.storage.sql, now),
        availability: withAvailability ? instance.availability() : undefined,
      })),
    // After a failure too, without throwing: the failure is the one to report, an alarm error after it is noise.
    close: async () => {
      while (alarm) await alarm;
    },
  };
  return subject;
};
