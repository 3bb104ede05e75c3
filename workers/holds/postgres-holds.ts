/**
 * The seat inventory of a calm event, kept straight in Postgres with
 * optimistic locking (seed "Component 3"). The same contract as the hot
 * events' `EventInventory` Durable Object, with the same answers.
 *
 * Why it cannot oversell:
 * - a seat is taken by one conditional UPDATE that only matches free seats
 *   (available, or held by a hold whose time is up), locking them in
 *   seat-index order; fewer rows back than asked means someone else won;
 * - general-admission places are counted under a lock on the section's
 *   counter row, in a statement that runs after the lock is granted;
 * - purchase limits, idempotent retries and attempt keys are checked under a
 *   per-(event, account) advisory lock and a conditional upsert.
 * An expired hold never blocks anything, so no sweep is needed for correctness.
 */
import { v7 as uuidv7 } from "uuid";
import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { ATTEMPT_INTERVAL_MS, FAILURE_MESSAGES, HOLD_JITTER_MS, isBadInput, refuse, setBit } from "../../core/holds/contract";
import { holdExpiry } from "../../core/time-scale";
import type { Availability, ConfirmRequest, GaRef, HoldBestRequest, HoldChangeResult, HoldRequest, HoldResult, HoldSeatsRequest, HoldView, Inventory, InventoryFailure, OpenPlaces, ReleaseRequest, SeatRef, UnsellRequest } from "../../core/holds/contract";
import { SeatChart, SeatMap, type SeatFilter, type SeatLayout } from "../../core/holds/seat-map";
import { IsolateCache } from "../../core/isolate-cache";

/** Seat maps loaded per best-available request: the first plus reloads when other holds keep winning the picked seats. */
const BEST_AVAILABLE_SEARCHES = 4;
/**
 * Blocks tried per loaded seat map. When another hold has (or is taking) the
 * picked seats, the next best block of the same map is tried at once: racing
 * fans spread over the best blocks instead of all reloading the map and
 * picking the same next block again.
 */
const BLOCKS_PER_SEARCH = 64;
/** Runs of one transaction when Postgres aborts it as a deadlock or serialization victim. */
const TRANSACTION_RUNS = 3;
/** Holds listed per account. */
const ACCOUNT_HOLDS_LIMIT = 100;
/** Seat charts cached per isolate, by event (see `seatMap`). */
const charts = new IsolateCache<string, SeatChart>(16);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
type Executor = Db | Tx;

/** An event's sale settings as holds need them. */
interface SaleSettings {
  status: "draft" | "published" | "cancelled";
  venueId: string;
  saleStartsAt: number;
  saleEndsAt: number;
  holdTtlMs: number;
  purchaseLimit: number;
}

/** A general-admission place request. */
interface GaItem {
  sectionId: string;
  quantity: number;
}

/** A hold as `lockHold` reads it. */
interface LockedHold extends Record<string, unknown> {
  id: string;
  account_id: string;
  status: HoldView["status"];
  /** Its time is up (a live hold past its expiry). */
  lapsed: boolean;
}

/** What `inventory_requests.result` stores. */
type StoredResult = { ok: true; holdId: string } | { ok: false; reason: InventoryFailure; message: string };

/** Thrown inside a (sub)transaction to roll it back and answer with a refusal instead. */
class Refusal extends Error {
  constructor(readonly result: { ok: false; reason: InventoryFailure; message: string }) {
    super(result.reason);
  }
}

/** The inventory of one calm event, in Postgres. Cheap to construct: one per request. */
export class PostgresInventory implements Inventory {
  constructor(
    private readonly db: Db,
    private readonly eventId: string,
    private readonly clock: () => number = Date.now,
    /** The rehearsal clock's scale of hold TTLs (core/time-scale.ts). */
    private readonly timeScale = 1,
  ) {}

  // ---------------------------------------------------------------- holds

  /**
   * Holds exact seats or the best places in a tier/section, all or nothing.
   * A retry with the same account and request id gets the first result.
   */
  async hold(request: HoldRequest): Promise<HoldResult> {
    if (!UUID.test(this.eventId)) return refuse("not_on_sale");
    const now = this.clock();
    return this.transact(async (tx) => {
      await this.lockAccount(tx, request.accountId);
      const prior = await this.priorResult(tx, request, now);
      if (prior) return prior;
      const event = await this.saleSettings(tx);
      if (!event || event.status !== "published" || now < event.saleStartsAt || now >= event.saleEndsAt) return refuse("not_on_sale");
      if (!(await this.recordAttempt(tx, request.attemptKey, now))) return refuse("too_fast");
      const outcome = request.kind === "seats" ? await this.holdSeats(tx, event, request, now) : await this.holdBest(tx, event, request, now);
      // Bad input changes nothing: the rollback undoes the attempt just recorded, and no answer is kept.
      if (!outcome.ok && isBadInput(outcome)) throw new Refusal(outcome);
      const stored: StoredResult = outcome.ok ? { ok: true, holdId: outcome.hold.holdId } : outcome;
      await tx.execute(sql`
        insert into inventory_requests (event_id, account_id, request_id, result, created_at)
        values (${this.eventId}, ${request.accountId}, ${request.requestId}, ${JSON.stringify(stored)}::jsonb, ${iso(now)}::timestamptz)`);
      return outcome;
    });
  }

  /** Serializes what one account does at this event (retries, purchase limits) until the transaction ends. */
  private async lockAccount(tx: Tx, accountId: string): Promise<void> {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${this.eventId}::uuid::text || ':' || ${accountId}::uuid::text, 0))`);
  }

  private async priorResult(tx: Tx, request: Pick<HoldRequest, "accountId" | "requestId">, now: number): Promise<HoldResult | undefined> {
    const rows = await tx.execute<{ result: unknown }>(sql`
      select result from inventory_requests
      where event_id = ${this.eventId} and account_id = ${request.accountId} and request_id = ${request.requestId}`);
    const row = rows.rows[0];
    if (!row) return undefined;
    const stored = row.result;
    if (isStoredFailure(stored)) return refuse(stored.reason, stored.message);
    if (typeof stored === "object" && stored !== null && "holdId" in stored && typeof stored.holdId === "string") {
      const [hold] = await this.views(tx, sql`h.id = ${stored.holdId}`, now);
      if (hold) return { ok: true, hold };
    }
    throw new Error("unreadable stored request result");
  }

  /** One attempt per attempt key per interval: a conditional upsert, so two racing attempts cannot both pass. */
  private async recordAttempt(tx: Tx, attemptKey: string, now: number): Promise<boolean> {
    const rows = await tx.execute(sql`
      insert into inventory_attempts (event_id, attempt_key, last_at) values (${this.eventId}, ${attemptKey}, ${iso(now)}::timestamptz)
      on conflict (event_id, attempt_key) do update set last_at = excluded.last_at
      where inventory_attempts.last_at <= ${iso(now - ATTEMPT_INTERVAL_MS)}::timestamptz
      returning 1`);
    return rows.rows.length === 1;
  }

  private async holdSeats(tx: Tx, event: SaleSettings, request: HoldSeatsRequest, now: number): Promise<HoldResult> {
    const seats = [...new Set(request.seatIndexes)];
    if (seats.length === 0 || !seats.every(isSeatIndex)) return refuse("invalid_seat");
    const found = await tx.execute<{ n: number }>(sql`
      select count(*)::int as n from event_seats where event_id = ${this.eventId} and seat_index = any(${sql.param(seats)}::int[])`);
    if (found.rows[0]?.n !== seats.length) return refuse("invalid_seat");
    if ((await this.placesUsed(tx, request.accountId, now)) + seats.length > event.purchaseLimit) return refuse("over_limit");
    const hold = await this.takeSeats(tx, event, request, seats, now);
    return hold ? { ok: true, hold } : refuse("seat_taken");
  }

  private async holdBest(tx: Tx, event: SaleSettings, request: HoldBestRequest, now: number): Promise<HoldResult> {
    const { quantity } = request;
    if (!Number.isInteger(quantity) || quantity < 1) return refuse("invalid_seat", "Ask for at least one place.");
    if ((await this.placesUsed(tx, request.accountId, now)) + quantity > event.purchaseLimit) return refuse("over_limit");
    const filter: SeatFilter = { priceTier: request.priceTier, sectionId: request.sectionId };
    const gaSections = await this.gaSectionsInScope(tx, event, filter);
    for (let search = 1; ; search++) {
      const seatMap = await this.seatMap(tx, event, filter, now);
      if (!seatMap && gaSections.length === 0) return refuse("invalid_seat", "No section or price tier matches that request.");
      let best = seatMap?.findBest(quantity, filter, request.allowSplit);
      let lost = 0;
      while (seatMap && best?.found) {
        // Seats another transaction is taking right now are skipped, not waited for: that hold will most likely win them.
        const hold = await this.takeSeats(tx, event, request, best.seats, now, { skipLocked: true });
        if (hold) return { ok: true, hold };
        if (++lost >= BLOCKS_PER_SEARCH) break;
        for (const seat of best.seats) seatMap.setFree(seat, false); // someone else's now: try the next best block of this map
        best = seatMap.findBest(quantity, filter, request.allowSplit);
      }
      if (lost > 0) {
        // Other holds won what this map offered, so it is stale: load it again before answering.
        if (search < BEST_AVAILABLE_SEARCHES) continue;
        return refuse("seat_taken");
      }
      if (gaSections.length > 0) return this.holdGeneralAdmission(tx, event, request, gaSections, quantity, now);
      return best && !best.found && best.freeInScope >= quantity
        ? refuse("sold_out", `No ${quantity} adjacent seats are left there; allow split seats to get them apart.`)
        : refuse("sold_out");
    }
  }

  /**
   * Creates a hold on `seats` in a savepoint: locks the seats that are still
   * free, and only when that is all of them writes the hold row, takes the
   * seats and writes its items. Undefined (and nothing written, no lock kept)
   * when any seat is no longer free, so a lost race costs one statement.
   */
  private async takeSeats(tx: Tx, event: SaleSettings, request: HoldRequest, seats: number[], now: number, options: { skipLocked?: boolean } = {}): Promise<HoldView | undefined> {
    try {
      return await tx.transaction(async (savepoint) => {
        const seatList = sql.param(seats);
        // Locks the free seats in index order (so racing holds cannot deadlock); a seat another transaction has locked is waited for, or with skipLocked, counted as taken.
        const taken = await savepoint.execute<{ seat_index: number; previous_hold: string | null }>(sql`
          select candidate.seat_index, candidate.hold_id as previous_hold from event_seats candidate
          where candidate.event_id = ${this.eventId} and candidate.seat_index = any(${seatList}::int[]) and ${seatIsFree("candidate", now)}
          order by seat_index
          for update ${options.skipLocked ? sql`skip locked` : sql``}`);
        if (taken.rows.length !== seats.length) throw new Refusal(refuse("seat_taken"));
        const holdId = await this.insertHold(savepoint, event, request, now);
        // Every seat is locked by this transaction and was free when locked.
        await savepoint.execute(sql`
          update event_seats es
          set status = 'held', hold_id = ${holdId}, held_until = (select expires_at from holds where id = ${holdId}), version = es.version + 1
          where es.event_id = ${this.eventId} and es.seat_index = any(${seatList}::int[])`);
        const items = await savepoint.execute(sql`
          insert into hold_items (hold_id, event_id, seat_index, section_id, quantity, price_cents)
          select ${holdId}, ${this.eventId}, st.seat_index, st.section_id, 1, p.price_cents
          from seats st join event_price_tiers p on p.event_id = ${this.eventId} and p.price_tier = st.price_tier
          where st.venue_id = ${event.venueId} and st.seat_index = any(${seatList}::int[])
          returning 1`);
        if (items.rows.length !== seats.length) throw new Error(`a seat of event ${this.eventId} has no price`);
        const lapsed = taken.rows.flatMap((row) => (row.previous_hold === null ? [] : [row.previous_hold]));
        if (lapsed.length > 0) await this.markLapsedHolds(savepoint, lapsed, now);
        return this.view(savepoint, holdId, now);
      });
    } catch (error) {
      if (error instanceof Refusal) return undefined;
      throw error;
    }
  }

  /**
   * Records as expired the holds whose seats were just taken after their
   * time ran out (bookkeeping only: their status already reads as expired).
   * Skips holds another transaction is working on, so it never waits.
   */
  private async markLapsedHolds(tx: Tx, holdIds: string[], now: number): Promise<void> {
    await tx.execute(sql`
      update holds set status = 'expired', updated_at = ${iso(now)}::timestamptz
      where id in (
        select id from holds
        where id = any(${sql.param([...new Set(holdIds)])}::uuid[]) and status = 'live' and expires_at <= ${iso(now)}::timestamptz
        for update skip locked)`);
  }

  /**
   * Holds `quantity` places in the first general-admission section in scope
   * with room. The counters are locked first; the room is counted in a later
   * statement so it sees every hold committed while we waited for the lock.
   */
  private async holdGeneralAdmission(tx: Tx, event: SaleSettings, request: HoldRequest, sectionIds: string[], quantity: number, now: number): Promise<HoldResult> {
    await this.lockGaCounters(tx, sectionIds);
    const rooms = await this.gaRoom(tx, sectionIds, now);
    const section = rooms.find((r) => r.room >= quantity);
    if (!section) return refuse("sold_out");
    const holdId = await this.insertHold(tx, event, request, now);
    await this.insertGaItems(tx, holdId, [{ sectionId: section.sectionId, quantity }]);
    return { ok: true, hold: await this.view(tx, holdId, now) };
  }

  private async lockGaCounters(tx: Tx, sectionIds: string[]): Promise<void> {
    await tx.execute(sql`
      select g.section_id from event_ga_sections g join sections s on s.id = g.section_id
      where g.event_id = ${this.eventId} and g.section_id = any(${sql.param(sectionIds)}::uuid[])
      order by s.sort_order, g.section_id
      for update of g`);
  }

  /** Places left per general-admission section, in chart order, not counting `excludeHoldId`'s own places. */
  private async gaRoom(tx: Executor, sectionIds: string[], now: number, excludeHoldId?: string): Promise<{ sectionId: string; room: number }[]> {
    const rows = await tx.execute<{ section_id: string; room: number }>(sql`
      select g.section_id, (g.capacity - g.sold - coalesce(live.places, 0))::int as room
      from event_ga_sections g
      join sections s on s.id = g.section_id
      left join lateral (
        select sum(hi.quantity) as places
        from hold_items hi join holds h on h.id = hi.hold_id
        where hi.event_id = g.event_id and hi.section_id = g.section_id and hi.seat_index is null
          and h.status = 'live' and h.expires_at > ${iso(now)}::timestamptz
          and h.id is distinct from ${excludeHoldId ?? null}::uuid
      ) live on true
      where g.event_id = ${this.eventId} and g.section_id = any(${sql.param(sectionIds)}::uuid[])
      order by s.sort_order, g.section_id`);
    return rows.rows.map((r) => ({ sectionId: r.section_id, room: r.room }));
  }

  private async insertHold(tx: Tx, event: SaleSettings, request: HoldRequest, now: number): Promise<string> {
    const holdId = uuidv7(); // time-ordered, as in the Durable Object: the index on holds grows at its end
    const expiresAt = holdExpiry(now, event.holdTtlMs, HOLD_JITTER_MS, this.timeScale);
    await tx.execute(sql`
      insert into holds (id, event_id, account_id, status, client_request_id, expires_at, created_at, updated_at)
      values (${holdId}, ${this.eventId}, ${request.accountId}, 'live', ${request.requestId},
              ${iso(expiresAt)}::timestamptz, ${iso(now)}::timestamptz, ${iso(now)}::timestamptz)`);
    return holdId;
  }

  private async insertGaItems(tx: Tx, holdId: string, items: GaItem[]): Promise<void> {
    const inserted = await tx.execute(sql`
      insert into hold_items (hold_id, event_id, seat_index, section_id, quantity, price_cents)
      select ${holdId}, ${this.eventId}, null, s.id, i.quantity, p.price_cents
      from jsonb_to_recordset(${JSON.stringify(items)}::jsonb) as i("sectionId" uuid, quantity int)
      join sections s on s.id = i."sectionId"
      join event_price_tiers p on p.event_id = ${this.eventId} and p.price_tier = s.price_tier
      returning 1`);
    if (inserted.rows.length !== items.length) throw new Error(`a general-admission section of event ${this.eventId} has no price`);
  }

  /** Places of the account's live (unexpired) and confirmed holds at this event. */
  private async placesUsed(tx: Tx, accountId: string, now: number): Promise<number> {
    const rows = await tx.execute<{ used: number }>(sql`
      select coalesce(sum(hi.quantity), 0)::int as used
      from holds h join hold_items hi on hi.hold_id = h.id
      where h.event_id = ${this.eventId} and h.account_id = ${accountId}
        and (h.status = 'confirmed' or (h.status = 'live' and h.expires_at > ${iso(now)}::timestamptz))`);
    return rows.rows[0]?.used ?? 0;
  }

  /**
   * The event's seat map with each seat's free state now; undefined when no
   * seat matches the filter. The chart comes from this isolate's cache (an
   * event's seats never change once it exists); only the taken seats are
   * read per call.
   */
  private async seatMap(tx: Tx, event: SaleSettings, filter: SeatFilter, now: number): Promise<SeatMap | undefined> {
    const chart = charts.get(this.eventId) ?? (await this.loadChart(tx, event));
    const rows = await tx.execute<{ taken: number[] }>(sql`
      select coalesce(array_agg(es.seat_index), '{}')::int[] as taken
      from event_seats es where es.event_id = ${this.eventId} and not ${seatIsFree("es", now)}`);
    const taken = new Uint8Array(chart.seatCount);
    for (const seat of rows.rows[0]?.taken ?? []) taken[seat] = 1;
    const seatMap = new SeatMap(chart, chart.seatCount, (seat) => taken[seat] !== 1);
    return seatMap.hasScope(filter) ? seatMap : undefined;
  }

  /** Reads the event's chart and caches it (the value, never a promise: workerd ties a promise to the request that made it). */
  private async loadChart(tx: Tx, event: SaleSettings): Promise<SeatChart> {
    const rows = await tx.execute<{ i: number; s: string; r: string; p: number; b: number; t: string }>(sql`
      select st.seat_index as i, st.section_id as s, st.row_id as r, st.position as p, st.best_rank as b, st.price_tier as t
      from seats st join event_seats es on es.event_id = ${this.eventId} and es.seat_index = st.seat_index
      where st.venue_id = ${event.venueId}`);
    let seatCount = 0;
    const layout: SeatLayout[] = rows.rows.map((row) => {
      seatCount = Math.max(seatCount, row.i + 1);
      return { seatIndex: row.i, sectionId: row.s, rowId: row.r, position: row.p, bestRank: row.b, priceTier: row.t };
    });
    const chart = new SeatChart(layout, seatCount);
    charts.set(this.eventId, chart);
    return chart;
  }

  /** General-admission sections matching a best-available filter, in chart order. */
  private async gaSectionsInScope(tx: Tx, event: SaleSettings, filter: SeatFilter): Promise<string[]> {
    const conditions = [sql`s.venue_id = ${event.venueId}`, sql`s.kind = 'general_admission'`];
    if (filter.priceTier !== undefined) conditions.push(sql`s.price_tier = ${filter.priceTier}`);
    if (filter.sectionId !== undefined) conditions.push(sql`s.id::text = ${filter.sectionId}`);
    const rows = await tx.execute<{ id: string }>(sql`
      select s.id from sections s join event_ga_sections g on g.event_id = ${this.eventId} and g.section_id = s.id
      where ${sql.join(conditions, sql` and `)}
      order by s.sort_order, s.id`);
    return rows.rows.map((r) => r.id);
  }

  private async saleSettings(tx: Tx): Promise<SaleSettings | undefined> {
    const rows = await tx.execute<{ status: SaleSettings["status"]; venue_id: string; starts: number; ends: number; ttl: number; purchase_limit: number }>(sql`
      select status, venue_id, ${epochMs(sql`sale_starts_at`)} as starts, ${epochMs(sql`coalesce(sale_ends_at, ends_at, starts_at)`)} as ends,
             hold_ttl_seconds as ttl, purchase_limit
      from events where id = ${this.eventId}`);
    const row = rows.rows[0];
    if (!row) return undefined;
    return { status: row.status, venueId: row.venue_id, saleStartsAt: row.starts, saleEndsAt: row.ends, holdTtlMs: row.ttl * 1000, purchaseLimit: row.purchase_limit };
  }

  // ---------------------------------------------------------------- release and confirm

  /** Releases a live hold (its owner only). Releasing a released or expired hold returns it. */
  async release(request: ReleaseRequest): Promise<HoldChangeResult> {
    return this.changeHold(request.holdId, request.accountId, async (tx, hold, now) => {
      if (hold.status === "confirmed") return refuse("hold_confirmed");
      if (hold.status === "live" && !hold.lapsed) {
        await tx.execute(sql`
          update event_seats set status = 'available', hold_id = null, held_until = null, version = version + 1
          where event_id = ${this.eventId} and hold_id = ${hold.id} and status = 'held'`);
        await this.setHoldStatus(tx, hold.id, "released", now);
      } else if (hold.status === "live") {
        await this.setHoldStatus(tx, hold.id, "expired", now);
      }
      return undefined;
    });
  }

  /**
   * Marks a hold's places sold. A lapsed (expired or released) hold is
   * confirmed only with `allowLapsed`, only if every one of its places is
   * still free, and only if the account stays within the purchase limit (a
   * lapsed hold stopped counting towards it); confirming a confirmed hold
   * returns it. A late confirm refused is refused again under its request id
   * (`inventory_requests`), whatever frees up later.
   */
  async confirm(request: ConfirmRequest): Promise<HoldChangeResult> {
    return this.changeHold(request.holdId, undefined, async (tx, hold, now) => {
      if (hold.status === "refunded") return refuse("hold_expired", "That hold was refunded; its places went back on sale.");
      if (hold.status === "confirmed") return undefined;
      const lapsed = hold.status !== "live" || hold.lapsed;
      if (!lapsed) {
        await this.sellPlaces(tx, hold.id, now);
        await this.setHoldStatus(tx, hold.id, "confirmed", now);
        return undefined;
      }
      if (!request.allowLapsed) return refuse("hold_expired");
      await this.lockAccount(tx, hold.account_id);
      // A late confirm refused once is refused again under its request id (kept while the hold's lock is held), even once
      // the places are free: the payment's refund may be under way on that answer (workers/checkout/payments.ts).
      const requestId = `confirm:${request.requestId}`;
      const prior = await this.priorResult(tx, { accountId: hold.account_id, requestId }, now);
      if (prior) return prior.ok ? undefined : prior;
      try {
        await tx.transaction(async (savepoint) => {
          const places = await this.sellPlaces(savepoint, hold.id, now);
          // A lapsed hold no longer counts towards the limit: the account may have held other places since.
          if ((await this.placesUsed(savepoint, hold.account_id, now)) + places > ((await this.saleSettings(savepoint))?.purchaseLimit ?? 0)) {
            throw new Refusal(refuse("over_limit"));
          }
          await this.setHoldStatus(savepoint, hold.id, "confirmed", now);
        });
      } catch (error) {
        if (!(error instanceof Refusal)) throw error;
        await tx.execute(sql`
          insert into inventory_requests (event_id, account_id, request_id, result, created_at)
          values (${this.eventId}, ${hold.account_id}, ${requestId}, ${JSON.stringify(error.result)}::jsonb, ${iso(now)}::timestamptz)`);
        return error.result;
      }
      return undefined;
    });
  }

  /**
   * Returns a confirmed hold's places to the pool (refund or cancellation):
   * the hold becomes `refunded`, its seats available and its
   * general-admission places back in their counters. A refunded hold no
   * longer counts towards the purchase limit. Unselling a refunded hold
   * returns it unchanged.
   */
  async unsell(request: UnsellRequest): Promise<HoldChangeResult> {
    return this.changeHold(request.holdId, undefined, async (tx, hold, now) => {
      if (hold.status !== "confirmed" && hold.status !== "refunded") return refuse("not_sold");
      if (hold.status === "confirmed") {
        await tx.execute(sql`
          update event_seats set status = 'available', hold_id = null, held_until = null, version = version + 1
          where event_id = ${this.eventId} and hold_id = ${hold.id} and status = 'sold'`);
        const ga = await tx.execute<{ section_id: string; quantity: number }>(sql`
          select section_id, sum(quantity)::int as quantity from hold_items where hold_id = ${hold.id} and seat_index is null group by section_id`);
        if (ga.rows.length > 0) {
          await this.lockGaCounters(tx, ga.rows.map((g) => g.section_id));
          const items = JSON.stringify(ga.rows.map((g) => ({ sectionId: g.section_id, quantity: g.quantity })));
          await tx.execute(sql`
            update event_ga_sections g set sold = g.sold - i.quantity, version = g.version + 1
            from jsonb_to_recordset(${items}::jsonb) as i("sectionId" uuid, quantity int)
            where g.event_id = ${this.eventId} and g.section_id = i."sectionId"`);
        }
        await this.setHoldStatus(tx, hold.id, "refunded", now);
      }
      return undefined;
    });
  }

  /**
   * Sells a hold's seats (still held by it, or free) and general-admission
   * places (if the section still has room for them); returns how many places.
   * Throws a refusal, which rolls the transaction back, when anything was
   * taken by someone else.
   */
  private async sellPlaces(tx: Tx, holdId: string, now: number): Promise<number> {
    const items = await tx.execute<{ seat_index: number | null; section_id: string; quantity: number }>(sql`
      select seat_index, section_id, quantity from hold_items where hold_id = ${holdId}`);
    const seats = items.rows.flatMap((i) => (i.seat_index === null ? [] : [i.seat_index]));
    const ga = items.rows.flatMap((i) => (i.seat_index === null ? [{ sectionId: i.section_id, quantity: i.quantity }] : []));
    const taken = refuse("hold_expired", "That hold lapsed and its places were taken by someone else.");
    if (seats.length > 0) {
      const sold = await tx.execute(sql`
        update event_seats es
        set status = 'sold', hold_id = ${holdId}, held_until = null, version = es.version + 1
        from (
          select candidate.seat_index from event_seats candidate
          where candidate.event_id = ${this.eventId} and candidate.seat_index = any(${sql.param(seats)}::int[])
            and ((candidate.status = 'held' and candidate.hold_id = ${holdId}) or ${seatIsFree("candidate", now)})
          order by candidate.seat_index
          for update
        ) mine
        where es.event_id = ${this.eventId} and es.seat_index = mine.seat_index
        returning es.seat_index`);
      if (sold.rows.length !== seats.length) throw new Refusal(taken);
    }
    if (ga.length > 0) {
      const sectionIds = ga.map((g) => g.sectionId);
      await this.lockGaCounters(tx, sectionIds);
      const rooms = await this.gaRoom(tx, sectionIds, now, holdId);
      if (ga.some((g) => (rooms.find((r) => r.sectionId === g.sectionId)?.room ?? 0) < g.quantity)) throw new Refusal(taken);
      await tx.execute(sql`
        update event_ga_sections g set sold = g.sold + i.quantity, version = g.version + 1
        from jsonb_to_recordset(${JSON.stringify(ga)}::jsonb) as i("sectionId" uuid, quantity int)
        where g.event_id = ${this.eventId} and g.section_id = i."sectionId"`);
    }
    return items.rows.reduce((sum, item) => sum + item.quantity, 0);
  }

  /**
   * Changes one hold of this event in a transaction, with the hold locked,
   * and answers with the hold as it is afterwards. `hold_not_found` when
   * there is no such hold (or, given `ownerId`, it is someone else's).
   * `change` returns a refusal to answer with instead, or throws one to roll
   * back what it did.
   */
  private async changeHold(
    holdId: string,
    ownerId: string | undefined,
    change: (tx: Tx, hold: LockedHold, now: number) => Promise<ReturnType<typeof refuse> | undefined>,
  ): Promise<HoldChangeResult> {
    if (!UUID.test(holdId) || !UUID.test(this.eventId)) return refuse("hold_not_found");
    const now = this.clock();
    return this.transact(async (tx) => {
      const hold = await this.lockHold(tx, holdId, now);
      if (!hold || (ownerId !== undefined && hold.account_id !== ownerId)) return refuse("hold_not_found");
      const refusal = await change(tx, hold, now);
      return refusal ?? { ok: true, hold: await this.view(tx, hold.id, now) };
    });
  }

  /** Reads and locks a hold of this event (the lock orders release and confirm of the same hold). */
  private async lockHold(tx: Tx, holdId: string, now: number): Promise<LockedHold | undefined> {
    const rows = await tx.execute<LockedHold>(sql`
      select id, account_id, status, expires_at <= ${iso(now)}::timestamptz as lapsed
      from holds where id = ${holdId} and event_id = ${this.eventId}
      for update`);
    return rows.rows[0];
  }

  private async setHoldStatus(tx: Tx, holdId: string, status: HoldView["status"], now: number): Promise<void> {
    await tx.execute(sql`update holds set status = ${status}, updated_at = ${iso(now)}::timestamptz where id = ${holdId}`);
  }

  // ---------------------------------------------------------------- reads

  /** One hold, optionally only if it belongs to `accountId`. */
  async getHold(holdId: string, accountId?: string): Promise<HoldView | null> {
    if (!UUID.test(holdId) || !UUID.test(this.eventId)) return null;
    const [hold] = await this.views(this.db, sql`h.id = ${holdId}`, this.clock());
    if (!hold || (accountId !== undefined && hold.accountId !== accountId)) return null;
    return hold;
  }

  /** An account's holds at this event, newest first. */
  async accountHolds(accountId: string): Promise<HoldView[]> {
    if (!UUID.test(accountId) || !UUID.test(this.eventId)) return [];
    return this.views(this.db, sql`h.account_id = ${accountId}`, this.clock());
  }

  /** Per-section counts and the seat bitmap, read from one snapshot. */
  async availability(): Promise<Availability> {
    const now = this.clock();
    return this.db.transaction(
      async (tx) => {
        const sections = await tx.execute<{
          id: string;
          label: string;
          kind: "seated" | "general_admission";
          price_tier: string | null;
          capacity: number;
          available: number;
        }>(sql`
          with seat_counts as (
            select st.section_id, count(*)::int as capacity, (count(*) filter (where ${seatIsFree("es", now)}))::int as available
            from events e
            join seats st on st.venue_id = e.venue_id
            join event_seats es on es.event_id = e.id and es.seat_index = st.seat_index
            where e.id = ${this.eventId}
            group by st.section_id
          ), ga_held as (
            select hi.section_id, sum(hi.quantity)::int as places
            from hold_items hi join holds h on h.id = hi.hold_id
            where hi.event_id = ${this.eventId} and hi.seat_index is null and h.status = 'live' and h.expires_at > ${iso(now)}::timestamptz
            group by hi.section_id
          )
          select s.id, s.label, s.kind, s.price_tier,
                 case when s.kind = 'seated' then coalesce(c.capacity, 0) else coalesce(g.capacity, 0) end as capacity,
                 case when s.kind = 'seated' then coalesce(c.available, 0)
                      else greatest(coalesce(g.capacity - g.sold - coalesce(held.places, 0), 0), 0) end as available
          from events e
          join sections s on s.venue_id = e.venue_id
          left join seat_counts c on c.section_id = s.id
          left join event_ga_sections g on g.event_id = e.id and g.section_id = s.id
          left join ga_held held on held.section_id = s.id
          where e.id = ${this.eventId}
          order by s.sort_order, s.id`);
        const seats = await tx.execute<{ seat_count: number; free: number[] }>(sql`
          select coalesce(max(seat_index) + 1, 0)::int as seat_count,
                 coalesce(array_agg(seat_index) filter (where ${seatIsFree("es", now)}), '{}')::int[] as free
          from event_seats es where event_id = ${this.eventId}`);
        if (sections.rows.length === 0) throw new Error(`event ${this.eventId} does not exist`);
        const seatCount = seats.rows[0]?.seat_count ?? 0;
        const bitmap = new Uint8Array(Math.ceil(seatCount / 8));
        for (const seat of seats.rows[0]?.free ?? []) setBit(bitmap, seat);
        return {
          eventId: this.eventId,
          seatCount,
          generatedAt: now,
          sections: sections.rows.map((s) => ({ sectionId: s.id, label: s.label, kind: s.kind, priceTier: s.price_tier, capacity: s.capacity, available: s.available })),
          bitmap,
        };
      },
      { isolationLevel: "repeatable read", accessMode: "read only" },
    );
  }

  /** Every free place is open to every fan: a calm event has no line to promise places to and keeps none for the waitlist. */
  async openTo(): Promise<OpenPlaces> {
    const availability = await this.availability();
    return { availability, forAccount: availability.sections.reduce((sum, section) => sum + section.available, 0) };
  }

  /** A hold that must exist (it was just written in this transaction). */
  private async view(tx: Executor, holdId: string, now: number): Promise<HoldView> {
    const [hold] = await this.views(tx, sql`h.id = ${holdId}`, now);
    if (!hold) throw new Error(`hold ${holdId} vanished`);
    return hold;
  }

  /** Holds of this event matching `where`, newest first, as the contract shows them. */
  private async views(tx: Executor, where: SQL, now: number): Promise<HoldView[]> {
    const rows = await tx.execute<{
      id: string;
      account_id: string;
      status: HoldView["status"];
      expires_at: number;
      created_at: number;
      seats: SeatRef[];
      ga: GaRef[];
      total: number;
    }>(sql`
      select h.id, h.account_id,
             case when h.status = 'live' and h.expires_at <= ${iso(now)}::timestamptz then 'expired' else h.status end as status,
             ${epochMs(sql`h.expires_at`)} as expires_at, ${epochMs(sql`h.created_at`)} as created_at,
             coalesce(jsonb_agg(jsonb_build_object(
               'seatIndex', hi.seat_index, 'section', s.label, 'row', r.label, 'seat', st.label,
               'priceTier', st.price_tier, 'priceCents', hi.price_cents) order by hi.seat_index) filter (where hi.seat_index is not null), '[]') as seats,
             coalesce(jsonb_agg(jsonb_build_object(
               'sectionId', hi.section_id, 'section', s.label, 'quantity', hi.quantity,
               'priceTier', coalesce(s.price_tier, ''), 'priceCents', hi.price_cents) order by s.sort_order) filter (where hi.seat_index is null), '[]') as ga,
             coalesce(sum(hi.price_cents * hi.quantity), 0)::int as total
      from holds h
      join events e on e.id = h.event_id
      left join hold_items hi on hi.hold_id = h.id
      left join sections s on s.id = hi.section_id
      left join seats st on st.venue_id = e.venue_id and st.seat_index = hi.seat_index
      left join seat_rows r on r.id = st.row_id
      where h.event_id = ${this.eventId} and ${where}
      group by h.id
      order by h.created_at desc, h.id
      limit ${ACCOUNT_HOLDS_LIMIT}`);
    return rows.rows.map((row) => ({
      holdId: row.id,
      eventId: this.eventId,
      accountId: row.account_id,
      status: row.status,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      seats: row.seats,
      generalAdmission: row.ga,
      totalCents: row.total,
    }));
  }

  // ---------------------------------------------------------------- transactions

  /**
   * Runs `work` in a transaction. A `Refusal` rolls it back and becomes the
   * answer; a deadlock or serialization failure reruns it from the start
   * (nothing of a failed run survives).
   */
  private async transact(work: (tx: Tx) => Promise<HoldResult>): Promise<HoldResult> {
    for (let run = 1; ; run++) {
      try {
        return await this.db.transaction(work);
      } catch (error) {
        if (error instanceof Refusal) return error.result;
        if (run >= TRANSACTION_RUNS || !isRetryable(error)) throw error;
      }
    }
  }
}

/** SQL: the event seat `alias` (a row of `event_seats`) is free at `now`: available, or held by a hold whose time is up. */
function seatIsFree(alias: string, now: number): SQL {
  const seat = sql.identifier(alias);
  return sql`(${seat}.status = 'available' or (${seat}.status = 'held' and ${seat}.held_until <= ${iso(now)}::timestamptz))`;
}

/** SQL: a timestamptz as epoch milliseconds (a JS number). */
function epochMs(column: SQL): SQL {
  return sql`(extract(epoch from ${column}) * 1000)::float8`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isSeatIndex(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0x7fffffff;
}

function isStoredFailure(value: unknown): value is { ok: false; reason: InventoryFailure; message: string } {
  return (
    typeof value === "object" &&
    value !== null &&
    "ok" in value &&
    value.ok === false &&
    "reason" in value &&
    typeof value.reason === "string" &&
    value.reason in FAILURE_MESSAGES &&
    "message" in value &&
    typeof value.message === "string"
  );
}

/** Postgres aborted the transaction to break a deadlock or a serialization conflict: safe to run again. */
function isRetryable(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    if ("code" in cause && (cause.code === "40P01" || cause.code === "40001")) return true;
  }
  return false;
}
