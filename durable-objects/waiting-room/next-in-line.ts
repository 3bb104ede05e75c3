/**
 * Who is next in line across the lobby shards. Each tick every shard lists its
 * first waiting fans by key; merged, they are the line's next fans, but only
 * up to the lowest last key of a shard that has more fans behind its list (its
 * horizon): past it, that shard's unlisted fans might come first. A tick that
 * reaches a horizon admits fewer and asks that shard for a longer list next
 * time; the quota it could not use carries over.
 */
import type { Waiting } from "./lobby-shard";

/** One shard's list for a tick. */
export interface ShardList {
  shard: number;
  next: Waiting[];
  more: boolean;
}

/** The merge's outcome. */
export interface NextInLine {
  /** The next fans in queue order (at most `wanted`). */
  fans: (Waiting & { shard: number })[];
  /** Shards whose horizon stopped the merge before `wanted` (list more of them next time). */
  shortShards: number[];
}

/** Queue order: by key, and between equal keys (two shards can draw one) by account id. */
function inQueueOrder(a: Waiting, b: Waiting): number {
  return a.orderKey - b.orderKey || (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0);
}

/** The next `wanted` fans across the shards' lists, never past a horizon. */
export function nextInLine(lists: ShardList[], wanted: number): NextInLine {
  const lastKey = (list: ShardList) => list.next[list.next.length - 1]?.orderKey ?? -Infinity;
  const horizon = Math.min(...lists.filter((l) => l.more).map(lastKey));
  const all = lists.flatMap((list) => list.next.map((fan) => ({ ...fan, shard: list.shard }))).sort(inQueueOrder);
  const fans = all.filter((fan) => fan.orderKey <= horizon).slice(0, wanted);
  const shortShards = fans.length < wanted ? lists.filter((l) => l.more && lastKey(l) === horizon).map((l) => l.shard) : [];
  return { fans, shortShards };
}
