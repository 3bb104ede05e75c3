/**
 * The rehearsal clock: the Worker's `TIME_SCALE` (default 1) multiplies the
 * sale's own timers, so that a rehearsal of a hot sale (the sellout bench)
 * runs a sale's lifecycle in a fraction of the time: a hold's TTL and its
 * jitter, an admission promise's life, the waitlist's turn at returned
 * places. Every environment in wrangler.toml sets it to "1"; only a
 * rehearsal's own env (e.g. `bench/sellout.ts --time-scale`) sets less.
 * Nothing an organizer sees changes: an event's hold TTL is still its own
 * setting, read as that many scaled seconds.
 */

/** The scale set in `env` (1 when unset); a value outside (0, 1] is refused, so a typo cannot stretch a sale. */
export function timeScaleOf(env: { TIME_SCALE?: string | undefined }): number {
  const raw = env.TIME_SCALE;
  if (raw === undefined || raw === "") return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0 || scale > 1) throw new Error(`TIME_SCALE must be a number in (0, 1], not "${raw}"`);
  return scale;
}

/** When a hold made at `now` lapses: its TTL plus a random jitter (seed "Staggered TTLs"), both on the scaled clock. */
export function holdExpiry(now: number, ttlMs: number, jitterMs: number, scale: number): number {
  return now + Math.floor((ttlMs + Math.random() * jitterMs) * scale);
}
