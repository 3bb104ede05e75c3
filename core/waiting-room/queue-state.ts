/**
 * The published queue document: one small JSON per event, written by the
 * waiting room each tick and read by every waiting fan from the edge. A fan
 * places its own order key against it; nothing per fan is stored or served.
 */

/** Keys below this are the lobby block: uniformly random, so their order is a fair shuffle. */
export const LOBBY_BLOCK_SIZE = 2 ** 51;
/** Arrivals after the sale starts: this plus their arrival number. */
export const LATE_BLOCK_START = 2 ** 51;
/** Accounts flagged as likely bots (policy "deprioritize"): behind everyone. */
export const FLAGGED_BLOCK_START = 2 ** 52;

/** The published state of one event's queue. */
export interface QueueState {
  eventId: string;
  /** Fans with order key <= threshold are admitted (-1: nobody yet). */
  threshold: number;
  admitted: number;
  entrants: { lobby: number; late: number; flagged: number };
  /** Lobby keys at evenly spaced ranks (the key distribution). */
  quantiles: number[];
  ratePerSecond: number;
  paused: boolean;
  /**
   * No place is free for the line right now (every place sold or held, or
   * places that came back are kept for the waitlist's pass). Not final: the
   * room re-checks and admits again when places come back, until the sale
   * ends (`updatedAt >= saleEndsAt`).
   */
  soldOut: boolean;
  /** Places neither held nor sold, as of the last tick (-1: unknown yet). */
  available: number;
  held: number;
  saleStartsAt: number;
  saleEndsAt: number;
  updatedAt: number;
}

/** The KV key of an event's queue document. */
export function queueStateKey(eventId: string): string {
  return `queue:${eventId}`;
}

/**
 * How many fans are ahead of `orderKey` and not admitted yet: estimated from
 * the quantiles in the lobby block (exact while the lobby has no more keys
 * than quantiles), exact after it. Quantile i is the key of rank (i + 1) * step,
 * so between two quantiles the count of smaller keys runs from `below * step`
 * (just above the lower one) to `(below + 1) * step - 1` (at the upper one).
 */
export function fansAhead(state: QueueState, orderKey: number): number {
  const { lobby, late } = state.entrants;
  let ahead: number;
  if (orderKey < LATE_BLOCK_START) {
    const q = state.quantiles;
    if (q.length === 0) ahead = 0;
    else {
      const step = lobby / q.length;
      let below = 0;
      while (below < q.length && (q[below] ?? Infinity) < orderKey) below++;
      const low = below === 0 ? 0 : (q[below - 1] ?? 0);
      const high = below < q.length ? (q[below] ?? LATE_BLOCK_START) : LATE_BLOCK_START;
      const most = below < q.length ? (below + 1) * step - 1 : lobby - 1;
      const fewest = Math.min(below * step, most);
      ahead = Math.round(fewest + ((most - fewest) * (orderKey - low)) / Math.max(1, high - low));
    }
  } else if (orderKey < FLAGGED_BLOCK_START) {
    ahead = lobby + (orderKey - LATE_BLOCK_START);
  } else {
    ahead = lobby + late + (orderKey - FLAGGED_BLOCK_START);
  }
  return Math.max(0, ahead - state.admitted);
}
