/**
 * Counts of order keys per bucket: how the room knows the shape of a lobby of
 * millions without looking at it. Each lobby shard keeps the histogram of its
 * own keys (one counter per bucket, changed on every join), and reports to the
 * room, each tick, only the buckets that changed since the report the room
 * last acknowledged (absolute counts, so a lost or repeated report does no
 * harm). The room merges the shards' histograms into totals, whose block
 * counts and quantiles are the published document's: O(buckets) per tick,
 * whatever the lobby size.
 *
 * Buckets: the lobby block in 1,024 equal ranges (its keys are uniform, so
 * about lobby / 1,024 keys each); the late and flagged blocks in ranges of
 * 2^24 keys (16 s of arrival time each), kept sparse.
 */
import { BLOCK_RANGE, BLOCKS, blockOf, LATE_BLOCK_START, FLAGGED_BLOCK_START, type Block } from "../../core/waiting-room/queue-state";

const LOBBY_BUCKET_WIDTH = 2 ** 41;
const TIMED_BUCKET_WIDTH = 2 ** 24;
const LATE_BUCKET_BASE = 2 ** 20;
const FLAGGED_BUCKET_BASE = 2 ** 28;
/** Quantiles published per block once it is large. */
export const QUANTILES = 32;
/** Below this many keys a block's keys are published exactly (every key a quantile). */
export const EXACT_KEYS = 2 * QUANTILES;

/** The bucket of a key. */
export function bucketOf(key: number): number {
  if (key < LATE_BLOCK_START) return Math.floor(key / LOBBY_BUCKET_WIDTH);
  if (key < FLAGGED_BLOCK_START) return LATE_BUCKET_BASE + Math.floor((key - LATE_BLOCK_START) / TIMED_BUCKET_WIDTH);
  return FLAGGED_BUCKET_BASE + Math.floor((key - FLAGGED_BLOCK_START) / TIMED_BUCKET_WIDTH);
}

/** The block a bucket belongs to. */
export function blockOfBucket(bucket: number): Block {
  return bucket >= FLAGGED_BUCKET_BASE ? "flagged" : bucket >= LATE_BUCKET_BASE ? "late" : "lobby";
}

/** The keys a bucket covers: [start, start + width). */
function bucketRange(bucket: number): { start: number; width: number } {
  if (bucket < LATE_BUCKET_BASE) return { start: bucket * LOBBY_BUCKET_WIDTH, width: LOBBY_BUCKET_WIDTH };
  if (bucket < FLAGGED_BUCKET_BASE) return { start: LATE_BLOCK_START + (bucket - LATE_BUCKET_BASE) * TIMED_BUCKET_WIDTH, width: TIMED_BUCKET_WIDTH };
  return { start: FLAGGED_BLOCK_START + (bucket - FLAGGED_BUCKET_BASE) * TIMED_BUCKET_WIDTH, width: TIMED_BUCKET_WIDTH };
}

/**
 * `QUANTILES` keys at evenly spaced ranks of a block from its bucket counts
 * (sorted by bucket): quantile i estimates the key of rank (i + 1) * total /
 * QUANTILES, placing the keys of a bucket evenly across its range.
 */
export function quantilesFromBuckets(buckets: readonly (readonly [number, number])[], total: number): number[] {
  if (total <= 0) return [];
  const out: number[] = [];
  let index = 0;
  let before = 0;
  for (let i = 0; i < QUANTILES; i++) {
    const rank = ((i + 1) * total) / QUANTILES;
    while (index < buckets.length - 1 && before + (buckets[index]?.[1] ?? 0) < rank) before += buckets[index++]?.[1] ?? 0;
    const [bucket = 0, count = 0] = buckets[index] ?? [];
    const { start, width } = bucketRange(bucket);
    const within = count > 0 ? Math.min(1, Math.max(0, (rank - before - 0.5) / count)) : 1;
    const key = Math.min(start + width - 1, start + Math.floor(within * width));
    out.push(Math.max(key, out[out.length - 1] ?? key));
  }
  return out;
}

/** What the room last applied from a shard's reports. */
export interface HistogramAck {
  epoch: string;
  version: number;
}

/** A shard's histogram report: absolute counts of the buckets changed since the acknowledged report (all of them when `full`). */
export interface HistogramReport {
  epoch: string;
  version: number;
  full: boolean;
  /** Buckets and their counts, index for index. */
  buckets: number[];
  counts: number[];
  /** For each block changed since the ack: its keys when it has fewer than EXACT_KEYS, else null. */
  smallKeys: Partial<Record<Block, number[] | null>>;
}

/**
 * A shard's histogram, in memory: rebuilt from its keys when the object
 * starts (a new `epoch`, so the room takes the next report whole).
 */
export class ShardHistogram {
  private readonly counts = new Map<number, number>();
  private readonly blockCounts: Record<Block, number> = { lobby: 0, late: 0, flagged: 0 };
  /** The report version in which each bucket (and block) last changed. */
  private readonly changedIn = new Map<number, number>();
  private readonly blockChangedIn: Record<Block, number> = { lobby: 0, late: 0, flagged: 0 };
  private version = 0;
  readonly epoch = crypto.randomUUID();

  constructor(keys: Iterable<number>) {
    for (const key of keys) this.add(key);
  }

  /** Keys in a block. */
  blockCount(block: Block): number {
    return this.blockCounts[block];
  }

  add(key: number): void {
    this.change(key, 1);
  }

  remove(key: number): void {
    this.change(key, -1);
  }

  private change(key: number, by: number): void {
    const bucket = bucketOf(key);
    const block = blockOf(key);
    this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + by);
    this.blockCounts[block] += by;
    this.changedIn.set(bucket, this.version + 1);
    this.blockChangedIn[block] = this.version + 1;
  }

  /** The next report for a room that applied `ack` (null: nothing yet); `keysOf` lists a small block's keys. */
  report(ack: HistogramAck | null, keysOf: (block: Block) => number[]): HistogramReport {
    const full = ack === null || ack.epoch !== this.epoch;
    const since = full ? -1 : ack.version;
    const buckets: number[] = [];
    const counts: number[] = [];
    for (const [bucket, changed] of this.changedIn) {
      if (changed <= since) continue;
      buckets.push(bucket);
      counts.push(this.counts.get(bucket) ?? 0);
    }
    const smallKeys: Partial<Record<Block, number[] | null>> = {};
    for (const block of BLOCKS) {
      if (this.blockChangedIn[block] > since) smallKeys[block] = this.blockCounts[block] < EXACT_KEYS ? keysOf(block) : null;
    }
    this.version += 1;
    return { epoch: this.epoch, version: this.version, full, buckets, counts, smallKeys };
  }
}

interface ShardView {
  ack: HistogramAck;
  counts: Map<number, number>;
  smallKeys: Record<Block, number[] | null>;
}

/**
 * The room's merge of its shards' histograms: per-shard copies (so a report's
 * absolute counts replace what that shard said before), running totals per
 * bucket and block, and the quantiles published from them. Memory only: after
 * a restart the room acknowledges nothing, and every shard reports whole.
 */
export class MergedHistogram {
  private readonly shards = new Map<number, ShardView>();
  private readonly totals = new Map<number, number>();
  private readonly blockCounts: Record<Block, number> = { lobby: 0, late: 0, flagged: 0 };
  private readonly cached = new Map<Block, number[]>();

  /** What the room acknowledges to a shard (null: send everything). */
  ack(shard: number): HistogramAck | null {
    return this.shards.get(shard)?.ack ?? null;
  }

  /** Applies a shard's report, unless it is older than one already applied. */
  apply(shard: number, report: HistogramReport): void {
    let view = this.shards.get(shard);
    if (view && view.ack.epoch === report.epoch && report.version <= view.ack.version) return;
    if (report.full || !view || view.ack.epoch !== report.epoch) {
      if (!report.full) return; // a partial report against a copy we do not have: wait for a whole one
      if (view) for (const [bucket, count] of view.counts) this.add(bucket, -count);
      view = { ack: { epoch: report.epoch, version: report.version }, counts: new Map(), smallKeys: { lobby: [], late: [], flagged: [] } };
      this.shards.set(shard, view);
    }
    for (const [i, bucket] of report.buckets.entries()) {
      const count = report.counts[i] ?? 0;
      this.add(bucket, count - (view.counts.get(bucket) ?? 0));
      if (count === 0) view.counts.delete(bucket);
      else view.counts.set(bucket, count);
    }
    for (const block of BLOCKS) {
      const keys = report.smallKeys[block];
      if (keys !== undefined) view.smallKeys[block] = keys;
    }
    view.ack = { epoch: report.epoch, version: report.version };
    this.cached.clear();
  }

  private add(bucket: number, by: number): void {
    if (by === 0) return;
    const count = (this.totals.get(bucket) ?? 0) + by;
    if (count === 0) this.totals.delete(bucket);
    else this.totals.set(bucket, count);
    this.blockCounts[blockOfBucket(bucket)] += by;
  }

  /** Keys per block, over every shard. */
  counts(): Record<Block, number> {
    return { ...this.blockCounts };
  }

  /**
   * The block's published quantiles: every key while the block has fewer
   * than EXACT_KEYS (each shard then reports its keys), else QUANTILES keys
   * estimated from the merged histogram.
   */
  quantiles(block: Block): number[] {
    const cached = this.cached.get(block);
    if (cached) return cached;
    const total = this.blockCounts[block];
    let quantiles: number[];
    const exact = total < EXACT_KEYS ? this.exactKeys(block) : null;
    if (exact) quantiles = exact;
    else {
      const { start, end } = BLOCK_RANGE[block];
      const buckets = [...this.totals].filter(([bucket]) => {
        const { start: from } = bucketRange(bucket);
        return from >= start && from < end;
      });
      buckets.sort((a, b) => a[0] - b[0]);
      quantiles = quantilesFromBuckets(buckets, total);
    }
    this.cached.set(block, quantiles);
    return quantiles;
  }

  private exactKeys(block: Block): number[] | null {
    const keys: number[] = [];
    for (const view of this.shards.values()) {
      const small = view.smallKeys[block];
      if (small === null) return null;
      keys.push(...small);
    }
    if (keys.length !== this.blockCounts[block]) return null;
    return keys.sort((a, b) => a - b);
  }
}
