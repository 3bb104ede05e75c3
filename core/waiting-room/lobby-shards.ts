/**
 * Lobby shards: an event's lobby is spread over several `LobbyShard` objects,
 * so joins scale out past one object's ~1,000 requests per second. An account
 * always joins the same shard (chosen by a hash of its id), so "one entry per
 * account" holds across all of them; order keys are drawn the same way in
 * every shard, so they stay uniform across shards.
 */

import type { Assessment, EvidenceLimits } from "./bot-evidence";
import type { Block } from "./queue-state";

/** Planned fans per shard: at the object's ~1,000 requests/s, a shard takes its share of a burst of joins. */
export const FANS_PER_SHARD = 50_000;
/** Every room has at least this many shards (so every sale runs the merge), and at most this many. */
export const MIN_SHARDS = 2;
export const MAX_SHARDS = 128;

/** How many shards an event with this expected demand gets. */
export function lobbyShardCount(expectedDemand: number): number {
  return Math.min(MAX_SHARDS, Math.max(MIN_SHARDS, Math.ceil(expectedDemand / FANS_PER_SHARD)));
}

/**
 * The shard an account joins: FNV-1a of its id, mixed by MurmurHash3's
 * finalizer (FNV's low bits depend only on the low bits of the characters, so
 * alone it would split ids like "fan-1", "fan-2" by their last digit): stable
 * for an account, uniform over accounts.
 */
export function shardOf(accountId: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < accountId.length; i++) {
    hash ^= accountId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % shards;
}

/** A shard's object name. */
export function shardName(eventId: string, shard: number): string {
  return `${eventId}#${shard}`;
}

/** The outcome of joining the lobby. */
export type JoinResult =
  | { ok: true; orderKey: number; joinedAt: number; block: Block; rejoined: boolean; saleEndsAt: number; assessment: Assessment | null; limits: EvidenceLimits }
  | { ok: false; reason: "lobby_closed" | "sale_ended" }
  | { ok: false; reason: "refused"; assessment: Assessment; limits: EvidenceLimits };

/** The outcome of exchanging a lobby ticket. */
export type ExchangeResult =
  | { ok: true; admissionId: string; expiresAt: number }
  | { ok: false; reason: "not_admitted_yet" | "not_in_lobby" | "sold_out" };
