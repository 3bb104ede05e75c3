/**
 * The one bounded cache for values kept per isolate between requests (verified
 * tokens, event routing, seat charts, imported keys, clients...). An isolate
 * lives for many requests and may see any number of events, tokens or
 * clients, so every such cache holds at most `maxEntries` and forgets the
 * least recently used entry first.
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
  constructor(readonly maxEntries: number) {
    super();
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`an isolate cache holds at least one entry, not ${maxEntries}`);
  }

  /** The value, which becomes the most recently used. */
  override get(key: K): V | undefined {
    const value = super.get(key);
    if (value === undefined) return undefined;
    super.delete(key);
    super.set(key, value);
    return value;
  }

  /** Stores the value as the most recently used, forgetting the least recently used entry when full. */
  override set(key: K, value: V): this {
    if (super.has(key)) super.delete(key);
    else if (this.size >= this.maxEntries) {
      const oldest = this.keys().next();
      if (!oldest.done) super.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
