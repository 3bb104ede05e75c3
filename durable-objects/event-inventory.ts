/**
 * The seat inventory of one hot event: serializes every hold, release and
 * confirmation in SQLite, assigns best-available seats from an in-memory seat
 * map (a cache of the `seats` table, rebuilt after a restart), expires holds
 * with one alarm set to the earliest expiry, and mirrors holds to Postgres so
 * the object can be rebuilt from there.
 */
import { DurableObject } from "cloudflare:workers";
import { v7 as uuidv7 } from "uuid";
import { loadConfig } from "../core/config";
import { createDb } from "../core/db/client";
import {
  ATTEMPT_INTERVAL_MS,
  HOLD_JITTER_MS,
  refuse,
  setBit,
  type Availability,
  type ConfirmRequest,
  type GaRef,
  type HoldBestRequest,
  type HoldChangeResult,
  type HoldRequest,
  type HoldResult,
  type HoldSeatsRequest,
  type HoldView,
  type ReleaseRequest,
  type SeatRef,
  type UnsellRequest,
} from "../core/holds/contract";
import { SeatMap } from "../core/holds/seat-map";
import type { AdmissionGrant } from "./waiting-room";
import { migrateInventorySchema } from "./inventory-schema";
import { loadInventoryConfig, loadInventorySnapshot, markInventoryPrepared, mirrorHolds, type InventoryConfig, type InventorySnapshot, type MirroredHold } from "./inventory-postgres";
import { log } from "../core/logger";

/** An admitted fan's promised share is freed if they have not held within this time. */
export const ADMISSION_PROMISE_MS = 10 * 60 * 1000;
/**
 * A place that comes back is the waitlist's until the waitlist's pass has
 * offered it (and drained it from the `returns` outbox), or for this long at
 * most: longer than the cron's minute between passes plus a pass, so a
 * waitlist with fans on it gets its turn, and short enough that a place
 * nobody waits for (an event whose waitlist is empty is never visited, so
 * never drained) soon goes to the queue.
 */
export const WAITLIST_FIRST_MS = 90 * 1000;
/** Why a hold is refused while places are free: they are promised to fans admitted earlier. */
const PROMISED_ELSEWHERE = "The places left are kept for fans admitted before you; some may come back if they do not buy.";
/** How soon changed holds reach Postgres. */
const MIRROR_DELAY_MS = 1_000;
/** Retry delay when Postgres is unreachable. */
const MIRROR_RETRY_MS = 5_000;
/** Holds mirrored per statement. */
const MIRROR_BATCH = 2_000;
/** Most batches one alarm mirrors (the next alarm, a second later, goes on). */
const MIRROR_PASSES = 10;
/** How long request results are kept for retries. */
const REQUEST_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Holds expired per pass (the rest on the next pass, straight after). */
const EXPIRY_BATCH = 500;

type HoldStatus = HoldView["status"];

interface HoldRow extends Record<string, SqlStorageValue> {
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

interface SectionRow extends Record<string, SqlStorageValue> {
  section_id: string;
  label: string;
  kind: "seated" | "general_admission";
  price_tier: string | null;
  sort_order: number;
  capacity: number;
  ga_available: number;
}

interface GaItem {
  sectionId: string;
  quantity: number;
}

/** A seat's labels, for hold views (from the chart, kept in memory). */
interface SeatLabel {
  sectionId: string;
  rowLabel: string;
  label: string;
  priceTier: string;
}

/**
 * What the object keeps in memory: rebuilt from SQLite after every restart.
 * Only SQLite is durable; each field here is derived from it and updated
 * after the write that changes it commits.
 */
interface Loaded {
  config: InventoryConfig;
  seatMap: SeatMap;
  labels: (SeatLabel | undefined)[];
  prices: Map<string, number>;
  sections: Map<string, SectionRow>;
  seatCount: number;
  /** Places each account holds (live) or bought (confirmed). */
  used: Map<string, number>;
  /** Time of the last counted hold attempt per attempt key (recent ones only). */
  attempts: Map<string, number>;
  /** Promises of the waiting room, by account: only live ones once `livePromised` has run. */
  promises: Map<string, { places: number; expiresAt: number }>;
  /** Sum of the promises' places, valid until `promisesCheckAt` (the earliest expiry among them). */
  promisedTotal: number;
  promisesCheckAt: number;
  /** The earliest expiry of a live hold (Infinity: none), so most calls skip the expiry query. */
  nextExpiry: number;
}

/** Outcome of one `prepare()` call. */
export interface PrepareResult {
  seatCount: number;
  available: number;
  holdsRecovered: number;
  rebuilt: boolean;
}

/** Attempt records are pruned once there are this many. */
const ATTEMPTS_PRUNE_AT = 10_000;

/** The per-event seat inventory of a hot event, addressed by event id. */
export class EventInventory extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private loaded: Loaded | undefined;
  private preparing: Promise<PrepareResult> | undefined;
  /** The alarm time we last set (undefined: none, or not yet read). */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => migrateInventorySchema(ctx.storage));
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Loads the event from Postgres: the chart, prices and settings, and every
   * hold or sale Postgres knows of. On an object that is already prepared it
   * only refreshes the settings (holds in the object stay the truth).
   */
  async prepare(eventId: string): Promise<PrepareResult> {
    const existing = this.configRow();
    const { db, close } = createDb(loadConfig(this.env));
    try {
      if (existing) {
        const config = await loadInventoryConfig(db, eventId);
        if (config) this.saveConfig(config, existing.seat_count);
        this.loaded = undefined;
        const state = this.state();
        return { seatCount: state.seatCount, available: this.availablePlaces(state), holdsRecovered: 0, rebuilt: false };
      }
      const snapshot = await loadInventorySnapshot(db, eventId, Date.now());
      if (!snapshot) throw new Error(`event ${eventId} does not exist in Postgres`);
      this.ctx.storage.transactionSync(() => this.writeSnapshot(snapshot));
      await markInventoryPrepared(db, eventId);
      this.loaded = undefined;
      const state = this.state();
      await this.scheduleAlarm(this.earliestExpiry());
      return { seatCount: state.seatCount, available: this.availablePlaces(state), holdsRecovered: snapshot.holds.length, rebuilt: true };
    } finally {
      await close();
    }
  }

  /** Prepares the object unless it already is (one load even when called concurrently). */
  async ensurePrepared(eventId: string): Promise<void> {
    if (this.configRow()) return;
    this.preparing ??= this.prepare(eventId).finally(() => (this.preparing = undefined));
    await this.preparing;
  }

  /** Re-reads the event's settings from Postgres (after an organizer edit). */
  async refreshConfig(): Promise<void> {
    const row = this.configRow();
    if (!row) return;
    await this.prepare(row.event_id);
  }

  /** True once `prepare` has loaded the event. */
  isPrepared(): boolean {
    return this.configRow() !== undefined;
  }

  // ---------------------------------------------------------------- holds

  /** One hold (see `applyHolds`). */
  hold(request: HoldRequest): HoldResult {
    return this.applyHolds([request])[0] ?? refuse("not_on_sale");
  }

  /** Applies hold requests in order, each all-or-nothing in its own transaction. */
  applyHolds(requests: HoldRequest[]): HoldResult[] {
    const state = this.loadedOrUndefined();
    if (!state) return requests.map(() => refuse("not_on_sale", "This event's inventory is not prepared yet."));
    const now = Date.now();
    this.releaseDueHolds(state, now);
    let earliest = Infinity;
    const results = requests.map((request) => {
      const result = this.applyHold(state, request, now);
      if (result.ok && result.hold.status === "live") earliest = Math.min(earliest, result.hold.expiresAt);
      return result;
    });
    if (earliest < Infinity) void this.scheduleAlarm(Math.min(earliest, now + MIRROR_DELAY_MS));
    return results;
  }

  /**
   * One hold: a lookup of the request id, then (unless it is a retry or too
   * soon) one transaction writing the claims and the hold, or the refusal.
   */
  private applyHold(state: Loaded, request: HoldRequest, now: number): HoldResult {
    const requestKey = `${request.accountId}:${request.requestId}`;
    const prior = this.sql
      .exec<{ result: string | null; hold_id: string | null }>(
        `SELECT result, NULL AS hold_id FROM requests WHERE request_key = ?
         UNION ALL SELECT NULL, hold_id FROM holds WHERE account_id = ? AND request_id = ? LIMIT 1`,
        requestKey,
        request.accountId,
        request.requestId,
      )
      .toArray()[0];
    if (prior) return this.replay(prior.result ?? JSON.stringify({ ok: true, holdId: prior.hold_id }));
    const { config } = state;
    if (config.status !== "published" || now < config.saleStartsAt || now >= config.saleEndsAt) return refuse("not_on_sale");
    const lastAttempt = state.attempts.get(request.attemptKey);
    if (lastAttempt !== undefined && now - lastAttempt < ATTEMPT_INTERVAL_MS) return refuse("too_fast");

    const promisedToOthers = this.livePromised(state, now) - (state.promises.get(request.accountId)?.places ?? 0);
    let result: HoldResult;
    let gaTaken: GaItem[] = [];
    try {
      result = this.ctx.storage.transactionSync(() => {
        const outcome = request.kind === "seats" ? this.holdSeats(state, request, now, promisedToOthers) : this.holdBest(state, request, now, promisedToOthers);
        if (outcome.ok) gaTaken = outcome.hold.generalAdmission.map((g) => ({ sectionId: g.sectionId, quantity: g.quantity }));
        else this.sql.exec("INSERT INTO requests (request_key, result, created_at, attempt_key) VALUES (?, ?, ?, ?)", requestKey, JSON.stringify(outcome), now, request.attemptKey);
        return outcome;
      });
    } catch (error) {
      this.loaded = undefined; // the transaction rolled back: rebuild the memory from SQLite
      throw error;
    }
    this.noteAttempt(state, request.attemptKey, now);
    if (result.ok) {
      const { hold } = result;
      for (const seat of hold.seats) state.seatMap.setFree(seat.seatIndex, false);
      for (const item of gaTaken) {
        const section = state.sections.get(item.sectionId);
        if (section) section.ga_available -= item.quantity;
      }
      const places = hold.seats.length + gaTaken.reduce((sum, g) => sum + g.quantity, 0);
      state.used.set(request.accountId, (state.used.get(request.accountId) ?? 0) + places);
      state.nextExpiry = Math.min(state.nextExpiry, hold.expiresAt);
      // The fan's promised share (if the waiting room admitted them) is now real holds.
      if (state.promises.has(request.accountId)) {
        this.sql.exec("DELETE FROM promises WHERE account_id = ?", request.accountId);
        this.setPromise(state, request.accountId, undefined);
      }
    }
    return result;
  }

  private noteAttempt(state: Loaded, attemptKey: string, now: number): void {
    if (state.attempts.size >= ATTEMPTS_PRUNE_AT) {
      for (const [key, at] of state.attempts) if (now - at >= ATTEMPT_INTERVAL_MS) state.attempts.delete(key);
    }
    state.attempts.set(attemptKey, now);
  }

  private replay(stored: string): HoldResult {
    const parsed: unknown = JSON.parse(stored);
    if (typeof parsed === "object" && parsed !== null && "ok" in parsed) {
      if (parsed.ok === true && "holdId" in parsed && typeof parsed.holdId === "string") {
        const hold = this.holdView(parsed.holdId);
        if (hold) return { ok: true, hold };
      }
      if (parsed.ok === false && "reason" in parsed && "message" in parsed) return parsed as HoldResult;
    }
    throw new Error("unreadable stored request result");
  }

  /**
   * Places promised to admitted fans, live at `now`. Drops lapsed promises
   * from memory when the earliest one lapses, so afterwards every promise in
   * memory is live and the total is their sum.
   */
  private livePromised(state: Loaded, now: number): number {
    if (now >= state.promisesCheckAt) {
      let total = 0;
      let checkAt = Infinity;
      for (const [accountId, promise] of state.promises) {
        if (promise.expiresAt <= now) {
          state.promises.delete(accountId);
          continue;
        }
        total += promise.places;
        checkAt = Math.min(checkAt, promise.expiresAt);
      }
      state.promisedTotal = total;
      state.promisesCheckAt = checkAt;
    }
    return state.promisedTotal;
  }

  /** Sets (or with undefined, drops) an account's promise in memory; call `livePromised` first. */
  private setPromise(state: Loaded, accountId: string, promise: { places: number; expiresAt: number } | undefined): void {
    const old = state.promises.get(accountId);
    if (old) state.promisedTotal -= old.places;
    if (promise) {
      state.promises.set(accountId, promise);
      state.promisedTotal += promise.places;
      state.promisesCheckAt = Math.min(state.promisesCheckAt, promise.expiresAt);
    } else {
      state.promises.delete(accountId);
    }
  }

  /**
   * True when `places` more would eat into what the waiting room promised to
   * other admitted fans: however a fan comes back (a second hold, after an
   * abandoned one, or after their promise lapsed), admission never outruns
   * the inventory.
   */
  private takesPromised(state: Loaded, places: number, promisedToOthers: number): boolean {
    return promisedToOthers > 0 && places > this.availablePlaces(state) - promisedToOthers;
  }

  private overLimit(state: Loaded, accountId: string, places: number): boolean {
    return (state.used.get(accountId) ?? 0) + places > state.config.purchaseLimit;
  }

  private holdSeats(state: Loaded, request: HoldSeatsRequest, now: number, promisedToOthers: number): HoldResult {
    const seats = [...new Set(request.seatIndexes)];
    if (seats.length === 0 || seats.some((seat) => !state.seatMap.has(seat))) return refuse("invalid_seat");
    if (this.overLimit(state, request.accountId, seats.length)) return refuse("over_limit");
    if (seats.some((seat) => !state.seatMap.isFree(seat))) return refuse("seat_taken");
    if (this.takesPromised(state, seats.length, promisedToOthers)) return refuse("sold_out", PROMISED_ELSEWHERE);
    return this.createHold(state, request, seats, [], now);
  }

  private holdBest(state: Loaded, request: HoldBestRequest, now: number, promisedToOthers: number): HoldResult {
    const { quantity } = request;
    if (this.overLimit(state, request.accountId, quantity)) return refuse("over_limit");
    const filter = { priceTier: request.priceTier, sectionId: request.sectionId };
    const gaSections = [...state.sections.values()].filter(
      (s) => s.kind === "general_admission" && (filter.sectionId === undefined || s.section_id === filter.sectionId) && (filter.priceTier === undefined || s.price_tier === filter.priceTier),
    );
    const seatedInScope = state.seatMap.hasScope(filter);
    if (!seatedInScope && gaSections.length === 0) return refuse("invalid_seat", "No section or price tier matches that request.");
    if (this.takesPromised(state, quantity, promisedToOthers)) return refuse("sold_out", PROMISED_ELSEWHERE);
    if (seatedInScope) {
      const best = state.seatMap.findBest(quantity, filter, request.allowSplit);
      if (best.found) return this.createHold(state, request, best.seats, [], now);
      if (gaSections.length === 0) {
        return best.freeInScope >= quantity
          ? refuse("sold_out", `No ${quantity} adjacent seats are left there; allow split seats to get them apart.`)
          : refuse("sold_out");
      }
    }
    const ga = gaSections.find((s) => s.ga_available >= quantity);
    if (!ga) return refuse("sold_out");
    return this.createHold(state, request, [], [{ sectionId: ga.section_id, quantity }], now);
  }

  /** Writes a hold (inside the caller's transaction); memory is updated by the caller once it commits. */
  private createHold(state: Loaded, request: HoldRequest, seats: number[], ga: GaItem[], now: number): HoldResult {
    // Time-ordered (UUIDv7): the hold-id indexes grow at their end instead of taking a random page per hold.
    const holdId = uuidv7();
    const expiresAt = now + state.config.holdTtlMs + Math.floor(Math.random() * HOLD_JITTER_MS);
    seats.sort((a, b) => a - b);
    const seatList = JSON.stringify(seats);
    // The primary key refuses a seat some other hold claims: the seat map and storage cannot disagree silently.
    if (seats.length > 0) this.sql.exec("INSERT INTO seat_claims (seat_index, hold_id) SELECT value, ? FROM json_each(?)", holdId, seatList);
    for (const item of ga) {
      const cursor = this.sql.exec(
        "UPDATE sections SET ga_available = ga_available - ? WHERE section_id = ? AND ga_available >= ? RETURNING section_id",
        item.quantity,
        item.sectionId,
        item.quantity,
      );
      if (cursor.toArray().length !== 1) throw new Error("general-admission counter out of step");
    }
    const places = seats.length + ga.reduce((sum, item) => sum + item.quantity, 0);
    const seatRefs = this.seatRefs(state, seats);
    const gaRefs = this.gaRefs(state, ga);
    const total = [...seatRefs, ...gaRefs].reduce((sum, ref) => sum + ref.priceCents * ("quantity" in ref ? ref.quantity : 1), 0);
    this.sql.exec(
      "INSERT INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at, seat_list, ga_list, attempt_key) VALUES (?, ?, ?, 'live', ?, ?, ?, ?, ?, ?, ?)",
      holdId,
      request.accountId,
      request.requestId,
      places,
      total,
      expiresAt,
      now,
      seatList,
      JSON.stringify(ga),
      request.attemptKey,
    );
    return {
      ok: true,
      hold: { holdId, eventId: state.config.eventId, accountId: request.accountId, status: "live", expiresAt, createdAt: now, seats: seatRefs, generalAdmission: gaRefs, totalCents: total },
    };
  }

  /** Releases a live hold (its owner only). Releasing twice returns the released hold. */
  release(request: ReleaseRequest): HoldChangeResult {
    const state = this.loadedOrUndefined();
    if (!state) return refuse("hold_not_found");
    const now = Date.now();
    // A hold past its time is expired, not released, whether or not the alarm has run yet.
    this.releaseDueHolds(state, now);
    const hold = this.holdRow(request.holdId);
    if (!hold || hold.account_id !== request.accountId) return refuse("hold_not_found");
    if (hold.status === "confirmed") return refuse("hold_confirmed");
    if (hold.status === "live") {
      this.endHold(state, hold, "released", now);
      void this.scheduleAlarm(now + MIRROR_DELAY_MS); // Postgres hears of the release
    }
    const view = this.holdView(hold.hold_id);
    return view ? { ok: true, hold: view } : refuse("hold_not_found");
  }

  /**
   * Marks a hold's places sold. A lapsed hold is confirmed only with
   * `allowLapsed` and only if every one of its places is still free.
   */
  confirm(request: ConfirmRequest): HoldChangeResult {
    const state = this.loadedOrUndefined();
    if (!state) return refuse("hold_not_found");
    const now = Date.now();
    this.releaseDueHolds(state, now);
    const hold = this.holdRow(request.holdId);
    if (!hold) return refuse("hold_not_found");
    if (hold.status === "refunded") return refuse("hold_expired", "That hold was refunded; its places went back on sale.");
    if (hold.status !== "confirmed") {
      const lapsed = hold.status !== "live";
      if (lapsed && !request.allowLapsed) return refuse("hold_expired");
      const seats = seatListOf(hold);
      const ga = gaListOf(hold);
      if (lapsed && !this.stillFree(state, seats, ga)) return refuse("hold_expired", "That hold lapsed and its places were taken by someone else.");
      // A lapsed hold no longer counts towards the limit: the account may have held other places since.
      if (lapsed && this.overLimit(state, hold.account_id, hold.places)) return refuse("over_limit");
      try {
        this.ctx.storage.transactionSync(() => {
          if (lapsed) {
            if (seats.length > 0) this.sql.exec("INSERT INTO seat_claims (seat_index, hold_id) SELECT value, ? FROM json_each(?)", hold.hold_id, JSON.stringify(seats));
            for (const item of ga) this.sql.exec("UPDATE sections SET ga_available = ga_available - ? WHERE section_id = ?", item.quantity, item.sectionId);
          } else {
            const claimed = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM seat_claims WHERE hold_id = ?", hold.hold_id).one().n;
            if (claimed !== seats.length) throw new Error("seat claims out of step with the hold");
          }
          this.sql.exec("UPDATE holds SET status = 'confirmed', version = version + 1 WHERE hold_id = ?", hold.hold_id);
        });
      } catch (error) {
        this.loaded = undefined;
        throw error;
      }
      if (lapsed) {
        for (const seat of seats) state.seatMap.setFree(seat, false);
        for (const item of ga) {
          const section = state.sections.get(item.sectionId);
          if (section) section.ga_available -= item.quantity;
        }
        state.used.set(hold.account_id, (state.used.get(hold.account_id) ?? 0) + hold.places);
      }
      void this.scheduleAlarm(now + MIRROR_DELAY_MS);
    }
    const view = this.holdView(hold.hold_id);
    return view ? { ok: true, hold: view } : refuse("hold_not_found");
  }

  /**
   * Returns a confirmed hold's places to the pool (refund or cancellation):
   * the hold becomes `refunded`, its seats free and its general-admission
   * places back in their counters, and the waitlist hears of it. Unselling a
   * refunded hold returns it unchanged.
   */
  unsell(request: UnsellRequest): HoldChangeResult {
    const state = this.loadedOrUndefined();
    if (!state) return refuse("hold_not_found");
    const now = Date.now();
    const hold = this.holdRow(request.holdId);
    if (!hold) return refuse("hold_not_found");
    if (hold.status !== "confirmed" && hold.status !== "refunded") return refuse("not_sold");
    if (hold.status === "confirmed") {
      const seats = seatListOf(hold);
      const ga = gaListOf(hold);
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE holds SET status = 'refunded', version = version + 1 WHERE hold_id = ? AND status = 'confirmed'", hold.hold_id);
        this.sql.exec("DELETE FROM seat_claims WHERE hold_id = ?", hold.hold_id);
        for (const item of ga) this.sql.exec("UPDATE sections SET ga_available = ga_available + ? WHERE section_id = ?", item.quantity, item.sectionId);
        this.sql.exec("INSERT INTO returns (hold_id, places, reason, at) VALUES (?, ?, 'refunded', ?)", hold.hold_id, hold.places, now);
      });
      this.returnPlaces(state, hold, seats, ga);
      void this.scheduleAlarm(now + MIRROR_DELAY_MS); // Postgres hears of the refund
    }
    const view = this.holdView(hold.hold_id);
    return view ? { ok: true, hold: view } : refuse("hold_not_found");
  }

  private stillFree(state: Loaded, seats: number[], ga: GaItem[]): boolean {
    return seats.every((seat) => state.seatMap.isFree(seat)) && ga.every((item) => (state.sections.get(item.sectionId)?.ga_available ?? 0) >= item.quantity);
  }

  /** One hold, optionally only if it belongs to `accountId`. */
  getHold(holdId: string, accountId?: string): HoldView | null {
    this.releaseDueIfLoaded();
    const view = this.holdView(holdId);
    if (!view || (accountId !== undefined && view.accountId !== accountId)) return null;
    return view;
  }

  /** An account's holds, newest first. */
  accountHolds(accountId: string): HoldView[] {
    this.releaseDueIfLoaded();
    const state = this.loadedOrUndefined();
    if (!state) return [];
    return this.sql
      .exec<HoldRow>("SELECT * FROM holds WHERE account_id = ? ORDER BY created_at DESC LIMIT 100", accountId)
      .toArray()
      .map((row) => this.viewOf(state, row));
  }

  /** Per-section counts and the seat bitmap. */
  availability(): Availability {
    const state = this.loadedOrUndefined();
    if (!state) throw new Error("inventory not prepared");
    this.releaseDueHolds(state, Date.now());
    const bitmap = new Uint8Array(Math.ceil(state.seatCount / 8));
    for (let seat = 0; seat < state.seatCount; seat++) if (state.seatMap.isFree(seat)) setBit(bitmap, seat);
    const sections = [...state.sections.values()]
      .sort((a, b) => a.sort_order - b.sort_order)
      .map((s) => {
        const seated = s.kind === "seated";
        return {
          sectionId: s.section_id,
          label: s.label,
          kind: s.kind,
          priceTier: s.price_tier,
          capacity: s.capacity,
          available: seated ? state.seatMap.freeCount({ sectionId: s.section_id }) : s.ga_available,
        };
      });
    return { eventId: state.config.eventId, seatCount: state.seatCount, generatedAt: Date.now(), sections, bitmap };
  }

  /**
   * The waiting room asks to admit these accounts, in queue order. Each is
   * promised what it may still buy (purchase limit minus what it holds or
   * bought) as long as unpromised places remain, so admission never outruns
   * the inventory; at the tail, one fan at a time. Returns how many of the
   * prefix were granted and where the inventory stands.
   *
   * Returned places go to the waitlist first: those still in the `returns`
   * outbox, for up to WAITLIST_FIRST_MS, are kept out of the grant (nobody in
   * the queue is promised them, and they do not end a sell-out). `soldOut`: no
   * place is free for the queue (every place sold, held, or kept for the
   * waitlist). Not final: places come back when holds end or orders are
   * refunded.
   */
  grantAdmissions(accountIds: string[]): AdmissionGrant {
    const state = this.loadedOrUndefined();
    if (!state) return { granted: 0, available: 0, held: 0, soldOut: false };
    const now = Date.now();
    this.releaseDueHolds(state, now);
    this.sql.exec("DELETE FROM promises WHERE expires_at <= ?", now);
    const available = this.availablePlaces(state);
    const keptForWaitlist = Math.min(available, this.recentlyReturned(now));
    let granted = 0;
    for (const accountId of accountIds) {
      const need = Math.max(0, state.config.purchaseLimit - (state.used.get(accountId) ?? 0));
      const promised = this.livePromised(state, now);
      const free = available - keptForWaitlist - promised;
      if (need > 0 && free < need && !(promised === 0 && free > 0)) break;
      if (need > 0) {
        const places = Math.min(need, Math.max(free, 0));
        const expiresAt = now + ADMISSION_PROMISE_MS;
        this.sql.exec("INSERT OR REPLACE INTO promises (account_id, places, expires_at) VALUES (?, ?, ?)", accountId, places, expiresAt);
        this.setPromise(state, accountId, { places, expiresAt });
      }
      granted++;
    }
    const held = this.sql.exec<{ n: number }>("SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'live'").one().n;
    return { granted, available, held, soldOut: available - keptForWaitlist <= 0 };
  }

  /** Places returned within WAITLIST_FIRST_MS that the waitlist has not drained yet (some may be held again since). */
  private recentlyReturned(now: number): number {
    return this.sql.exec<{ n: number }>("SELECT coalesce(sum(places), 0) AS n FROM returns WHERE at > ?", now - WAITLIST_FIRST_MS).one().n;
  }

  /**
   * Drains the record of places returned to the pool (the waitlist's hook).
   * The waitlist drains after its pass has made its offers: from then on the
   * room may promise what the waitlist left (see `grantAdmissions`).
   */
  takeReturns(limit = 100): { holdId: string; places: number; reason: string; at: number }[] {
    const rows = this.sql
      .exec<{ id: number; hold_id: string; places: number; reason: string; at: number }>("SELECT id, hold_id, places, reason, at FROM returns ORDER BY id LIMIT ?", limit)
      .toArray();
    if (rows.length > 0) this.sql.exec("DELETE FROM returns WHERE id <= ?", rows[rows.length - 1]?.id ?? 0);
    return rows.map((r) => ({ holdId: r.hold_id, places: r.places, reason: r.reason, at: r.at }));
  }

  // ---------------------------------------------------------------- alarm

  /**
   * Expires due holds, mirrors changed holds to Postgres and forgets old
   * request results, then sets the alarm to the next thing due. Running it
   * twice, or early, changes nothing that is not due.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const now = Date.now();
    const state = this.loadedOrUndefined();
    if (!state) return;
    this.releaseDueHolds(state, now);
    this.sql.exec("DELETE FROM requests WHERE created_at < ?", now - REQUEST_RETENTION_MS);
    let next = this.earliestExpiry();
    try {
      await this.mirrorChangedHolds(state);
    } catch (error) {
      log.warn("inventory_mirror_failed", { eventId: state.config.eventId, error: String(error) });
      next = Math.min(next ?? Infinity, now + MIRROR_RETRY_MS);
    }
    if (this.hasUnmirrored()) next = Math.min(next ?? Infinity, Date.now() + MIRROR_DELAY_MS);
    await this.scheduleAlarm(next);
  }

  /** Sends changed holds to Postgres, a batch at a time on one connection, until none is left (or MIRROR_PASSES batches). */
  private async mirrorChangedHolds(state: Loaded): Promise<void> {
    let connection: ReturnType<typeof createDb> | undefined;
    try {
      for (let pass = 0; pass < MIRROR_PASSES; pass++) {
        const rows = this.sql.exec<HoldRow & { version: number }>(`SELECT * FROM holds WHERE mirrored_version < version LIMIT ${MIRROR_BATCH}`).toArray();
        if (rows.length === 0) return;
        const holds: MirroredHold[] = rows.map((row) => ({
          holdId: row.hold_id,
          accountId: row.account_id,
          requestId: row.request_id,
          status: row.status,
          expiresAt: row.expires_at,
          createdAt: row.created_at,
          items: [
            ...seatListOf(row).map((seatIndex) => {
              const seat = state.labels[seatIndex];
              return { seatIndex, sectionId: seat?.sectionId ?? "", quantity: 1, priceCents: state.prices.get(seat?.priceTier ?? "") ?? 0 };
            }),
            ...this.gaRefs(state, gaListOf(row)).map((g) => ({ seatIndex: null, sectionId: g.sectionId, quantity: g.quantity, priceCents: g.priceCents })),
          ],
        }));
        connection ??= createDb(loadConfig(this.env));
        await mirrorHolds(connection.db, state.config.eventId, holds);
        // Marks the versions sent; a hold that changed meanwhile stays unmirrored for the next batch.
        this.sql.exec(
          `UPDATE holds SET mirrored_version = sent.version
           FROM (SELECT value ->> 0 AS hold_id, value ->> 1 AS version FROM json_each(?)) AS sent
           WHERE holds.hold_id = sent.hold_id AND holds.version = sent.version`,
          JSON.stringify(rows.map((row) => [row.hold_id, row.version])),
        );
        if (rows.length < MIRROR_BATCH) return;
      }
    } finally {
      await connection?.close();
    }
  }

  // ---------------------------------------------------------------- internals

  private configRow() {
    return this.sql
      .exec<{ event_id: string; status: InventoryConfig["status"]; sale_starts_at: number; sale_ends_at: number; hold_ttl_ms: number; purchase_limit: number; seat_count: number }>(
        "SELECT * FROM config WHERE id = 1",
      )
      .toArray()[0];
  }

  private saveConfig(config: InventoryConfig, seatCount: number): void {
    this.sql.exec(
      `INSERT INTO config (id, event_id, status, sale_starts_at, sale_ends_at, hold_ttl_ms, purchase_limit, seat_count, prepared_at)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, sale_starts_at = excluded.sale_starts_at, sale_ends_at = excluded.sale_ends_at,
         hold_ttl_ms = excluded.hold_ttl_ms, purchase_limit = excluded.purchase_limit`,
      config.eventId,
      config.status,
      config.saleStartsAt,
      config.saleEndsAt,
      config.holdTtlMs,
      config.purchaseLimit,
      seatCount,
      Date.now(),
    );
  }

  private writeSnapshot(snapshot: InventorySnapshot): void {
    const seatCount = snapshot.seats.length === 0 ? 0 : Math.max(...snapshot.seats.map((s) => s.seatIndex)) + 1;
    this.saveConfig(snapshot.config, seatCount);
    for (const price of snapshot.prices) this.sql.exec("INSERT OR REPLACE INTO prices (price_tier, price_cents) VALUES (?, ?)", price.priceTier, price.priceCents);
    for (const s of snapshot.sections) {
      this.sql.exec(
        "INSERT OR REPLACE INTO sections (section_id, label, kind, price_tier, sort_order, capacity, ga_available) VALUES (?, ?, ?, ?, ?, ?, ?)",
        s.sectionId,
        s.label,
        s.kind,
        s.priceTier,
        s.sortOrder,
        s.kind === "seated" ? snapshot.seats.filter((seat) => seat.sectionId === s.sectionId).length : s.capacity,
        s.capacity,
      );
    }
    for (const seat of snapshot.seats) {
      this.sql.exec(
        "INSERT OR REPLACE INTO seats (seat_index, section_id, row_id, row_label, label, position, best_rank, price_tier) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        seat.seatIndex,
        seat.sectionId,
        seat.rowId,
        seat.rowLabel,
        seat.label,
        seat.position,
        seat.bestRank,
        seat.priceTier,
      );
    }
    for (const hold of snapshot.holds) {
      const places = hold.seats.length + hold.ga.reduce((sum, g) => sum + g.quantity, 0);
      const seats = [...hold.seats].sort((a, b) => a - b);
      this.sql.exec(
        `INSERT OR REPLACE INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at, version, mirrored_version, seat_list, ga_list)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`,
        hold.holdId,
        hold.accountId,
        hold.requestId,
        hold.status,
        places,
        hold.totalCents,
        hold.expiresAt,
        hold.createdAt,
        JSON.stringify(seats),
        JSON.stringify(hold.ga),
      );
      for (const seat of seats) this.sql.exec("INSERT OR REPLACE INTO seat_claims (seat_index, hold_id) VALUES (?, ?)", seat, hold.holdId);
      for (const g of hold.ga) this.sql.exec("UPDATE sections SET ga_available = max(ga_available - ?, 0) WHERE section_id = ?", g.quantity, g.sectionId);
    }
  }

  private loadedOrUndefined(): Loaded | undefined {
    if (this.loaded) return this.loaded;
    if (!this.configRow()) return undefined;
    return this.state();
  }

  /** The in-memory state, rebuilt from SQLite when missing. */
  private state(): Loaded {
    if (this.loaded) return this.loaded;
    const row = this.configRow();
    if (!row) throw new Error("inventory not prepared");
    const config: InventoryConfig = {
      eventId: row.event_id,
      status: row.status,
      saleStartsAt: row.sale_starts_at,
      saleEndsAt: row.sale_ends_at,
      holdTtlMs: row.hold_ttl_ms,
      purchaseLimit: row.purchase_limit,
    };
    const claimed = new Uint8Array(row.seat_count);
    for (const claim of this.sql.exec<{ seat_index: number }>("SELECT seat_index FROM seat_claims")) claimed[claim.seat_index] = 1;
    const labels: (SeatLabel | undefined)[] = new Array<SeatLabel | undefined>(row.seat_count);
    const layout = this.sql
      .exec<{ seat_index: number; section_id: string; row_id: string; row_label: string; label: string; position: number; best_rank: number; price_tier: string }>(
        "SELECT seat_index, section_id, row_id, row_label, label, position, best_rank, price_tier FROM seats",
      )
      .toArray()
      .map((s) => {
        labels[s.seat_index] = { sectionId: s.section_id, rowLabel: s.row_label, label: s.label, priceTier: s.price_tier };
        return { seatIndex: s.seat_index, sectionId: s.section_id, rowId: s.row_id, position: s.position, bestRank: s.best_rank, priceTier: s.price_tier };
      });
    const seatMap = new SeatMap(layout, row.seat_count, (seat) => claimed[seat] !== 1);
    const prices = new Map(this.sql.exec<{ price_tier: string; price_cents: number }>("SELECT * FROM prices").toArray().map((p) => [p.price_tier, p.price_cents]));
    const sections = new Map(this.sql.exec<SectionRow>("SELECT * FROM sections").toArray().map((s) => [s.section_id, s]));
    const used = new Map(
      this.sql
        .exec<{ account_id: string; n: number }>("SELECT account_id, sum(places) AS n FROM holds WHERE status IN ('live', 'confirmed') GROUP BY account_id")
        .toArray()
        .map((r) => [r.account_id, r.n]),
    );
    const now = Date.now();
    const attempts = new Map(
      this.sql
        .exec<{ attempt_key: string; at: number }>(
          `SELECT attempt_key, max(created_at) AS at FROM (
             SELECT attempt_key, created_at FROM requests WHERE created_at > ?1
             UNION ALL SELECT attempt_key, created_at FROM holds WHERE created_at > ?1)
           WHERE attempt_key IS NOT NULL GROUP BY attempt_key`,
          now - ATTEMPT_INTERVAL_MS,
        )
        .toArray()
        .map((r) => [r.attempt_key, r.at]),
    );
    const promises = new Map(
      this.sql
        .exec<{ account_id: string; places: number; expires_at: number }>("SELECT account_id, places, expires_at FROM promises")
        .toArray()
        .map((p) => [p.account_id, { places: p.places, expiresAt: p.expires_at }]),
    );
    this.loaded = {
      config,
      seatMap,
      labels,
      prices,
      sections,
      seatCount: row.seat_count,
      used,
      attempts,
      promises,
      promisedTotal: 0,
      promisesCheckAt: -Infinity, // counted on first use
      nextExpiry: this.earliestExpiry() ?? Infinity,
    };
    return this.loaded;
  }

  private availablePlaces(state: Loaded): number {
    let ga = 0;
    for (const s of state.sections.values()) if (s.kind === "general_admission") ga += s.ga_available;
    return state.seatMap.freeCount() + ga;
  }

  private releaseDueIfLoaded(): void {
    const state = this.loadedOrUndefined();
    if (state) this.releaseDueHolds(state, Date.now());
  }

  /** Expires every live hold whose time has come (an expired hold never blocks a seat). */
  private releaseDueHolds(state: Loaded, now: number): void {
    if (now < state.nextExpiry) return;
    for (;;) {
      const due = this.sql.exec<HoldRow>(`SELECT * FROM holds WHERE status = 'live' AND expires_at <= ? LIMIT ${EXPIRY_BATCH}`, now).toArray();
      for (const hold of due) this.endHold(state, hold, "expired", now);
      if (due.length < EXPIRY_BATCH) break;
    }
    state.nextExpiry = this.earliestExpiry() ?? Infinity;
  }

  /** Ends a live hold: its places go back to the pool and the waitlist hook hears of it. */
  private endHold(state: Loaded, hold: HoldRow, status: "released" | "expired", now: number): void {
    const seats = seatListOf(hold);
    const ga = gaListOf(hold);
    const ended = this.ctx.storage.transactionSync(() => {
      const changed = this.sql.exec(`UPDATE holds SET status = ?, version = version + 1 WHERE hold_id = ? AND status = 'live' RETURNING hold_id`, status, hold.hold_id);
      if (changed.toArray().length === 0) return false;
      this.sql.exec("DELETE FROM seat_claims WHERE hold_id = ?", hold.hold_id);
      for (const item of ga) this.sql.exec("UPDATE sections SET ga_available = ga_available + ? WHERE section_id = ?", item.quantity, item.sectionId);
      this.sql.exec("INSERT INTO returns (hold_id, places, reason, at) VALUES (?, ?, ?, ?)", hold.hold_id, hold.places, status, now);
      return true;
    });
    if (ended) this.returnPlaces(state, hold, seats, ga);
  }

  /** Memory after a hold's places went back to the pool. */
  private returnPlaces(state: Loaded, hold: HoldRow, seats: number[], ga: GaItem[]): void {
    for (const seat of seats) state.seatMap.setFree(seat, true);
    for (const item of ga) {
      const section = state.sections.get(item.sectionId);
      if (section) section.ga_available += item.quantity;
    }
    const left = (state.used.get(hold.account_id) ?? 0) - hold.places;
    if (left > 0) state.used.set(hold.account_id, left);
    else state.used.delete(hold.account_id);
  }

  private holdRow(holdId: string): HoldRow | undefined {
    return this.sql.exec<HoldRow>("SELECT * FROM holds WHERE hold_id = ?", holdId).toArray()[0];
  }

  private holdView(holdId: string): HoldView | undefined {
    const row = this.holdRow(holdId);
    const state = this.loadedOrUndefined();
    if (!row || !state) return undefined;
    return this.viewOf(state, row);
  }

  private viewOf(state: Loaded, row: HoldRow): HoldView {
    return {
      holdId: row.hold_id,
      eventId: state.config.eventId,
      accountId: row.account_id,
      status: row.status,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      seats: this.seatRefs(state, seatListOf(row)),
      generalAdmission: this.gaRefs(state, gaListOf(row)),
      totalCents: row.total_cents,
    };
  }

  private seatRefs(state: Loaded, seats: number[]): SeatRef[] {
    return seats.map((seatIndex) => {
      const seat = state.labels[seatIndex];
      const tier = seat?.priceTier ?? "";
      return {
        seatIndex,
        section: state.sections.get(seat?.sectionId ?? "")?.label ?? "",
        row: seat?.rowLabel ?? "",
        seat: seat?.label ?? "",
        priceTier: tier,
        priceCents: state.prices.get(tier) ?? 0,
      };
    });
  }

  private gaRefs(state: Loaded, items: GaItem[]): GaRef[] {
    return items.map((item) => {
      const section = state.sections.get(item.sectionId);
      const tier = section?.price_tier ?? "";
      return { sectionId: item.sectionId, section: section?.label ?? "", quantity: item.quantity, priceTier: tier, priceCents: state.prices.get(tier) ?? 0 };
    });
  }

  private earliestExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM holds WHERE status = 'live'").one().at;
  }

  private hasUnmirrored(): boolean {
    return this.sql.exec("SELECT 1 FROM holds WHERE mirrored_version < version LIMIT 1").toArray().length > 0;
  }

  /** Keeps one alarm, at the earliest time anything is due. */
  private async scheduleAlarm(at: number | null): Promise<void> {
    if (at === null || !Number.isFinite(at)) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}

/** A hold row's seats, in seat order. */
function seatListOf(row: { seat_list: string }): number[] {
  return JSON.parse(row.seat_list) as number[];
}

/** A hold row's general-admission places. */
function gaListOf(row: { ga_list: string }): GaItem[] {
  return JSON.parse(row.ga_list) as GaItem[];
}
