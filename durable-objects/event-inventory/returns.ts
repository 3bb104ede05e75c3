/**
 * The outbox of returned places (table `returns`): every hold that ends
 * (released, expired) or is refunded leaves a row here, in the same
 * transaction, for the waitlist to offer. The waitlist's pass drains it after
 * making its offers; until then, or for WAITLIST_FIRST_MS at most, the places
 * are kept out of the waiting room's grants. Nothing here falls due on its
 * own, so the outbox needs no alarm.
 */
import type { Sql } from "../lib/sql";

/**
 * A place that comes back is the waitlist's until the waitlist's pass has
 * offered it (and drained it from the outbox), or for this long at most:
 * longer than the cron's minute between passes plus a pass, so a waitlist
 * with fans on it gets its turn, and short enough that a place nobody waits
 * for (an event whose waitlist is empty is never visited, so never drained)
 * soon goes to the queue.
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

/** The outbox of places returned to the pool. */
export class ReturnsOutbox {
  constructor(private readonly sql: Sql) {}

  /** Records a hold's places as returned (inside the transaction that returned them). */
  record(holdId: string, places: number, reason: ReturnReason, at: number): void {
    this.sql`INSERT INTO returns (hold_id, places, reason, at) VALUES (${holdId}, ${places}, ${reason}, ${at})`;
  }

  /** Places returned within WAITLIST_FIRST_MS that the waitlist has not drained yet (some may be held again since). */
  recentlyReturned(now: number): number {
    return this.sql<{ n: number }>`SELECT coalesce(sum(places), 0) AS n FROM returns WHERE at > ${now - WAITLIST_FIRST_MS}`.one().n;
  }

  /** Takes the oldest `limit` returns out of the outbox. */
  take(limit: number): ReturnedPlaces[] {
    const rows = this.sql<{ id: number; hold_id: string; places: number; reason: string; at: number }>`SELECT id, hold_id, places, reason, at FROM returns ORDER BY id LIMIT ${limit}`.toArray();
    const last = rows[rows.length - 1];
    if (last) this.sql`DELETE FROM returns WHERE id <= ${last.id}`;
    return rows.map((r) => ({ holdId: r.hold_id, places: r.places, reason: r.reason, at: r.at }));
  }
}
