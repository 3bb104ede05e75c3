/**
 * The outbox of returned places (table `returns`): every hold that ends
 * (released, expired) or is refunded leaves a row here, in the same
 * transaction, for the waitlist to offer. The waitlist's pass drains it after
 * making its offers; until then, or for WAITLIST_FIRST_MS at most, the places
 * are kept out of the waiting room's grants, but only while the waitlist has
 * fans waiting (table `waitlist_watch`: a join, or a pass that left fans
 * waiting, says so for WAITLIST_FIRST_MS; kept in memory too, as every hold
 * asks). With nobody waiting, a returned place is the line's at once: during
 * a hot sale's first hours the waitlist is empty, and every abandoned hold
 * would otherwise leave its places idle.
 * Nothing here falls due on its own, so the outbox needs no alarm.
 */
import type { Sql } from "../lib/sql";

/**
 * A place that comes back is the waitlist's until the waitlist's pass has
 * offered it (and drained it from the outbox), or for this long at most:
 * longer than the cron's minute between passes plus a pass, so a waitlist
 * with fans on it gets its turn, and short enough that a place nobody takes
 * soon goes to the queue. Also how long a join's or a pass's word that fans
 * are waiting lasts: the pass renews it every minute while they wait.
 */
export const WAITLIST_FIRST_MS = 90 * 1000;

/** Why places came back. */
export type ReturnReason = "released" | "expired" | "refunded";

/** One hold's places back in the pool. */
export interface ReturnedPlaces {
  holdId: string;
  places: number;
  reason: string;
  at: number;
}

/** Where the outbox stood when a waitlist pass began, before its offers. */
export interface WaitlistPassMark {
  /** The newest return's id then (0: none yet): the pass drains those up to it, no later ones. */
  returnsThrough: number;
  /** How many times fans were said to wait by then: a pass's word that nobody waits counts only if none has since. */
  watch: number;
}

/** The waitlist's word (`waitlist_watch`). */
interface WaitlistWatch {
  /** Until when fans wait (0: nobody). */
  waitingUntil: number;
  /** How many times fans were said to wait (a join, or a pass that left fans waiting). */
  watch: number;
}

/** The outbox of places returned to the pool. */
export class ReturnsOutbox {
  /** WAITLIST_FIRST_MS on the rehearsal clock (core/time-scale.ts). */
  private readonly turnMs: number;
  /**
   * The waitlist's word, kept in memory: every hold asks, so the hot path reads
   * no row for it. Undefined: not read since the object started or forgot.
   */
  private memory: WaitlistWatch | undefined;

  constructor(
    private readonly sql: Sql,
    timeScale = 1,
  ) {
    this.turnMs = WAITLIST_FIRST_MS * timeScale;
  }

  /** Drops the memory; the next call reads it again from SQLite. */
  forget(): void {
    this.memory = undefined;
  }

  /** Records a hold's places as returned (inside the transaction that returned them). */
  record(holdId: string, places: number, reason: ReturnReason, at: number): void {
    this.sql`INSERT INTO returns (hold_id, places, reason, at) VALUES (${holdId}, ${places}, ${reason}, ${at})`;
  }

  /**
   * Places returned within WAITLIST_FIRST_MS that the waitlist has not
   * drained yet (some may be held again since), while it has fans waiting;
   * 0 when nobody waits.
   */
  recentlyReturned(now: number): number {
    if (!this.waitlistWaiting(now)) return 0;
    return this.sql<{ n: number }>`SELECT coalesce(sum(places), 0) AS n FROM returns WHERE at > ${now - this.turnMs}`.one().n;
  }

  /** Whether the waitlist had fans waiting when a join or a pass last said so, within WAITLIST_FIRST_MS. */
  waitlistWaiting(now: number): boolean {
    return this.watched().waitingUntil > now;
  }

  /** How many times fans were said to wait so far (a pass reads it before its query of the waitlist). */
  watch(): number {
    return this.watched().watch;
  }

  /**
   * A fan joined the waitlist (true), or its pass is over and says whether
   * fans still wait. A pass's false is ignored when fans were said to wait
   * after `seenWatch` (the pass's mark, read before it queried the waitlist):
   * a join its query may have missed. Returns whether the word was taken.
   */
  noteWaitlist(waiting: boolean, now: number, seenWatch?: number): boolean {
    const current = this.watched();
    if (!waiting && seenWatch !== undefined && seenWatch !== current.watch) return false;
    const next = { waitingUntil: waiting ? now + this.turnMs : 0, watch: waiting ? current.watch + 1 : current.watch };
    this.sql`INSERT INTO waitlist_watch (id, waiting_until, watch) VALUES (1, ${next.waitingUntil}, ${next.watch})
      ON CONFLICT (id) DO UPDATE SET waiting_until = excluded.waiting_until, watch = excluded.watch`;
    this.memory = next;
    return true;
  }

  private watched(): WaitlistWatch {
    this.memory ??= this.sql<{ waiting_until: number; watch: number }>`SELECT waiting_until, watch FROM waitlist_watch WHERE id = 1`
      .toArray()
      .map((row) => ({ waitingUntil: row.waiting_until, watch: row.watch }))[0] ?? { waitingUntil: 0, watch: 0 };
    return this.memory;
  }

  /** The newest return's id (0: none yet); ids only grow (AUTOINCREMENT), drained or not. */
  newestId(): number {
    return this.sql<{ id: number | null }>`SELECT max(id) AS id FROM returns`.one().id ?? 0;
  }

  /** Takes the oldest `limit` returns, up to id `through`, out of the outbox. */
  take(limit: number, through: number): ReturnedPlaces[] {
    const rows = this.sql<{ id: number; hold_id: string; places: number; reason: string; at: number }>`SELECT id, hold_id, places, reason, at FROM returns WHERE id <= ${through} ORDER BY id LIMIT ${limit}`.toArray();
    const last = rows[rows.length - 1];
    if (last) this.sql`DELETE FROM returns WHERE id <= ${last.id}`;
    return rows.map((r) => ({ holdId: r.hold_id, places: r.places, reason: r.reason, at: r.at }));
  }
}
