/**
 * The room's view of its lobby (durable-objects/waiting-room/key-histogram.ts
 * and next-in-line.ts), as properties:
 *  - merged from shards' reports that get lost, repeated, reordered, or come
 *    from a shard that restarted, the counts per block and the exact keys of
 *    small blocks are the truth once a report gets through;
 *  - quantiles estimated from the histogram of a large uniform lobby sit
 *    within a few ranks of the true ones;
 *  - the next fans in line across shards are exactly a prefix of all waiting
 *    fans in key order: never one behind an unlisted fan of another shard.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BLOCKS, FLAGGED_BLOCK_START, LATE_BLOCK_START, LOBBY_BLOCK_SIZE, blockOf, type Block } from "../../../core/waiting-room/queue-state";
import { EXACT_KEYS, MergedHistogram, QUANTILES, ShardHistogram, bucketOf, quantilesFromBuckets, type HistogramReport } from "../../../durable-objects/waiting-room/key-histogram";
import { nextInLine, type ShardList } from "../../../durable-objects/waiting-room/next-in-line";
import { seeded } from "../../../bench/lib/statistics";

const anyKey = fc.oneof(
  fc.integer({ min: 0, max: LOBBY_BLOCK_SIZE - 1 }),
  fc.integer({ min: LATE_BLOCK_START, max: LATE_BLOCK_START + 2 ** 40 }),
  fc.integer({ min: FLAGGED_BLOCK_START, max: FLAGGED_BLOCK_START + 2 ** 40 }),
);

type Step = { kind: "add"; shard: number; key: number } | { kind: "remove"; shard: number; pick: number } | { kind: "report"; shard: number; fate: "applied" | "lost" | "late" } | { kind: "restart"; shard: number };

const SHARDS = 3;
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("add" as const), shard: fc.nat(SHARDS - 1), key: anyKey }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant("remove" as const), shard: fc.nat(SHARDS - 1), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("report" as const), shard: fc.nat(SHARDS - 1), fate: fc.constantFrom("applied" as const, "lost" as const, "late" as const) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("restart" as const), shard: fc.nat(SHARDS - 1) }), weight: 1 },
);

describe("the merged histogram", () => {
  it("counts every block exactly, and lists small blocks' keys, whatever happens to the reports on the way", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 200 }), (steps) => {
        const keys = Array.from({ length: SHARDS }, () => new Set<number>());
        const shards = Array.from({ length: SHARDS }, () => new ShardHistogram([]));
        const merged = new MergedHistogram();
        const late: { shard: number; report: HistogramReport }[] = [];
        const keysOf = (shard: number) => (block: Block) => [...(keys[shard] ?? [])].filter((k) => blockOf(k) === block).sort((a, b) => a - b).slice(0, EXACT_KEYS);
        for (const step of steps) {
          const own = keys[step.shard] ?? new Set<number>();
          const histogram = shards[step.shard] ?? new ShardHistogram([]);
          if (step.kind === "add" && !own.has(step.key)) {
            own.add(step.key);
            histogram.add(step.key);
          } else if (step.kind === "remove" && own.size > 0) {
            const key = [...own][step.pick % own.size] ?? 0;
            own.delete(key);
            histogram.remove(key);
          } else if (step.kind === "restart") {
            shards[step.shard] = new ShardHistogram(own); // a new instance counts from storage, under a new epoch
          } else if (step.kind === "report") {
            const report = histogram.report(merged.ack(step.shard), keysOf(step.shard));
            if (step.fate === "applied") merged.apply(step.shard, report);
            if (step.fate === "late") late.push({ shard: step.shard, report });
          }
          // Late reports arrive after newer ones: they must change nothing.
          if (step.kind === "report" && step.fate === "applied") for (const old of late.splice(0)) merged.apply(old.shard, old.report);
        }
        for (let shard = 0; shard < SHARDS; shard++) merged.apply(shard, (shards[shard] ?? new ShardHistogram([])).report(merged.ack(shard), keysOf(shard)));
        const all = keys.flatMap((set) => [...set]);
        const truth = Object.fromEntries(BLOCKS.map((block) => [block, all.filter((k) => blockOf(k) === block).length]));
        expect(merged.counts()).toEqual(truth);
        for (const block of BLOCKS) {
          const inBlock = all.filter((k) => blockOf(k) === block).sort((a, b) => a - b);
          if (inBlock.length < EXACT_KEYS) expect(merged.quantiles(block)).toEqual(inBlock);
          else expect(merged.quantiles(block)).toHaveLength(QUANTILES);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("estimates a large uniform lobby's quantiles within a few ranks", () => {
    const random = seeded(7);
    for (const size of [100, 1_000, 20_000, 200_000]) {
      const keys = Array.from({ length: size }, () => Math.floor(random() * LOBBY_BLOCK_SIZE)).sort((a, b) => a - b);
      const counts = new Map<number, number>();
      for (const key of keys) counts.set(bucketOf(key), (counts.get(bucketOf(key)) ?? 0) + 1);
      const quantiles = quantilesFromBuckets([...counts].sort((a, b) => a[0] - b[0]), size);
      expect(quantiles).toHaveLength(QUANTILES);
      quantiles.forEach((quantile, i) => {
        const target = ((i + 1) * size) / QUANTILES;
        const rank = keys.filter((k) => k <= quantile).length;
        // Within a bucket (about size / 1,024 keys) the keys are placed evenly, so a quantile is off by a bucket's worth at most.
        expect(Math.abs(rank - target), `size ${size}, quantile ${i}`).toBeLessThanOrEqual(2 + (2 * size) / 1_024);
      });
    }
  });
});

describe("the next fans in line across shards", () => {
  it("are a prefix of every waiting fan in key order, as long as the lists allow", () => {
    const shardKeys = fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 40 }), { maxLength: 40 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(shardKeys, fc.array(fc.nat(45), { minLength: 6, maxLength: 6 }), fc.nat(60), (perShard, peeks, wanted) => {
        const waiting = perShard.map((keys, shard) => [...keys].sort((a, b) => a - b).map((orderKey) => ({ accountId: `s${shard}-${orderKey}`, orderKey })));
        const lists: ShardList[] = waiting.map((fans, shard) => {
          const peek = peeks[shard] ?? 0;
          return { shard, next: fans.slice(0, peek), more: fans.length > peek };
        });
        const { fans, shortShards } = nextInLine(lists, wanted);
        const everyone = waiting.flat().sort((a, b) => a.orderKey - b.orderKey || (a.accountId < b.accountId ? -1 : 1));
        expect(fans.map((f) => f.accountId)).toEqual(everyone.slice(0, fans.length).map((f) => f.accountId));
        expect(fans.length).toBeLessThanOrEqual(wanted);
        // Fewer than wanted only when nobody else waits, or a shard's list ran out first (that shard is named).
        if (fans.length < Math.min(wanted, everyone.length)) expect(shortShards.length).toBeGreaterThan(0);
        for (const shard of shortShards) expect(lists[shard]?.more).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
