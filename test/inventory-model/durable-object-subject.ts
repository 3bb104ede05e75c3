/**
 * The harness adapter for hot events: the `EventInventory` Durable Object
 * through its RPC stub. Its clock is the test isolate's faked `Date` (the
 * object runs in the same isolate); its stored state is read straight from
 * its SQLite with `runInDurableObject`.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { vi } from "vitest";
import type { EventInventory } from "../../durable-objects/event-inventory";
import { storedGaList, storedSeatList } from "../../durable-objects/event-inventory/holds";
import { readStoredJson } from "../../durable-objects/lib/stored-json";
import { restartObject } from "../fixtures/objects";
import type { OpenSubject, Subject } from "./harness";
import type { StoredHold, StoredState } from "./model";

interface HoldRow extends Record<string, SqlStorageValue> {
  hold_id: string;
  account_id: string;
  status: string;
  expires_at: number;
  created_at: number;
  places: number;
  seat_list: string;
  ga_list: string;
}

/** Reads the object's holds, seat claims and counters and checks them against each other. */
export function readInventoryStorage(sql: SqlStorage, now: number): StoredState {
  const problems: string[] = [];
  const rows = sql
    .exec<HoldRow>("SELECT hold_id, account_id, status, expires_at, created_at, places, seat_list, ga_list FROM holds WHERE status IN ('live', 'confirmed')")
    .toArray();
  const holds = new Map<string, StoredHold>();
  const listedBy = new Map<number, string>();
  const gaClaimed = new Map<string, number>();
  for (const row of rows) {
    if (row.status !== "live" && row.status !== "confirmed") continue;
    const seats = readStoredJson(storedSeatList, row.seat_list, "seat list").sort((a, b) => a - b);
    const ga = readStoredJson(storedGaList, row.ga_list, "general-admission list");
    holds.set(row.hold_id, { holdId: row.hold_id, accountId: row.account_id, status: row.status, expiresAt: row.expires_at, createdAt: row.created_at, seats, ga });
    for (const seat of seats) {
      const other = listedBy.get(seat);
      // Stronger than the generic check: due holds are expired before any new hold, so even stored 'live' rows never share a seat.
      if (other !== undefined) problems.push(`seat ${seat} is in stored holds ${other} and ${row.hold_id}`);
      listedBy.set(seat, row.hold_id);
    }
    for (const item of ga) gaClaimed.set(item.sectionId, (gaClaimed.get(item.sectionId) ?? 0) + item.quantity);
    const places = seats.length + ga.reduce((sum, g) => sum + g.quantity, 0);
    if (places !== row.places) problems.push(`hold ${row.hold_id} says ${row.places} places, has ${places}`);
  }
  const claims = new Map(sql.exec<{ seat_index: number; hold_id: string }>("SELECT seat_index, hold_id FROM seat_claims").toArray().map((c) => [c.seat_index, c.hold_id]));
  for (const [seat, holdId] of claims) {
    if (listedBy.get(seat) !== holdId) problems.push(`seat ${seat} is claimed by ${holdId}, listed by ${listedBy.get(seat) ?? "no live or confirmed hold"}`);
  }
  for (const [seat, holdId] of listedBy) if (claims.get(seat) !== holdId) problems.push(`hold ${holdId} lists seat ${seat} without its claim`);
  for (const s of sql.exec<{ section_id: string; kind: string; capacity: number; ga_available: number }>("SELECT section_id, kind, capacity, ga_available FROM sections")) {
    if (s.kind !== "general_admission") continue;
    const expected = s.capacity - (gaClaimed.get(s.section_id) ?? 0);
    if (s.ga_available !== expected || s.ga_available < 0 || s.ga_available > s.capacity) {
      problems.push(`general admission ${s.section_id}: ga_available ${s.ga_available}, capacity ${s.capacity} minus stored claims is ${expected}`);
    }
  }
  const seats = sql
    .exec<{ seat_index: number }>("SELECT seat_index FROM seats ORDER BY seat_index")
    .toArray()
    .map(({ seat_index: seatIndex }) => {
      const holdId = claims.get(seatIndex);
      const hold = holdId === undefined ? undefined : holds.get(holdId);
      // A seat of a due hold is free now (it is expired on the next call).
      const due = hold !== undefined && hold.status === "live" && hold.expiresAt <= now;
      return { seatIndex, takenBy: holdId === undefined || due ? null : holdId, sold: hold?.status === "confirmed" };
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
      await restartObject(stub);
      stub = env.EVENT_INVENTORY.getByName(eventId);
      await stub.ensurePrepared(eventId); // a no-op: storage survived (the object would also prepare itself at its next request)
    },
    // One call into the object for both reads: storage first, as it is, then availability (which expires due holds).
    audit: (now, withAvailability) =>
      runInDurableObject(stub, async (instance: EventInventory, state) => {
        const stored = readInventoryStorage(state.storage.sql, now);
        // The count of places in live holds the room's tick is told is kept in memory: it must match what is stored.
        const counted = instance["holds"].heldPlaces();
        const live = stored.holds.filter((h) => h.status === "live").reduce((sum, h) => sum + h.seats.length + h.ga.reduce((n, g) => n + g.quantity, 0), 0);
        if (counted !== live) stored.problems.push(`the object counts ${counted} places in live holds, storage has ${live}`);
        return { stored, availability: withAvailability ? await instance.availability() : undefined };
      }),
    // After a failure too, without throwing: the failure is the one to report, an alarm error after it is noise.
    close: async () => {
      while (alarm) await alarm;
    },
  };
  return subject;
};
