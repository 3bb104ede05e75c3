/**
 * Holds and their seat claims (tables `holds`, `seat_claims`, `requests`):
 * making a hold, releasing, confirming and unselling it, and expiring it when
 * its time comes (its alarm work).
 *
 * A hold is one `holds` row (its seats and general-admission places as JSON)
 * plus one `seat_claims` row per seat, whose primary key refuses a second
 * claim on a seat; a refused request is one `requests` row, so a retry gets
 * the first answer. Places per account and in all live holds, attempt times
 * and the next expiry live in memory, rebuilt from these tables after a
 * restart. Each change runs in one transaction, then memory follows.
 */
import { v7 as uuidv7 } from "uuid";
import { z } from "zod";
import { ATTEMPT_INTERVAL_MS, HOLD_JITTER_MS, isBadInput, refuse } from "../../core/holds/contract";
import { holdExpiry } from "../../core/time-scale";
import type { ConfirmRequest, HoldBestRequest, HoldChangeResult, HoldRequest, HoldResult, HoldSeatsRequest, HoldView, InventoryFailure, ReleaseRequest, UnsellRequest } from "../../core/holds/contract";
import type { AlarmSource } from "../lib/alarm-scheduler";
import type { Sql, SqlRow } from "../lib/sql";
import { readStoredJson } from "../lib/stored-json";
import type { GaItem, Places } from "./places";
import type { MirroredHold, SnapshotHold } from "./postgres";
import type { AdmissionPromises } from "./promises";
import type { ReturnReason, ReturnsOutbox } from "./returns";

/** Why a hold is refused while places are free: they are promised to fans admitted earlier. */
const PROMISED_ELSEWHERE = "The places left are kept for fans ahead of you (admitted before you, or on the waitlist); some may come back if they do not buy.";
/** How long request results are kept for retries. */
const REQUEST_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Holds expired per pass (the rest on the next pass, straight after). */
const EXPIRY_BATCH = 500;
/** Attempt records are pruned once there are this many. */
const ATTEMPTS_PRUNE_AT = 10_000;

/** A hold row's `seat_list`: its seats, in seat order. */
export const storedSeatList = z.array(z.number().int().nonnegative());
/** A hold row's `ga_list`: its general-admission places. */
export const storedGaList = z.array(z.object({ sectionId: z.string(), quantity: z.number().int().positive() }));

/** Every refusal reason (the mapped type makes the compiler insist on all of them). */
const FAILURES: { [F in InventoryFailure]: F } = {
  seat_taken: "seat_taken",
  sold_out: "sold_out",
  over_limit: "over_limit",
  too_fast: "too_fast",
  hold_expired: "hold_expired",
  hold_not_found: "hold_not_found",
  hold_confirmed: "hold_confirmed",
  invalid_seat: "invalid_seat",
  not_on_sale: "not_on_sale",
  not_sold: "not_sold",
};

/** A request's stored answer (`requests.result`); a hold made is found by its request id instead. */
const storedRefusal = z.object({ ok: z.literal(false), reason: z.enum(FAILURES), message: z.string() });

type HoldStatus = HoldView["status"];

interface HoldRow extends SqlRow {
  hold_id: string;
  account_id: string;
  request_id: string;
  status: HoldStatus;
  places: number;
  total_cents: number;
  expires_at: number;
  created_at: number;
  seat_list: string;
  ga_list: string;
}

/** What is kept in memory, derived from SQLite. */
interface Memory {
  /** Places each account holds (live) or bought (confirmed). */
  used: Map<string, number>;
  /**
   * Places in live holds, all accounts: the waiting room's tick reads it with
   * every grant, so it must not cost a scan of every hold (35,000 rows, tens of
   * milliseconds of the object's one thread, at a sold-out stadium).
   */
  livePlaces: number;
  /** Time of the last counted hold attempt per attempt key (recent ones only). */
  attempts: Map<string, number>;
  /** The earliest expiry of a live hold (Infinity: none), so most calls skip the expiry query. May be early, never late. */
  nextExpiry: number;
}

/** What the holds need from the rest of the object. */
export interface HoldsParts {
  sql: Sql;
  /** Runs `fn` in one SQLite transaction (`ctx.storage.transactionSync`). */
  transaction: <T>(fn: () => T) => T;
  places: Places;
  promises: AdmissionPromises;
  returns: ReturnsOutbox;
  /** The rehearsal clock's scale of hold TTLs (core/time-scale.ts). */
  timeScale: number;
  /** Hears of every change to a hold (Postgres must hear of it too). */
  changed: (now: number) => void;
}

/** The event's holds. */
export class Holds implements AlarmSource {
  private memory: Memory | undefined;
  private readonly sql: Sql;

  constructor(private readonly parts: HoldsParts) {
    this.sql = parts.sql;
  }

  /** Drops the memory; the next call rebuilds it from SQLite. */
  forget(): void {
    this.memory = undefined;
  }

  // ------------------------------------------------------------ holding

  /** Applies hold requests in order, each all-or-nothing in its own transaction. */
  apply(requests: HoldRequest[]): HoldResult[] {
    if (!this.parts.places.isPrepared()) return requests.map(() => refuse("not_on_sale", "This event's inventory is not prepared yet."));
    const now = Date.now();
    this.releaseDue(now);
    return requests.map((request) => this.applyOne(request, now));
  }

  /**
   * One hold: a lookup of the request id, then (unless it is a retry or too
   * soon) one transaction writing the claims and the hold, or the refusal.
   */
  private applyOne(request: HoldRequest, now: number): HoldResult {
    const { places, promises } = this.parts;
    const requestKey = `${request.accountId}:${request.requestId}`;
    const prior = this.sql<{ result: string | null; hold_id: string | null }>`
      SELECT result, NULL AS hold_id FROM requests WHERE request_key = ${requestKey}
      UNION ALL SELECT NULL, hold_id FROM holds WHERE account_id = ${request.accountId} AND request_id = ${request.requestId} LIMIT 1`.toArray()[0];
    if (prior) return this.replay(prior);
    const settings = places.settings();
    if (!settings || settings.status !== "published" || now < settings.saleStartsAt || now >= settings.saleEndsAt) return refuse("not_on_sale");
    const memory = this.loaded();
    const lastAttempt = memory.attempts.get(request.attemptKey);
    if (lastAttempt !== undefined && now - lastAttempt < ATTEMPT_INTERVAL_MS) return refuse("too_fast");

    // Places promised to other admitted fans are theirs; places that came back lately are the waitlist's first (its pass
    // offers them), kept from every other hold as from the room's grants.
    const forWaitlist = request.kind === "best" && request.forWaitlist === true;
    const reserved = promises.promisedToOthers(request.accountId, now) + (forWaitlist ? 0 : Math.min(places.available(), this.parts.returns.recentlyReturned(now)));
    const result = this.parts.transaction(() => {
      const outcome = request.kind === "seats" ? this.holdSeats(request, now, reserved) : this.holdBest(request, now, reserved);
      if (!outcome.ok && !isBadInput(outcome)) {
        this.sql`INSERT INTO requests (request_key, result, created_at, attempt_key) VALUES (${requestKey}, ${JSON.stringify(outcome)}, ${now}, ${request.attemptKey})`;
      }
      return outcome;
    });
    // Bad input changes nothing (issue 13, finding 4): no attempt counted, no answer kept above.
    if (!isBadInput(result)) this.noteAttempt(memory, request.attemptKey, now);
    if (result.ok) {
      const { hold } = result;
      const seats = hold.seats.map((s) => s.seatIndex);
      const ga = hold.generalAdmission.map((g) => ({ sectionId: g.sectionId, quantity: g.quantity }));
      places.taken(seats, ga);
      const placeCount = seats.length + ga.reduce((sum, g) => sum + g.quantity, 0);
      memory.used.set(request.accountId, (memory.used.get(request.accountId) ?? 0) + placeCount);
      memory.livePlaces += placeCount;
      memory.nextExpiry = Math.min(memory.nextExpiry, hold.expiresAt);
      // The fan's promised share (if the waiting room admitted them) is now real holds.
      promises.fulfil(request.accountId);
      this.parts.changed(now);
    }
    return result;
  }

  private noteAttempt(memory: Memory, attemptKey: string, now: number): void {
    if (memory.attempts.size >= ATTEMPTS_PRUNE_AT) {
      for (const [key, at] of memory.attempts) if (now - at >= ATTEMPT_INTERVAL_MS) memory.attempts.delete(key);
    }
    memory.attempts.set(attemptKey, now);
  }

  /** The first answer to a retried request: its hold as it is now, or its refusal. */
  private replay(prior: { result: string | null; hold_id: string | null }): HoldResult {
    if (prior.hold_id !== null) {
      const hold = this.view(prior.hold_id);
      if (hold) return { ok: true, hold };
    }
    if (prior.result !== null) return readStoredJson(storedRefusal, prior.result, "request result");
    throw new Error("unreadable stored request result");
  }

  /** True when `places` more would eat into `reserved`: places the waiting room promised to other admitted fans (and those kept for the waitlist). */
  private takesPromised(places: number, reserved: number): boolean {
    return reserved > 0 && places > this.parts.places.available() - reserved;
  }

  private overLimit(accountId: string, places: number): boolean {
    const settings = this.parts.places.settings();
    return settings !== undefined && (this.loaded().used.get(accountId) ?? 0) + places > settings.purchaseLimit;
  }

  private holdSeats(request: HoldSeatsRequest, now: number, reserved: number): HoldResult {
    const { places } = this.parts;
    const seats = [...new Set(request.seatIndexes)];
    if (seats.length === 0 || seats.some((seat) => !places.hasSeat(seat))) return refuse("invalid_seat");
    if (this.overLimit(request.accountId, seats.length)) return refuse("over_limit");
    if (seats.some((seat) => !places.isSeatFree(seat))) return refuse("seat_taken");
    if (this.takesPromised(seats.length, reserved)) return refuse("sold_out", PROMISED_ELSEWHERE);
    return this.create(request, seats, [], now);
  }

  private holdBest(request: HoldBestRequest, now: number, reserved: number): HoldResult {
    const { places } = this.parts;
    const { quantity } = request;
    if (this.overLimit(request.accountId, quantity)) return refuse("over_limit");
    const filter = { priceTier: request.priceTier, sectionId: request.sectionId };
    const gaSections = places.gaSections(filter);
    const seatedInScope = places.hasSeatedScope(filter);
    if (!seatedInScope && gaSections.length === 0) return refuse("invalid_seat", "No section or price tier matches that request.");
    if (this.takesPromised(quantity, reserved)) return refuse("sold_out", PROMISED_ELSEWHERE);
    if (seatedInScope) {
      const best = places.findBestSeats(quantity, filter, request.allowSplit);
      if (best.found) return this.create(request, best.seats, [], now);
      if (gaSections.length === 0) {
        return best.freeInScope >= quantity
          ? refuse("sold_out", `No ${quantity} adjacent seats are left there; allow split seats to get them apart.`)
          : refuse("sold_out");
      }
    }
    const ga = gaSections.find((s) => s.available >= quantity);
    if (!ga) return refuse("sold_out");
    return this.create(request, [], [{ sectionId: ga.sectionId, quantity }], now);
  }

  /** Writes a hold (inside the caller's transaction); memory is updated by the caller once it commits. */
  private create(request: HoldRequest, seats: number[], ga: GaItem[], now: number): HoldResult {
    const { places } = this.parts;
    const settings = places.settings();
    if (!settings) throw new Error("inventory not prepared");
    // Time-ordered (UUIDv7): the hold-id indexes grow at their end instead of taking a random page per hold.
    const holdId = uuidv7();
    const expiresAt = holdExpiry(now, settings.holdTtlMs, HOLD_JITTER_MS, this.parts.timeScale);
    seats.sort((a, b) => a - b);
    const seatList = JSON.stringify(seats);
    // The primary key refuses a seat some other hold claims: the seat map and storage cannot disagree silently.
    if (seats.length > 0) this.sql`INSERT INTO seat_claims (seat_index, hold_id) SELECT value, ${holdId} FROM json_each(${seatList})`;
    places.claimGa(ga);
    const placeCount = seats.length + ga.reduce((sum, item) => sum + item.quantity, 0);
    const seatRefs = places.seatRefs(seats);
    const gaRefs = places.gaRefs(ga);
    const total = [...seatRefs, ...gaRefs].reduce((sum, ref) => sum + ref.priceCents * ("quantity" in ref ? ref.quantity : 1), 0);
    this.sql`INSERT INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at, seat_list, ga_list, attempt_key)
      VALUES (${holdId}, ${request.accountId}, ${request.requestId}, 'live', ${placeCount}, ${total}, ${expiresAt}, ${now}, ${seatList}, ${JSON.stringify(ga)}, ${request.attemptKey})`;
    return {
      ok: true,
      hold: { holdId, eventId: settings.eventId, accountId: request.accountId, status: "live", expiresAt, createdAt: now, seats: seatRefs, generalAdmission: gaRefs, totalCents: total },
    };
  }

  // ------------------------------------------------------------ changing holds

  /** Releases a live hold (its owner only). Releasing twice returns the released hold. */
  release(request: ReleaseRequest): HoldChangeResult {
    if (!this.parts.places.isPrepared()) return refuse("hold_not_found");
    const now = Date.now();
    // A hold past its time is expired, not released, whether or not the alarm has run yet.
    this.releaseDue(now);
    const hold = this.row(request.holdId);
    if (!hold || hold.account_id !== request.accountId) return refuse("hold_not_found");
    if (hold.status === "confirmed") return refuse("hold_confirmed");
    if (hold.status === "live") this.giveBack(hold, "live", "released", now);
    return this.changeResult(hold.hold_id);
  }

  /**
   * Marks a hold's places sold. A lapsed hold is confirmed only with
   * `allowLapsed` and only if every one of its places is still free and not
   * promised to other admitted fans; refused so, the same request is refused
   * again (kept in `requests`), whatever frees up later.
   */
  confirm(request: ConfirmRequest): HoldChangeResult {
    const { places } = this.parts;
    if (!places.isPrepared()) return refuse("hold_not_found");
    const now = Date.now();
    this.releaseDue(now);
    const hold = this.row(request.holdId);
    if (!hold) return refuse("hold_not_found");
    if (hold.status === "refunded") return refuse("hold_expired", "That hold was refunded; its places went back on sale.");
    if (hold.status !== "confirmed") {
      const lapsed = hold.status !== "live";
      if (lapsed && !request.allowLapsed) return refuse("hold_expired");
      // A late confirm refused once is refused again under its request id, even once the places are free: the payment's
      // refund may be under way on that answer (workers/checkout/payments.ts), so a retry must not sell them.
      const requestKey = `confirm:${request.requestId}`;
      const prior = lapsed ? this.sql<{ result: string }>`SELECT result FROM requests WHERE request_key = ${requestKey}`.toArray()[0] : undefined;
      if (prior) return readStoredJson(storedRefusal, prior.result, "confirm result");
      const seats = seatListOf(hold);
      const ga = gaListOf(hold);
      const refusal = lapsed ? this.lateConfirmRefusal(hold, seats, ga, now) : undefined;
      if (refusal) {
        this.sql`INSERT INTO requests (request_key, result, created_at, attempt_key) VALUES (${requestKey}, ${JSON.stringify(refusal)}, ${now}, NULL)`;
        return refusal;
      }
      this.parts.transaction(() => {
        if (lapsed) {
          if (seats.length > 0) this.sql`INSERT INTO seat_claims (seat_index, hold_id) SELECT value, ${hold.hold_id} FROM json_each(${JSON.stringify(seats)})`;
          places.claimGa(ga);
        } else {
          const claimed = this.sql<{ n: number }>`SELECT count(*) AS n FROM seat_claims WHERE hold_id = ${hold.hold_id}`.one().n;
          if (claimed !== seats.length) throw new Error("seat claims out of step with the hold");
        }
        this.sql`UPDATE holds SET status = 'confirmed', version = version + 1 WHERE hold_id = ${hold.hold_id}`;
      });
      const memory = this.loaded();
      if (lapsed) {
        places.taken(seats, ga);
        memory.used.set(hold.account_id, (memory.used.get(hold.account_id) ?? 0) + hold.places);
      } else {
        memory.livePlaces -= hold.places;
      }
      this.parts.changed(now);
    }
    return this.changeResult(hold.hold_id);
  }

  /** Why a lapsed hold cannot be confirmed now, if it cannot. */
  private lateConfirmRefusal(hold: HoldRow, seats: number[], ga: ReturnType<typeof gaListOf>, now: number): ReturnType<typeof refuse> | undefined {
    if (!this.parts.places.stillFree(seats, ga)) return refuse("hold_expired", "That hold lapsed and its places were taken by someone else.");
    // Free places the waiting room promised to admitted fans are theirs: nothing is promised twice, so the late payment is refunded.
    if (this.takesPromised(hold.places, this.parts.promises.promisedToOthers(hold.account_id, now))) {
      return refuse("hold_expired", "That hold lapsed and its places were promised to fans the waiting room let in.");
    }
    // A lapsed hold no longer counts towards the limit: the account may have held other places since.
    if (this.overLimit(hold.account_id, hold.places)) return refuse("over_limit");
    return undefined;
  }

  /**
   * Returns a confirmed hold's places to the pool (refund or cancellation):
   * the hold becomes `refunded`, its seats free and its general-admission
   * places back in their counters, and the waitlist hears of it. Unselling a
   * refunded hold returns it unchanged.
   */
  unsell(request: UnsellRequest): HoldChangeResult {
    if (!this.parts.places.isPrepared()) return refuse("hold_not_found");
    const hold = this.row(request.holdId);
    if (!hold) return refuse("hold_not_found");
    if (hold.status !== "confirmed" && hold.status !== "refunded") return refuse("not_sold");
    if (hold.status === "confirmed") this.giveBack(hold, "confirmed", "refunded", Date.now());
    return this.changeResult(hold.hold_id);
  }

  private changeResult(holdId: string): HoldChangeResult {
    const view = this.view(holdId);
    return view ? { ok: true, hold: view } : refuse("hold_not_found");
  }

  /** Expires every live hold whose time has come (an expired hold never blocks a seat). */
  releaseDue(now: number): void {
    const memory = this.loaded();
    if (now < memory.nextExpiry) return;
    for (;;) {
      const due = this.sql<HoldRow>`SELECT * FROM holds WHERE status = 'live' AND expires_at <= ${now} LIMIT ${EXPIRY_BATCH}`.toArray();
      for (const hold of due) this.giveBack(hold, "live", "expired", now);
      if (due.length < EXPIRY_BATCH) break;
    }
    memory.nextExpiry = this.earliestExpiry() ?? Infinity;
  }

  /**
   * Ends a hold that is `from` (a live hold released or expired, a confirmed
   * one refunded): its places go back to the pool and into the outbox of
   * returns, in one transaction, unless another call ended it first.
   */
  private giveBack(hold: HoldRow, from: "live" | "confirmed", to: ReturnReason, now: number): void {
    const seats = seatListOf(hold);
    const ga = gaListOf(hold);
    const ended = this.parts.transaction(() => {
      const changed = this.sql`UPDATE holds SET status = ${to}, version = version + 1 WHERE hold_id = ${hold.hold_id} AND status = ${from} RETURNING hold_id`;
      if (changed.toArray().length === 0) return false;
      this.sql`DELETE FROM seat_claims WHERE hold_id = ${hold.hold_id}`;
      this.parts.places.unclaimGa(ga);
      this.parts.returns.record(hold.hold_id, hold.places, to, now);
      return true;
    });
    if (!ended) return;
    this.parts.places.freed(seats, ga);
    const memory = this.loaded();
    const left = (memory.used.get(hold.account_id) ?? 0) - hold.places;
    if (left > 0) memory.used.set(hold.account_id, left);
    else memory.used.delete(hold.account_id);
    if (from === "live") memory.livePlaces -= hold.places;
    this.parts.changed(now);
  }

  // ------------------------------------------------------------ reading holds

  /** One hold as fans see it (undefined: no such hold, or not prepared). */
  view(holdId: string): HoldView | undefined {
    const row = this.row(holdId);
    if (!row || !this.parts.places.isPrepared()) return undefined;
    return this.viewOf(row);
  }

  /** An account's holds, newest first. */
  ofAccount(accountId: string): HoldView[] {
    if (!this.parts.places.isPrepared()) return [];
    return this.sql<HoldRow>`SELECT * FROM holds WHERE account_id = ${accountId} ORDER BY created_at DESC LIMIT 100`.toArray().map((row) => this.viewOf(row));
  }

  /** Places an account holds (live) or bought (confirmed). */
  placesOf(accountId: string): number {
    return this.loaded().used.get(accountId) ?? 0;
  }

  /** Places in live holds (kept in memory: no scan). */
  heldPlaces(): number {
    return this.loaded().livePlaces;
  }

  /** The seats live or confirmed holds claim. */
  *claimedSeats(): Iterable<number> {
    for (const claim of this.sql<{ seat_index: number }>`SELECT seat_index FROM seat_claims`) yield claim.seat_index;
  }

  private row(holdId: string): HoldRow | undefined {
    return this.sql<HoldRow>`SELECT * FROM holds WHERE hold_id = ${holdId}`.toArray()[0];
  }

  private viewOf(row: HoldRow): HoldView {
    const { places } = this.parts;
    return {
      holdId: row.hold_id,
      eventId: places.settings()?.eventId ?? "",
      accountId: row.account_id,
      status: row.status,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      seats: places.seatRefs(seatListOf(row)),
      generalAdmission: places.gaRefs(gaListOf(row)),
      totalCents: row.total_cents,
    };
  }

  // ------------------------------------------------------------ Postgres

  /** Writes holds recovered from Postgres while loading a snapshot (inside its transaction). */
  restore(holds: SnapshotHold[]): void {
    for (const hold of holds) {
      const placeCount = hold.seats.length + hold.ga.reduce((sum, g) => sum + g.quantity, 0);
      const seats = [...hold.seats].sort((a, b) => a - b);
      this.sql`INSERT OR REPLACE INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at, version, mirrored_version, seat_list, ga_list)
        VALUES (${hold.holdId}, ${hold.accountId}, ${hold.requestId}, ${hold.status}, ${placeCount}, ${hold.totalCents}, ${hold.expiresAt}, ${hold.createdAt}, 1, 1, ${JSON.stringify(seats)}, ${JSON.stringify(hold.ga)})`;
      for (const seat of seats) this.sql`INSERT OR REPLACE INTO seat_claims (seat_index, hold_id) VALUES (${seat}, ${hold.holdId})`;
      this.parts.places.restoreGa(hold.ga);
    }
  }

  /** Up to `limit` holds that changed since Postgres last heard of them, with the versions being sent. */
  unmirrored(limit: number): { holds: MirroredHold[]; versions: [holdId: string, version: number][] } {
    const { places } = this.parts;
    const rows = this.sql<HoldRow & { version: number }>`SELECT * FROM holds WHERE mirrored_version < version LIMIT ${limit}`.toArray();
    return {
      holds: rows.map((row) => ({
        holdId: row.hold_id,
        accountId: row.account_id,
        requestId: row.request_id,
        status: row.status,
        expiresAt: row.expires_at,
        createdAt: row.created_at,
        items: [
          ...seatListOf(row).map((seatIndex) => ({ seatIndex, quantity: 1, ...places.seatItem(seatIndex) })),
          ...places.gaRefs(gaListOf(row)).map((g) => ({ seatIndex: null, sectionId: g.sectionId, quantity: g.quantity, priceCents: g.priceCents })),
        ],
      })),
      versions: rows.map((row) => [row.hold_id, row.version]),
    };
  }

  /** Marks the versions sent; a hold that changed meanwhile stays unmirrored for the next batch. */
  markMirrored(versions: [holdId: string, version: number][]): void {
    this.sql`UPDATE holds SET mirrored_version = sent.version
      FROM (SELECT value ->> 0 AS hold_id, value ->> 1 AS version FROM json_each(${JSON.stringify(versions)})) AS sent
      WHERE holds.hold_id = sent.hold_id AND holds.version = sent.version`;
  }

  /** True while some change has not reached Postgres. */
  hasUnmirrored(): boolean {
    return this.sql`SELECT 1 FROM holds WHERE mirrored_version < version LIMIT 1`.toArray().length > 0;
  }

  // ------------------------------------------------------------ alarm

  /** The earliest expiry of a live hold. */
  nextAlarmAt(): number | null {
    const { nextExpiry } = this.loaded();
    return Number.isFinite(nextExpiry) ? nextExpiry : null;
  }

  /** Expires due holds and forgets old request results. */
  runDue(now: number): void {
    if (!this.parts.places.isPrepared()) return;
    this.releaseDue(now);
    this.sql`DELETE FROM requests WHERE created_at < ${now - REQUEST_RETENTION_MS}`;
  }

  // ------------------------------------------------------------ memory

  private earliestExpiry(): number | null {
    return this.sql<{ at: number | null }>`SELECT min(expires_at) AS at FROM holds WHERE status = 'live'`.one().at;
  }

  private loaded(): Memory {
    if (this.memory) return this.memory;
    const recent = Date.now() - ATTEMPT_INTERVAL_MS;
    this.memory = {
      used: new Map(
        this.sql<{ account_id: string; n: number }>`SELECT account_id, sum(places) AS n FROM holds WHERE status IN ('live', 'confirmed') GROUP BY account_id`
          .toArray()
          .map((r) => [r.account_id, r.n]),
      ),
      attempts: new Map(
        this.sql<{ attempt_key: string; at: number }>`
          SELECT attempt_key, max(created_at) AS at FROM (
            SELECT attempt_key, created_at FROM requests WHERE created_at > ${recent}
            UNION ALL SELECT attempt_key, created_at FROM holds WHERE created_at > ${recent})
          WHERE attempt_key IS NOT NULL GROUP BY attempt_key`
          .toArray()
          .map((r) => [r.attempt_key, r.at]),
      ),
      livePlaces: this.sql<{ n: number }>`SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'live'`.one().n,
      nextExpiry: this.earliestExpiry() ?? Infinity,
    };
    return this.memory;
  }
}

/** A hold row's seats, in seat order. */
function seatListOf(row: { seat_list: string }): number[] {
  return readStoredJson(storedSeatList, row.seat_list, "seat list");
}

/** A hold row's general-admission places. */
function gaListOf(row: { ga_list: string }): GaItem[] {
  return readStoredJson(storedGaList, row.ga_list, "general-admission list");
}
