/**
 * The seat inventory of one hot event: serializes every hold, release and
 * confirmation in SQLite, assigns best-available seats from an in-memory seat
 * map, expires holds with one alarm set to the earliest expiry, and mirrors
 * holds to Postgres so the object can be rebuilt from there.
 *
 * This file is the RPC surface and the one alarm; the work is in the parts,
 * each owning its tables:
 * - places.ts: settings, chart, prices, free seats and general-admission counters;
 * - holds.ts: holds and their seat claims (alarm: expiry);
 * - promises.ts: places promised to fans the waiting room admitted;
 * - returns.ts: the outbox of returned places, for the waitlist;
 * - postgres-mirror.ts: loading from Postgres and mirroring holds back (new holds
 *   and sales before they are answered, the rest on the alarm);
 * - schema.ts: the SQLite schema, as numbered migrations.
 */
import { DurableObject } from "cloudflare:workers";
import { refuse, type Availability, type ConfirmRequest, type HoldChangeResult, type HoldRequest, type HoldResult, type HoldView, type OpenPlaces, type ReleaseRequest, type UnsellRequest } from "../../core/holds/contract";
import { POSTGRES_UNREACHABLE } from "../../core/errors";
import { log } from "../../core/logger";
import { timeScaleOf } from "../../core/time-scale";
import { AlarmScheduler } from "../lib/alarm-scheduler";
import { migratedSql } from "../lib/schema-migrations";
import type { Sql } from "../lib/sql";
import { Holds } from "./holds";
import type { LiveCounts } from "../../core/holds/live-counts";
import { liveCounts } from "./live-counts";
import { Places } from "./places";
import { PostgresMirror } from "./postgres-mirror";
import { AdmissionPromises, type AdmissionGrant } from "./promises";
import { ReturnsOutbox, type ReturnedPlaces, type WaitlistPassMark } from "./returns";
import { INVENTORY_MIGRATIONS } from "./schema";

export { ADMISSION_PROMISE_MS, type AdmissionGrant } from "./promises";
export { WAITLIST_FIRST_MS, type WaitlistPassMark } from "./returns";

/** Outcome of one `prepare()` call. */
export interface PrepareResult {
  seatCount: number;
  available: number;
  holdsRecovered: number;
  /** Lapsed holds Postgres still showed live, marked expired by this load. */
  holdsExpired: number;
  rebuilt: boolean;
}

/** The per-event seat inventory of a hot event, addressed by event id. */
export class EventInventory extends DurableObject<Env> {
  private readonly places: Places;
  private readonly holds: Holds;
  private readonly promises: AdmissionPromises;
  private readonly returns: ReturnsOutbox;
  private readonly mirror: PostgresMirror;
  private readonly scheduler: AlarmScheduler;
  private preparing: Promise<PrepareResult> | undefined;
  private readonly sql: Sql;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = migratedSql(ctx, INVENTORY_MIGRATIONS);
    this.sql = sql;
    const transaction = <T>(fn: () => T): T => ctx.storage.transactionSync(fn);
    this.places = new Places(sql, () => this.holds.claimedSeats());
    const timeScale = timeScaleOf(env);
    this.promises = new AdmissionPromises(sql, timeScale);
    this.returns = new ReturnsOutbox(sql, timeScale);
    this.holds = new Holds({ sql, transaction, places: this.places, promises: this.promises, returns: this.returns, timeScale, changed: (now) => this.mirror.noteChange(now) });
    this.mirror = new PostgresMirror({ env, transaction, places: this.places, holds: this.holds });
    // Expiry first, so the mirror sends what it expired in the same run.
    this.scheduler = new AlarmScheduler(ctx.storage, [this.holds, this.mirror]);
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Loads the event from Postgres: the chart, prices and settings, and every
   * hold or sale Postgres knows of. On an object that is already prepared it
   * only refreshes the settings (holds in the object stay the truth).
   */
  async prepare(eventId: string): Promise<PrepareResult> {
    const loaded = await this.mirror.load(eventId);
    this.forget();
    const result = { seatCount: this.places.seatCount(), available: this.places.available(), ...loaded };
    await this.scheduler.reschedule();
    return result;
  }

  /** Prepares the object unless it already is (one load even when called concurrently). */
  async ensurePrepared(eventId: string): Promise<void> {
    if (this.places.isPrepared()) return;
    this.preparing ??= this.prepare(eventId).finally(() => (this.preparing = undefined));
    await this.preparing;
  }

  /**
   * Prepares the object before serving a fan's or the payments' request, if
   * it is not: after a loss of storage the next request rebuilds it from
   * Postgres rather than answering that nothing is on sale. The event is the
   * object's name (every caller reaches it by `getByName(eventId)`).
   */
  private async ready(): Promise<void> {
    if (this.places.isPrepared()) return;
    const eventId = this.places.storedEventId() ?? this.ctx.id.name;
    if (eventId !== undefined) await this.ensurePrepared(eventId);
  }

  /** Re-reads the event's settings from Postgres (after an organizer edit). */
  async refreshConfig(): Promise<void> {
    const eventId = this.places.storedEventId();
    if (eventId !== undefined) await this.prepare(eventId);
  }

  /** True once `prepare` has loaded the event. */
  isPrepared(): boolean {
    return this.places.isPrepared();
  }

  // ---------------------------------------------------------------- holds

  /** One hold (see `applyHolds`). */
  async hold(request: HoldRequest): Promise<HoldResult> {
    return (await this.applyHolds([request]))[0] ?? refuse("not_on_sale");
  }

  /**
   * Applies hold requests in order, each all-or-nothing in its own
   * transaction, and answers once Postgres has the new holds (so a rebuild
   * keeps them). While Postgres cannot be reached the holds are answered
   * anyway (holds keep working with Postgres down) and the alarm mirrors them
   * when it is back.
   */
  async applyHolds(requests: HoldRequest[]): Promise<HoldResult[]> {
    await this.ready();
    const results = this.changing(() => this.holds.apply(requests));
    if (results.some((result) => result.ok)) await this.mirror.sync("unless-failing");
    return results;
  }

  /** Releases a live hold (its owner only). Releasing twice returns the released hold. */
  async release(request: ReleaseRequest): Promise<HoldChangeResult> {
    await this.ready();
    return this.changing(() => this.holds.release(request));
  }

  /**
   * Marks a hold's places sold. A lapsed hold is confirmed only with
   * `allowLapsed` and only if every one of its places is still free.
   * Answers only once Postgres shows the hold confirmed, so a rebuild keeps
   * the sale while it waits in the sales queue; throws when Postgres cannot
   * be reached (the caller retries: the payment's reconciliation does, and
   * confirming again is harmless).
   */
  async confirm(request: ConfirmRequest): Promise<HoldChangeResult> {
    await this.ready();
    const result = this.changing(() => this.holds.confirm(request));
    if (result.ok && !(await this.mirror.sync("always"))) throw new Error(`${POSTGRES_UNREACHABLE}: the sale could not be recorded; confirm it again later`);
    return result;
  }

  /**
   * Returns a confirmed hold's places to the pool (refund or cancellation):
   * the hold becomes `refunded`, its seats free and its general-admission
   * places back in their counters, and the waitlist hears of it. Unselling a
   * refunded hold returns it unchanged.
   */
  async unsell(request: UnsellRequest): Promise<HoldChangeResult> {
    await this.ready();
    return this.changing(() => this.holds.unsell(request));
  }

  /** One hold, optionally only if it belongs to `accountId`. */
  async getHold(holdId: string, accountId?: string): Promise<HoldView | null> {
    await this.ready();
    const view = this.changing(() => {
      this.releaseDue();
      return this.holds.view(holdId);
    });
    if (!view || (accountId !== undefined && view.accountId !== accountId)) return null;
    return view;
  }

  /** An account's holds, newest first. */
  async accountHolds(accountId: string): Promise<HoldView[]> {
    await this.ready();
    return this.changing(() => {
      this.releaseDue();
      return this.holds.ofAccount(accountId);
    });
  }

  /** Per-section counts and the seat bitmap. */
  async availability(): Promise<Availability> {
    await this.ready();
    if (!this.places.isPrepared()) throw new Error("inventory not prepared");
    return this.changing(() => {
      this.releaseDue();
      return this.places.availability();
    });
  }

  /** Places held and sold per section, and places returned after a sale (the organizer's live view; a read, O(holds)). */
  liveCounts(): LiveCounts {
    if (!this.places.isPrepared()) throw new Error("inventory not prepared");
    return this.changing(() => {
      this.releaseDue();
      return liveCounts(this.sql);
    });
  }

  // ---------------------------------------------------------------- waiting room and waitlist

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
  async grantAdmissions(eventId: string, accountIds: string[]): Promise<AdmissionGrant> {
    // An inventory nobody prepared grants nothing: load it rather than stall admission (nothing to do once loaded).
    await this.ensurePrepared(eventId);
    const settings = this.places.settings();
    if (!settings) return { granted: 0, available: 0, held: 0, soldOut: false };
    return this.changing(() => {
      const now = Date.now();
      const line = this.standingForLine(now);
      const need = (accountId: string) => Math.max(0, settings.purchaseLimit - this.holds.placesOf(accountId));
      const granted = this.promises.grant(accountIds, { now, available: line.available, keptForWaitlist: line.keptForWaitlist, need });
      return { granted, available: line.available, held: this.holds.heldPlaces(), soldOut: line.freeForLine <= 0 };
    });
  }

  /**
   * The places open to one account, as the waitlist asks before letting it
   * join: those free for the line (the measure behind the room's `soldOut`,
   * so 0 whenever the room says sold out) less those promised to other
   * admitted fans (a hold of theirs would be refused sold out), with the
   * availability read at the same instant. An object that lost its storage
   * is rebuilt from Postgres first.
   */
  async openTo(eventId: string, accountId: string): Promise<OpenPlaces> {
    await this.ensurePrepared(eventId);
    return this.changing(() => {
      const now = Date.now();
      const { freeForLine } = this.standingForLine(now);
      const forAccount = Math.max(0, freeForLine - this.promises.promisedToOthers(accountId, now));
      return { availability: this.places.availability(), forAccount };
    });
  }

  /**
   * Drains the record of places returned to the pool (the waitlist's hook),
   * oldest first, up to the return `through` (the mark its pass read before
   * its offers; without it, everything). The waitlist drains after its pass
   * has made its offers: from then on the room may promise what the waitlist
   * left (see `grantAdmissions`). Places that came back during the pass stay
   * for the next one.
   */
  takeReturns(limit = 100, through = Number.MAX_SAFE_INTEGER): ReturnedPlaces[] {
    return this.returns.take(limit, through);
  }

  /**
   * Where the outbox stands as a waitlist pass begins, before its offers
   * (due holds expired first, so their places are among those the pass sees).
   */
  waitlistPassMark(): WaitlistPassMark {
    return this.changing(() => {
      this.releaseDue();
      return { returnsThrough: this.returns.newestId(), watch: this.returns.watch() };
    });
  }

  /**
   * Whether the waitlist has fans waiting (the waitlist's hook: a join says
   * true; each pass, once over, says whether fans still wait, with the
   * `watch` of its mark). Returned places are kept from the line for the
   * waitlist only while it has. A pass's false is ignored when fans were said
   * to wait since its mark, read before it queried the waitlist: a join its
   * query may have missed. Returns whether the word was taken.
   */
  noteWaitlist(waiting: boolean, watch?: number): boolean {
    return this.returns.noteWaitlist(waiting, Date.now(), watch);
  }

  // ---------------------------------------------------------------- alarm

  /**
   * Expires due holds, mirrors changed holds to Postgres and forgets old
   * request results, then sets the alarm to the next thing due. Running it
   * twice, or early, changes nothing that is not due.
   */
  override async alarm(): Promise<void> {
    await this.scheduler.run(Date.now());
  }

  // ---------------------------------------------------------------- internals

  /**
   * Where the sale stands for the waiting line at `now` (due holds expired
   * first): places neither held nor sold; of those, the ones kept for the
   * waitlist's pass (returned within WAITLIST_FIRST_MS and not drained yet,
   * while the waitlist has fans waiting);
   * and the rest, free for the line (none: the room says sold out).
   */
  private standingForLine(now: number): { available: number; keptForWaitlist: number; freeForLine: number } {
    this.holds.releaseDue(now);
    const available = this.places.available();
    const keptForWaitlist = Math.min(available, this.returns.recentlyReturned(now));
    return { available, keptForWaitlist, freeForLine: available - keptForWaitlist };
  }

  private releaseDue(): void {
    if (this.places.isPrepared()) this.holds.releaseDue(Date.now());
  }

  /**
   * Runs a call that may change holds, then moves the alarm if a due time
   * changed, whether or not the call threw: a batch of holds commits each
   * hold on its own, so one that fails part-way has holds whose expiry (and
   * mirroring) the alarm must still come for. If it throws, a transaction
   * rolled back: memory is rebuilt from SQLite on the next call.
   */
  private changing<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      this.forget();
      throw error;
    } finally {
      void this.scheduler.reschedule().catch((error: unknown) => log.error("inventory_reschedule_failed", { error: String(error) }));
    }
  }

  /** Drops every part's memory; each rebuilds its own from SQLite when next used. */
  private forget(): void {
    this.places.forget();
    this.holds.forget();
    this.promises.forget();
    this.returns.forget();
  }
}
