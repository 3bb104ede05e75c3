/**
 * The one bounded per-isolate cache (core/isolate-cache.ts): never more than
 * its bound, forgets the least recently used entry first, and stays a `Map`
 * for libraries that insist on one (@upstash/ratelimit's ephemeralCache).
 */
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis/cloudflare";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IsolateCache } from "../../core/isolate-cache";

/** A reference LRU: keys in use order, least recent first. */
class ModelLru {
  readonly order: number[] = [];
  readonly values = new Map<number, number>();
  constructor(private readonly max: number) {}
  get(key: number): number | undefined {
    if (!this.values.has(key)) return undefined;
    this.touch(key);
    return this.values.get(key);
  }
  set(key: number, value: number): void {
    if (!this.values.has(key) && this.values.size >= this.max) {
      const oldest = this.order.shift();
      if (oldest !== undefined) this.values.delete(oldest);
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

const operation = fc.oneof(
  fc.record({ kind: fc.constant("get" as const), key: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant("set" as const), key: fc.integer({ min: 0, max: 20 }), value: fc.integer() }),
  fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 20 }) }),
);

describe("IsolateCache", () => {
  it("behaves as a least-recently-used cache of its size under any sequence of gets, sets and deletes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(operation, { maxLength: 300 }), (max, operations) => {
        const cache = new IsolateCache<number, number>(max);
        const model = new ModelLru(max);
        for (const op of operations) {
          if (op.kind === "get") expect(cache.get(op.key)).toBe(model.get(op.key));
          else if (op.kind === "set") {
            cache.set(op.key, op.value);
            model.set(op.key, op.value);
          } else {
            cache.delete(op.key);
            model.delete(op.key);
          }
          expect(cache.size).toBeLessThanOrEqual(max);
          expect([...cache.keys()]).toEqual(model.order);
        }
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
