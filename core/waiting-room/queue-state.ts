/**
 * The published queue document: one small JSON per event, built by the
 * waiting room each tick and read by every waiting fan through the edge
 * cache. A fan places its own order key against it; nothing per fan is stored
 * or served.
 *
 * Order keys live in three blocks, in queue order:
 * - the lobby block [0, 2^51): keys drawn uniformly at random by fans who
 *   joined before the sale, so their order is a fair shuffle;
 * - the late block [2^51, 2^52): arrivals after the start, keyed by arrival
 *   time (see `arrivalKey`), so they queue in arrival order;
 * - the flagged block [2^52, 2^53): accounts with strong bot evidence, keyed by
 *   the time they were flagged, behind everyone.
 */
import { z } from "zod";

/** Keys below this are the lobby block: uniformly random, so their order is a fair shuffle. */
export const LOBBY_BLOCK_SIZE = 2 ** 51;
/** Arrivals after the sale starts: this plus their arrival time (`arrivalKey`). */
export const LATE_BLOCK_START = 2 ** 51;
/** Accounts flagged as likely bots: behind everyone. */
export const FLAGGED_BLOCK_START = 2 ** 52;
/** The end of the key space (exclusive): every key is a safe integer. */
export const KEY_SPACE_END = 2 ** 53;

/** Arrival times count from here (2024-01-01T00:00:00Z), in milliseconds. */
const ARRIVAL_EPOCH_MS = Date.UTC(2024, 0, 1);
/** Keys per millisecond of arrival time: the low bits break ties between arrivals in the same millisecond at random. */
export const KEYS_PER_MS = 1_024;

/** The three blocks of keys, in queue order. */
export type Block = "lobby" | "late" | "flagged";
export const BLOCKS: readonly Block[] = ["lobby", "late", "flagged"];

/** Where each block's keys start and end (exclusive). */
export const BLOCK_RANGE: Readonly<Record<Block, { start: number; end: number }>> = {
  lobby: { start: 0, end: LATE_BLOCK_START },
  late: { start: LATE_BLOCK_START, end: FLAGGED_BLOCK_START },
  flagged: { start: FLAGGED_BLOCK_START, end: KEY_SPACE_END },
};

/** The block a key is in. */
export function blockOf(orderKey: number): Block {
  return orderKey >= FLAGGED_BLOCK_START ? "flagged" : orderKey >= LATE_BLOCK_START ? "late" : "lobby";
}

/**
 * The key of an arrival at `at` in the block starting at `blockStart`:
 * ascending in time, with `tieBreak` (0..KEYS_PER_MS-1, random) ordering
 * arrivals of the same millisecond. No counter is shared, so any object can
 * make one and keys made in different objects still queue in arrival order.
 */
export function arrivalKey(blockStart: number, at: number, tieBreak: number): number {
  return blockStart + Math.max(0, at - ARRIVAL_EPOCH_MS) * KEYS_PER_MS + tieBreak;
}

/** The published state of one event's queue. */
export interface QueueState {
  eventId: string;
  /**
   * The highest order key admitted so far (-1: nobody yet). Keys at or below it are admitted, except arrivals after it
   * passed them (they wait for the next ticks) and, rarely, a late arrival whose key another shard's fan drew too (same
   * millisecond and tie-break: keys are unique within a shard), whom the next tick admits.
   */
  threshold: number;
  admitted: number;
  entrants: { lobby: number; late: number; flagged: number };
  /** Lobby keys at evenly spaced ranks (every key while the lobby has fewer than 64). */
  quantiles: number[];
  /** The same for the late block. */
  lateQuantiles: number[];
  /** The same for the flagged block. */
  flaggedQuantiles: number[];
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

const counts = z.object({ lobby: z.number(), late: z.number(), flagged: z.number() });

/** The document's shape, for reading back a stored or cached copy. */
export const queueStateSchema: z.ZodType<QueueState> = z.object({
  eventId: z.string(),
  threshold: z.number(),
  admitted: z.number(),
  entrants: counts,
  quantiles: z.array(z.number()),
  lateQuantiles: z.array(z.number()),
  flaggedQuantiles: z.array(z.number()),
  ratePerSecond: z.number(),
  paused: z.boolean(),
  soldOut: z.boolean(),
  available: z.number(),
  held: z.number(),
  saleStartsAt: z.number(),
  saleEndsAt: z.number(),
  updatedAt: z.number(),
});

/** The KV key of an event's queue document (the durable fallback copy). */
export function queueStateKey(eventId: string): string {
  return `queue:${eventId}`;
}

/**
 * How many keys of a block lie below `orderKey`, from the block's published
 * quantiles (exact while every key is published). Quantile i is the key of
 * rank (i + 1) * step, so between two quantiles the count of smaller keys runs
 * from `below * step` (just above the lower one) to `(below + 1) * step - 1`
 * (at the upper one); in between it is interpolated.
 */
function rankInBlock(quantiles: number[], count: number, range: { start: number; end: number }, orderKey: number): number {
  const q = quantiles;
  if (q.length === 0) return 0;
  const step = count / q.length;
  let below = 0;
  while (below < q.length && (q[below] ?? Infinity) < orderKey) below++;
  const low = below === 0 ? range.start : (q[below - 1] ?? range.start);
  const high = below < q.length ? (q[below] ?? range.end) : range.end;
  const most = below < q.length ? (below + 1) * step - 1 : count - 1;
  const fewest = Math.min(below * step, most);
  return Math.round(fewest + ((most - fewest) * (orderKey - low)) / Math.max(1, high - low));
}

/**
 * How many fans are ahead of `orderKey` and not admitted yet: everyone in the
 * blocks before its own, plus its rank in its own block (estimated from the
 * block's quantiles), less those admitted.
 */
export function fansAhead(state: QueueState, orderKey: number): number {
  const { lobby, late, flagged } = state.entrants;
  let ahead: number;
  if (orderKey < LATE_BLOCK_START) ahead = rankInBlock(state.quantiles, lobby, BLOCK_RANGE.lobby, orderKey);
  else if (orderKey < FLAGGED_BLOCK_START) ahead = lobby + rankInBlock(state.lateQuantiles, late, BLOCK_RANGE.late, orderKey);
  else ahead = lobby + late + rankInBlock(state.flaggedQuantiles, flagged, BLOCK_RANGE.flagged, orderKey);
  return Math.max(0, ahead - state.admitted);
}
