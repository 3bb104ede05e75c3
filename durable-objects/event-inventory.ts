/**
 * The seat inventory of one hot event: serializes every hold, release and
 * confirmation in SQLite, assigns best-available seats from an in-memory seat
 * map (a cache of the `seats` table, rebuilt after a restart), expires holds
 * with one alarm set to the earliest expiry, and mirrors holds to Postgres so
 * the object can be rebuilt from there.
 */
import { DurableObject } from "cloudflare:workers";
import { loadConfig } from "../workers/config";
import { createDb } from "../workers/db/client";
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
} from "../workers/inventory/contract";
import { SeatMap } from "../workers/inventory/seat-map";
import type { AdmissionGrant } from "./waiting-room";
import { SEAT_FREE, SEAT_HELD, SEAT_SOLD, migrateInventorySchema } from "./inventory-schema";
import { loadInventoryConfig, loadInventorySnapshot, markInventoryPrepared, mirrorHolds, type InventoryConfig, type InventorySnapshot, type MirroredHold } from "./inventory-postgres";

/** An admitted fan's promised share is freed if they have not held within this time. */
export const ADMISSION_PROMISE_MS = 10 * 60 * 1000;
/** Why a hold is refused while places are free: they are promised to fans admitted earlier. */
const PROMISED_ELSEWHERE = "The places left are kept for fans admitted before you; some may come back if they do not buy.";
/** How soon changed holds reach Postgres. */
const MIRROR_DELAY_MS = 1_000;
/** Retry delay when Postgres is unreachable. */
const MIRROR_RETRY_MS = 5_000;
/** Holds mirrored per statement. */
const MIRROR_BATCH = 2_000;
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

/** What the object keeps in memory: rebuilt from SQLite after every restart. */
interface Loaded {
  config: InventoryConfig;
  seatMap: SeatMap;
  prices: Map<string, number>;
  sections: Map<string, SectionRow>;
  seatCount: number;
}

/** Outcome of one `prepare()` call. */
export interface PrepareResult {
  seatCount: number;
  available: number;
  holdsRecovered: number;
  rebuilt: boolean;
}

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
    void ctx.blockConcurrencyWhile(async () => migrateInventorySchema(this.sql));
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

  /**
   * Applies hold requests in order, each all-or-nothing in its own
   * transaction: the Worker coalesces concurrent fans into one call.
   */
  applyHolds(requests: HoldRequest[]): HoldResult[] {
    const state = this.loadedOrUndefined();
    if (!state) return requests.map(() => refuse("not_on_sale", "This event's inventory is not prepared yet."));
    const now = Date.now();
    this.releaseDueHolds(state, now);
    // Places promised to admitted fans who hold nothing yet (one scan per batch, kept current below).
    const promises = { total: this.promisedPlaces(now) };
    let earliest = Infinity;
    const results = requests.map((request) => {
      const result = this.applyHold(state, request, now, promises);
      if (result.ok && result.hold.status === "live") earliest = Math.min(earliest, result.hold.expiresAt);
      return result;
    });
    if (earliest < Infinity) void this.scheduleAlarm(Math.min(earliest, now + MIRROR_DELAY_MS));
    return results;
  }

  private applyHold(state: Loaded, request: HoldRequest, now: number, promises: { total: number }): HoldResult {
    const requestKey = `${request.accountId}:${request.requestId}`;
    const prior = this.sql.exec<{ result: string }>("SELECT result FROM requests WHERE request_key = ?", requestKey).toArray()[0];
    if (prior) return this.replay(prior.result);
    const { config } = state;
    if (config.status !== "published" || now < config.saleStartsAt || now >= config.saleEndsAt) return refuse("not_on_sale");
    const lastAttempt = this.sql.exec<{ last_at: number }>("SELECT last_at FROM attempts WHERE attempt_key = ?", request.attemptKey).toArray()[0];
    if (lastAttempt && now - lastAttempt.last_at < ATTEMPT_INTERVAL_MS) return refuse("too_fast");

    let result: HoldResult;
    try {
      result = this.ctx.storage.transactionSync(() => {
        this.sql.exec("INSERT INTO attempts (attempt_key, last_at) VALUES (?, ?) ON CONFLICT (attempt_key) DO UPDATE SET last_at = excluded.last_at", request.attemptKey, now);
        const promisedToOthers = promises.total - this.promisedPlaces(now, request.accountId);
        const outcome = request.kind === "seats" ? this.holdSeats(state, request, now, promisedToOthers) : this.holdBest(state, request, now, promisedToOthers);
        const stored = outcome.ok ? { ok: true, holdId: outcome.hold.holdId } : outcome;
        this.sql.exec("INSERT INTO requests (request_key, result, created_at) VALUES (?, ?, ?)", requestKey, JSON.stringify(stored), now);
        return outcome;
      });
    } catch (error) {
      this.loaded = undefined; // the transaction rolled back: rebuild the cache from SQLite
      throw error;
    }
    if (result.ok) {
      for (const seat of result.hold.seats) state.seatMap.setFree(seat.seatIndex, false);
      // The fan's promised share (if the waiting room admitted them) is now real holds.
      promises.total -= this.promisedPlaces(now, request.accountId);
      this.sql.exec("DELETE FROM promises WHERE account_id = ?", request.accountId);
    }
    return result;
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

  private placesUsed(accountId: string): number {
    const row = this.sql
      .exec<{ used: number }>("SELECT coalesce(sum(places), 0) AS used FROM holds WHERE account_id = ? AND status IN ('live', 'confirmed')", accountId)
      .one();
    return row.used;
  }

  /** Live promises: everyone's, or one account's. */
  private promisedPlaces(now: number, accountId?: string): number {
    const query = "SELECT coalesce(sum(places), 0) AS n FROM promises WHERE expires_at > ?";
    const cursor = accountId === undefined ? this.sql.exec<{ n: number }>(query, now) : this.sql.exec<{ n: number }>(`${query} AND account_id = ?`, now, accountId);
    return cursor.one().n;
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

  private holdSeats(state: Loaded, request: HoldSeatsRequest, now: number, promisedToOthers: number): HoldResult {
    const seats = [...new Set(request.seatIndexes)];
    if (seats.length === 0 || seats.some((seat) => !state.seatMap.has(seat))) return refuse("invalid_seat");
    if (this.placesUsed(request.accountId) + seats.length > state.config.purchaseLimit) return refuse("over_limit");
    if (seats.some((seat) => !state.seatMap.isFree(seat))) return refuse("seat_taken");
    if (this.takesPromised(state, seats.length, promisedToOthers)) return refuse("sold_out", PROMISED_ELSEWHERE);
    return this.createHold(state, request, seats, [], now);
  }

  private holdBest(state: Loaded, request: HoldBestRequest, now: number, promisedToOthers: number): HoldResult {
    const { quantity } = request;
    if (this.placesUsed(request.accountId) + quantity > state.config.purchaseLimit) return refuse("over_limit");
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

  private createHold(state: Loaded, request: HoldRequest, seats: number[], ga: { sectionId: string; quantity: number }[], now: number): HoldResult {
    const holdId = crypto.randomUUID();
    const expiresAt = now + state.config.holdTtlMs + Math.floor(Math.random() * HOLD_JITTER_MS);
    if (seats.length > 0) {
      const list = JSON.stringify(seats);
      const cursor = this.sql.exec(
        `UPDATE seats SET state = ${SEAT_HELD}, hold_id = ? WHERE seat_index IN (SELECT value FROM json_each(?)) AND state = ${SEAT_FREE} RETURNING seat_index`,
        holdId,
        list,
      );
      // The seat map said these were free; SQLite is the truth and must agree.
      if (cursor.toArray().length !== seats.length) throw new Error("seat map out of step with storage");
      this.sql.exec("INSERT INTO hold_seats (hold_id, seat_index) SELECT ?, value FROM json_each(?)", holdId, list);
    }
    for (const item of ga) {
      const cursor = this.sql.exec(
        "UPDATE sections SET ga_available = ga_available - ? WHERE section_id = ? AND ga_available >= ? RETURNING section_id",
        item.quantity,
        item.sectionId,
        item.quantity,
      );
      if (cursor.toArray().length !== 1) throw new Error("general-admission counter out of step");
      this.sql.exec("INSERT INTO hold_ga (hold_id, section_id, quantity) VALUES (?, ?, ?)", holdId, item.sectionId, item.quantity);
      const section = state.sections.get(item.sectionId);
      if (section) section.ga_available -= item.quantity;
    }
    const places = seats.length + ga.reduce((sum, item) => sum + item.quantity, 0);
    const seatRefs = this.seatRefs(state, seats);
    const gaRefs = this.gaRefs(state, ga);
    const total = [...seatRefs, ...gaRefs].reduce((sum, ref) => sum + ref.priceCents * ("quantity" in ref ? ref.quantity : 1), 0);
    this.sql.exec(
      "INSERT INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at) VALUES (?, ?, ?, 'live', ?, ?, ?, ?)",
      holdId,
      request.accountId,
      request.requestId,
      places,
      total,
      expiresAt,
      now,
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
      this.endHold(state, hold.hold_id, "released", now);
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
      const seats = this.seatsOfHold(hold.hold_id);
      const ga = this.gaOfHold(hold.hold_id);
      if (lapsed && !this.stillFree(state, seats, ga)) return refuse("hold_expired", "That hold lapsed and its places were taken by someone else.");
      // A lapsed hold no longer counts towards the limit: the account may have held other places since.
      if (lapsed && this.placesUsed(hold.account_id) + hold.places > state.config.purchaseLimit) return refuse("over_limit");
      this.ctx.storage.transactionSync(() => {
        const list = JSON.stringify(seats);
        const sold = this.sql.exec(
          `UPDATE seats SET state = ${SEAT_SOLD}, hold_id = ? WHERE seat_index IN (SELECT value FROM json_each(?)) AND (hold_id = ? OR state = ${SEAT_FREE}) RETURNING seat_index`,
          hold.hold_id,
          list,
          hold.hold_id,
        );
        if (sold.toArray().length !== seats.length) throw new Error("seat map out of step with storage");
        if (lapsed) {
          for (const item of ga) this.sql.exec("UPDATE sections SET ga_available = ga_available - ? WHERE section_id = ?", item.quantity, item.section_id);
        }
        this.sql.exec("UPDATE holds SET status = 'confirmed', version = version + 1 WHERE hold_id = ?", hold.hold_id);
      });
      if (lapsed) {
        for (const seat of seats) state.seatMap.setFree(seat, false);
        for (const item of ga) {
          const section = state.sections.get(item.section_id);
          if (section) section.ga_available -= item.quantity;
        }
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
      const seats = this.seatsOfHold(hold.hold_id);
      const ga = this.gaOfHold(hold.hold_id);
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE holds SET status = 'refunded', version = version + 1 WHERE hold_id = ? AND status = 'confirmed'", hold.hold_id);
        this.sql.exec(`UPDATE seats SET state = ${SEAT_FREE}, hold_id = NULL WHERE hold_id = ? AND state = ${SEAT_SOLD}`, hold.hold_id);
        for (const item of ga) this.sql.exec("UPDATE sections SET ga_available = ga_available + ? WHERE section_id = ?", item.quantity, item.section_id);
        this.sql.exec("INSERT INTO returns (hold_id, places, reason, at) VALUES (?, ?, 'refunded', ?)", hold.hold_id, hold.places, now);
      });
      for (const seat of seats) state.seatMap.setFree(seat, true);
      for (const item of ga) {
        const section = state.sections.get(item.section_id);
        if (section) section.ga_available += item.quantity;
      }
      void this.scheduleAlarm(now + MIRROR_DELAY_MS); // Postgres hears of the refund
    }
    const view = this.holdView(hold.hold_id);
    return view ? { ok: true, hold: view } : refuse("hold_not_found");
  }

  private stillFree(state: Loaded, seats: number[], ga: { section_id: string; quantity: number }[]): boolean {
    return seats.every((seat) => state.seatMap.isFree(seat)) && ga.every((item) => (state.sections.get(item.section_id)?.ga_available ?? 0) >= item.quantity);
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
    return this.sql
      .exec<{ hold_id: string }>("SELECT hold_id FROM holds WHERE account_id = ? ORDER BY created_at DESC LIMIT 100", accountId)
      .toArray()
      .flatMap((row) => this.holdView(row.hold_id) ?? []);
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
   */
  grantAdmissions(accountIds: string[]): AdmissionGrant {
    const state = this.loadedOrUndefined();
    if (!state) return { granted: 0, available: 0, held: 0, soldOut: false };
    const now = Date.now();
    this.releaseDueHolds(state, now);
    this.sql.exec("DELETE FROM promises WHERE expires_at <= ?", now);
    const available = this.availablePlaces(state);
    let promised = this.sql.exec<{ n: number }>("SELECT coalesce(sum(places), 0) AS n FROM promises").one().n;
    let granted = 0;
    for (const accountId of accountIds) {
      const need = Math.max(0, state.config.purchaseLimit - this.placesUsed(accountId));
      const free = available - promised;
      if (need > 0 && free < need && !(promised === 0 && free > 0)) break;
      if (need > 0) {
        const places = Math.min(need, Math.max(free, 0));
        this.sql.exec("INSERT OR REPLACE INTO promises (account_id, places, expires_at) VALUES (?, ?, ?)", accountId, places, now + ADMISSION_PROMISE_MS);
        promised += places;
      }
      granted++;
    }
    const held = this.sql.exec<{ n: number }>("SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'live'").one().n;
    return { granted, available, held, soldOut: available === 0 && held === 0 };
  }

  /** Drains the record of places returned to the pool (the waitlist's hook). */
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
      console.error(JSON.stringify({ level: "warn", event: "inventory_mirror_failed", eventId: state.config.eventId, error: String(error) }));
      next = Math.min(next ?? Infinity, now + MIRROR_RETRY_MS);
    }
    if (this.hasUnmirrored()) next = Math.min(next ?? Infinity, Date.now() + MIRROR_DELAY_MS);
    await this.scheduleAlarm(next);
  }

  private async mirrorChangedHolds(state: Loaded): Promise<void> {
    const rows = this.sql
      .exec<HoldRow & { version: number }>(`SELECT * FROM holds WHERE mirrored_version < version LIMIT ${MIRROR_BATCH}`)
      .toArray();
    if (rows.length === 0) return;
    const holds: MirroredHold[] = rows.map((row) => ({
      holdId: row.hold_id,
      accountId: row.account_id,
      requestId: row.request_id,
      status: row.status,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      items: [
        ...this.sql
          .exec<{ seat_index: number; section_id: string; price_tier: string }>(
            "SELECT s.seat_index, s.section_id, s.price_tier FROM hold_seats h JOIN seats s ON s.seat_index = h.seat_index WHERE h.hold_id = ?",
            row.hold_id,
          )
          .toArray()
          .map((s) => ({ seatIndex: s.seat_index, sectionId: s.section_id, quantity: 1, priceCents: state.prices.get(s.price_tier) ?? 0 })),
        ...this.gaRefs(state, this.gaOfHold(row.hold_id).map((g) => ({ sectionId: g.section_id, quantity: g.quantity }))).map((g) => ({
          seatIndex: null,
          sectionId: g.sectionId,
          quantity: g.quantity,
          priceCents: g.priceCents,
        })),
      ],
    }));
    const { db, close } = createDb(loadConfig(this.env));
    try {
      await mirrorHolds(db, state.config.eventId, holds);
    } finally {
      await close();
    }
    for (const row of rows) this.sql.exec("UPDATE holds SET mirrored_version = ? WHERE hold_id = ? AND version = ?", row.version, row.hold_id, row.version);
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
        "INSERT OR REPLACE INTO seats (seat_index, section_id, row_id, row_label, label, position, best_rank, price_tier, state, hold_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)",
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
      this.sql.exec(
        "INSERT OR REPLACE INTO holds (hold_id, account_id, request_id, status, places, total_cents, expires_at, created_at, version, mirrored_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1)",
        hold.holdId,
        hold.accountId,
        hold.requestId,
        hold.status,
        places,
        hold.totalCents,
        hold.expiresAt,
        hold.createdAt,
      );
      const state = hold.status === "confirmed" ? SEAT_SOLD : SEAT_HELD;
      for (const seat of hold.seats) {
        this.sql.exec("UPDATE seats SET state = ?, hold_id = ? WHERE seat_index = ?", state, hold.holdId, seat);
        this.sql.exec("INSERT OR IGNORE INTO hold_seats (hold_id, seat_index) VALUES (?, ?)", hold.holdId, seat);
      }
      for (const g of hold.ga) {
        this.sql.exec("INSERT OR REPLACE INTO hold_ga (hold_id, section_id, quantity) VALUES (?, ?, ?)", hold.holdId, g.sectionId, g.quantity);
        this.sql.exec("UPDATE sections SET ga_available = max(ga_available - ?, 0) WHERE section_id = ?", g.quantity, g.sectionId);
      }
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
    const free = new Uint8Array(row.seat_count);
    const layout = this.sql
      .exec<{ seat_index: number; section_id: string; row_id: string; position: number; best_rank: number; price_tier: string; state: number }>(
        "SELECT seat_index, section_id, row_id, position, best_rank, price_tier, state FROM seats",
      )
      .toArray()
      .map((s) => {
        if (s.state === SEAT_FREE) free[s.seat_index] = 1;
        return { seatIndex: s.seat_index, sectionId: s.section_id, rowId: s.row_id, position: s.position, bestRank: s.best_rank, priceTier: s.price_tier };
      });
    const seatMap = new SeatMap(layout, row.seat_count, (seat) => free[seat] === 1);
    const prices = new Map(this.sql.exec<{ price_tier: string; price_cents: number }>("SELECT * FROM prices").toArray().map((p) => [p.price_tier, p.price_cents]));
    const sections = new Map(this.sql.exec<SectionRow>("SELECT * FROM sections").toArray().map((s) => [s.section_id, s]));
    this.loaded = { config, seatMap, prices, sections, seatCount: row.seat_count };
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
    for (;;) {
      const due = this.sql.exec<{ hold_id: string }>(`SELECT hold_id FROM holds WHERE status = 'live' AND expires_at <= ? LIMIT ${EXPIRY_BATCH}`, now).toArray();
      for (const { hold_id } of due) this.endHold(state, hold_id, "expired", now);
      if (due.length < EXPIRY_BATCH) return;
    }
  }

  /** Ends a live hold: its places go back to the pool and the waitlist hook hears of it. */
  private endHold(state: Loaded, holdId: string, status: "released" | "expired", now: number): void {
    const seats = this.seatsOfHold(holdId);
    const ga = this.gaOfHold(holdId);
    this.ctx.storage.transactionSync(() => {
      const ended = this.sql.exec(`UPDATE holds SET status = ?, version = version + 1 WHERE hold_id = ? AND status = 'live' RETURNING hold_id`, status, holdId);
      if (ended.toArray().length === 0) return;
      this.sql.exec(`UPDATE seats SET state = ${SEAT_FREE}, hold_id = NULL WHERE hold_id = ? AND state = ${SEAT_HELD}`, holdId);
      for (const item of ga) this.sql.exec("UPDATE sections SET ga_available = ga_available + ? WHERE section_id = ?", item.quantity, item.section_id);
      const places = seats.length + ga.reduce((sum, g) => sum + g.quantity, 0);
      this.sql.exec("INSERT INTO returns (hold_id, places, reason, at) VALUES (?, ?, ?, ?)", holdId, places, status, now);
    });
    for (const seat of seats) state.seatMap.setFree(seat, true);
    for (const item of ga) {
      const section = state.sections.get(item.section_id);
      if (section) section.ga_available += item.quantity;
    }
  }

  /** Every seat a hold claimed, live or not. */
  private seatsOfHold(holdId: string): number[] {
    return this.sql.exec<{ seat_index: number }>("SELECT seat_index FROM hold_seats WHERE hold_id = ?", holdId).toArray().map((r) => r.seat_index);
  }

  private gaOfHold(holdId: string): { section_id: string; quantity: number }[] {
    return this.sql.exec<{ section_id: string; quantity: number }>("SELECT section_id, quantity FROM hold_ga WHERE hold_id = ?", holdId).toArray();
  }

  private holdRow(holdId: string): HoldRow | undefined {
    return this.sql.exec<HoldRow>("SELECT * FROM holds WHERE hold_id = ?", holdId).toArray()[0];
  }

  private holdView(holdId: string): HoldView | undefined {
    const row = this.holdRow(holdId);
    const state = this.loadedOrUndefined();
    if (!row || !state) return undefined;
    const seats = this.seatRefs(state, this.seatsOfHold(holdId));
    const ga = this.gaRefs(state, this.gaOfHold(holdId).map((g) => ({ sectionId: g.section_id, quantity: g.quantity })));
    return {
      holdId,
      eventId: state.config.eventId,
      accountId: row.account_id,
      status: row.status,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      seats,
      generalAdmission: ga,
      totalCents: row.total_cents,
    };
  }

  private seatRefs(state: Loaded, seats: number[]): SeatRef[] {
    if (seats.length === 0) return [];
    return this.sql
      .exec<{ seat_index: number; section_id: string; row_label: string; label: string; price_tier: string }>(
        `SELECT seat_index, section_id, row_label, label, price_tier FROM seats WHERE seat_index IN (${seats.map(() => "?").join(",")}) ORDER BY seat_index`,
        ...seats,
      )
      .toArray()
      .map((s) => ({
        seatIndex: s.seat_index,
        section: state.sections.get(s.section_id)?.label ?? "",
        row: s.row_label,
        seat: s.label,
        priceTier: s.price_tier,
        priceCents: state.prices.get(s.price_tier) ?? 0,
      }));
  }

  private gaRefs(state: Loaded, items: { sectionId: string; quantity: number }[]): GaRef[] {
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
