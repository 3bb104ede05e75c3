/**
 * The one bounded per-isolate cache (core/isolate-cache.ts): never more than
 * its bound, forgets the least recently used entries first (one at a time up
 * to 16 entries, a sixteenth of its bound at a time above), and stays a `Map`
 * for libraries that insist on one (@upstash/ratelimit's ephemeralCache).
 */
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis/cloudflare";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IsolateCache } from "../../core/isolate-cache";

/** A reference LRU: keys in use order, least recent first; a full cache forgets `batch` of them at once. */
class ModelLru {
  readonly order: number[] = [];
  readonly values = new Map<number, number>();
  constructor(
    private readonly max: number,
    private readonly batch = 1,
  ) {}
  get(key: number): number | undefined {
    if (!this.values.has(key)) return undefined;
    this.touch(key);
    return this.values.get(key);
  }
  set(key: number, value: number): void {
    if (!this.values.has(key) && this.values.size >= this.max) {
      for (const oldest of this.order.splice(0, this.batch)) this.values.delete(oldest);
    }
    this.values.set(key, value);
    this.touch(key);
  }
  delete(key: number): void {
    this.values.delete(key);
    const at = this.order.indexOf(key);
    if (at >= 0) this.order.splice(at, 1);
  }
  private touch(key: number): void {
    const at = this.order.indexOf(key);
    if (at >= 0) this.order.splice(at, 1);
    this.order.push(key);
  }
}

function operations(keys: number) {
  return fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("get" as const), key: fc.integer({ min: 0, max: keys }) }),
      fc.record({ kind: fc.constant("set" as const), key: fc.integer({ min: 0, max: keys }), value: fc.integer() }),
      fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: keys }) }),
    ),
    { maxLength: 300 },
  );
}

/** Runs `ops` on a cache and the model side by side, checking contents and order after each. */
function agree(cache: IsolateCache<number, number>, model: ModelLru, ops: { kind: "get" | "set" | "delete"; key: number; value?: number }[]): void {
  for (const op of ops) {
    if (op.kind === "get") expect(cache.get(op.key)).toBe(model.get(op.key));
    else if (op.kind === "set") {
      cache.set(op.key, op.value ?? 0);
      model.set(op.key, op.value ?? 0);
    } else {
      cache.delete(op.key);
      model.delete(op.key);
    }
    expect(cache.size).toBeLessThanOrEqual(cache.maxEntries);
    expect([...cache.keys()]).toEqual(model.order);
  }
}

describe("IsolateCache", () => {
  it("behaves as a least-recently-used cache of its size under any sequence of gets, sets and deletes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), operations(24), (max, ops) => agree(new IsolateCache<number, number>(max), new ModelLru(max), ops)),
      { numRuns: 300 },
    );
  });

  it("above 16 entries, forgets the least recently used a sixteenth of its bound at a time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 17, max: 64 }), operations(96), (max, ops) => {
        const cache = new IsolateCache<number, number>(max);
        expect(cache.evictionBatch).toBe(Math.ceil(max / 16));
        agree(cache, new ModelLru(max, Math.ceil(max / 16)), ops);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps what was used recently and forgets the rest, one entry at a time", () => {
    const cache = new IsolateCache<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.get("a")).toBe(1); // "b" is now the least recently used
    cache.set("c", 3);
    expect([...cache.entries()]).toEqual([
      ["a", 1],
      ["c", 3],
    ]);
    cache.set("a", 10); // replacing a key evicts nothing
    expect(cache.size).toBe(2);
    expect(cache.get("c")).toBe(3);
  });

  it("refuses a bound below one", () => {
    expect(() => new IsolateCache(0)).toThrow(RangeError);
    expect(() => new IsolateCache(1.5)).toThrow(RangeError);
  });

  it("is a Map, so @upstash/ratelimit uses it as its ephemeral cache instead of an unbounded one of its own", async () => {
    const blocked = new IsolateCache<string, number>(2);
    // Nothing is sent: a blocked identifier is answered from the ephemeral cache.
    const limiter = new Ratelimit({
      redis: new Redis({ url: "http://127.0.0.1:9", token: "unused" }),
      limiter: Ratelimit.slidingWindow(1, "60 s"),
      prefix: "test",
      ephemeralCache: blocked,
    });
    blocked.set("test:fan", Date.now() + 60_000); // the limiter keys its cache by prefix and identifier
    const answer = await limiter.limit("fan");
    expect(answer.success).toBe(false);
    expect(answer.reason).toBe("cacheBlock");
  });
});
