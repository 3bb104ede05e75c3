/**
 * The one bounded cache for values kept per isolate between requests (verified
 * tokens, event routing, seat charts, imported keys, clients...). An isolate
 * lives for many requests and may see any number of events, tokens or
 * clients, so every such cache holds at most `maxEntries` and forgets the
 * least recently used entries first: one at a time up to 16 entries, a
 * sixteenth of the bound at a time above. Finding the oldest entry walks a
 * `Map` from its start, past the holes that deleted entries leave there until
 * V8 compacts the table; one eviction per insert made every insert into a full
 * 50,000-entry cache (verified tokens) walk thousands of them, 14-80 µs each
 * in a Node micro-benchmark against 0.5 µs when evicting in batches.
 *
 * It is a `Map`, so it also serves where a library insists on one
 * (`@upstash/ratelimit`'s `ephemeralCache` is checked with `instanceof Map`).
 * Entries never expire on their own: callers that need freshness keep a time
 * in the value and check it, which needs no timer (a timer in workerd belongs
 * to the request that set it) and follows the clock tests control.
 *
 * Cache values, never pending promises of one request's I/O: workerd ties
 * such a promise to the request that created it.
 */
// `V extends {}`: no undefined or null values, so `undefined` from `get` always means "not cached".
export class IsolateCache<K, V extends {}> extends Map<K, V> {
  /** Entries forgotten at once when a new key arrives in a full cache. */
  readonly evictionBatch: number;

  constructor(readonly maxEntries: number) {
    super();
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`an isolate cache holds at least one entry, not ${maxEntries}`);
    this.evictionBatch = Math.ceil(maxEntries / 16);
  }

  /** The value, which becomes the most recently used. */
  override get(key: K): V | undefined {
    const value = super.get(key);
    if (value === undefined) return undefined;
    super.delete(key);
    super.set(key, value);
    return value;
  }

  /** Stores the value as the most recently used, forgetting the least recently used entries (`evictionBatch`) when full. */
  override set(key: K, value: V): this {
    if (super.has(key)) super.delete(key);
    else if (this.size >= this.maxEntries) {
      let left = this.evictionBatch;
      for (const oldest of this.keys()) {
        super.delete(oldest);
        if (--left === 0) break;
      }
    }
    return super.set(key, value);
  }
}
