/**
 * The reference design's seat inventory in Redis (the seed's "Component 2"):
 * the event's free seats in a sorted set by best-available rank, each seat's
 * row in a hash, and `hold-best.lua` run with EVALSHA per hold. Loading, the
 * script, and the audit of what a load left behind.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis, type ChainableCommander } from "ioredis";
import { ATTEMPT_INTERVAL_MS, HOLD_JITTER_MS } from "../../core/holds/contract.ts";
import { planChart } from "../../workers/venues/seating-chart.ts";
import type { SeatingChart } from "../../workers/venues/seating-chart.ts";

const SCRIPT = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "hold-best.lua"), "utf8");
/** Seats written per pipeline while loading. */
const LOAD_CHUNK = 5_000;
/** The event's hold TTL (the events table's default) and purchase limit, as the bench's events have them. */
export const REFERENCE_HOLD_TTL_S = 600;
export const REFERENCE_PURCHASE_LIMIT = 4;

/** A hold request, as the server and the engine run pass it to the script. */
export interface ReferenceHold {
  accountId: string;
  attemptKey: string;
  requestId: string;
  quantity: number;
  holdId: string;
}

/** A Redis client with the hold script defined on it (EVALSHA, loaded on first use). */
export type ReferenceRedis = Redis & {
  holdBest(prefix: string, ...args: (string | number)[]): Promise<[number, string]>;
};

/** Connects to the reference's Redis, with `holdBest` defined (EVALSHA; the script is loaded on connect). */
export async function connectReference(redisUrl: string, options: { autoPipelining: boolean }): Promise<ReferenceRedis> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: options.autoPipelining, maxRetriesPerRequest: 1 });
  redis.defineCommand("holdBest", { numberOfKeys: 1, lua: SCRIPT });
  await redis.script("LOAD", SCRIPT);
  return redis as ReferenceRedis;
}

/** Adds one `holdBest` call to a pipeline (ioredis defines custom commands on pipelines too). */
export function pipelineHoldBest(pipeline: ChainableCommander, prefix: string, args: (string | number)[]): void {
  const withCommand = pipeline as ChainableCommander & { holdBest(prefix: string, ...args: (string | number)[]): ChainableCommander };
  withCommand.holdBest(prefix, ...args);
}

/** The key prefix of an event in the reference's Redis. */
export function eventPrefix(eventId: string): string {
  return `ref:${eventId}`;
}

/** The script's arguments for one hold (TTL with the seed's 0-60 s jitter). */
export function holdArguments(hold: ReferenceHold, now: number): (string | number)[] {
  const ttlSeconds = REFERENCE_HOLD_TTL_S + Math.floor((Math.random() * HOLD_JITTER_MS) / 1000);
  return [hold.accountId, hold.attemptKey, hold.requestId, hold.quantity, hold.holdId, ttlSeconds, REFERENCE_PURCHASE_LIMIT, ATTEMPT_INTERVAL_MS, now];
}

/** Loads a chart's seats as free: the sorted set by rank and the row of each seat. Returns the seat count. */
export async function loadSeats(redis: Redis, eventId: string, chart: SeatingChart): Promise<number> {
  const prefix = eventPrefix(eventId);
  const seats: { seatIndex: number; rank: number; row: number }[] = [];
  let row = 0;
  for (const section of planChart(chart).sections) {
    for (const planned of section.rows) {
      for (const seat of planned.seats) seats.push({ seatIndex: seat.seatIndex, rank: seat.bestRank, row });
      row++;
    }
  }
  for (let start = 0; start < seats.length; start += LOAD_CHUNK) {
    const part = seats.slice(start, start + LOAD_CHUNK);
    await redis
      .pipeline()
      .zadd(`${prefix}:free`, ...part.flatMap((s) => [s.rank, s.seatIndex]))
      .hset(`${prefix}:row`, Object.fromEntries(part.map((s) => [s.seatIndex, s.row])))
      .exec();
  }
  return seats.length;
}

/** What the final state of a reference event says. */
export interface ReferenceAudit {
  holds: number;
  claims: number;
  claimedSeats: number;
  /** Claims beyond one per existing seat. */
  oversold: number;
  /** Seats claimed by two or more holds. */
  doubleBooked: number;
  free: number;
  problems: string[];
}

/**
 * Reads every hold of the event and checks them against the reservation keys
 * and the free set: each seat claimed once, by the hold its reservation names,
 * and never both claimed and free; claimed plus free is every seat.
 */
export async function auditReference(redis: Redis, eventId: string, seatCount: number): Promise<ReferenceAudit> {
  const prefix = eventPrefix(eventId);
  const holdKeys: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:hold:*`, "COUNT", 5_000);
    holdKeys.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  const claimsBySeat = new Map<number, string[]>();
  let claims = 0;
  for (let start = 0; start < holdKeys.length; start += LOAD_CHUNK) {
    const keys = holdKeys.slice(start, start + LOAD_CHUNK);
    const values = await redis.mget(...keys);
    keys.forEach((key, i) => {
      const holdId = key.slice(`${prefix}:hold:`.length);
      for (const seat of (values[i] ?? "").split("|")[1]?.split(",") ?? []) {
        const seatIndex = Number(seat);
        claims++;
        claimsBySeat.set(seatIndex, [...(claimsBySeat.get(seatIndex) ?? []), holdId]);
      }
    });
  }
  const claimedSeats = [...claimsBySeat.keys()].filter((seat) => Number.isInteger(seat) && seat >= 0 && seat < seatCount).length;
  const doubleBooked = [...claimsBySeat.values()].filter((holders) => holders.length > 1).length;
  const problems: string[] = [];
  const seats = [...claimsBySeat.keys()];
  for (let start = 0; start < seats.length; start += LOAD_CHUNK) {
    const part = seats.slice(start, start + LOAD_CHUNK);
    const pipeline = redis.pipeline();
    for (const seat of part) pipeline.get(`${prefix}:res:${seat}`).zscore(`${prefix}:free`, String(seat));
    const answers = (await pipeline.exec()) ?? [];
    part.forEach((seat, i) => {
      const reservedBy = answers[2 * i]?.[1];
      const freeRank = answers[2 * i + 1]?.[1];
      if (!claimsBySeat.get(seat)?.includes(String(reservedBy))) problems.push(`seat ${seat}'s reservation names ${String(reservedBy)}, not a hold claiming it`);
      if (freeRank !== null && freeRank !== undefined) problems.push(`seat ${seat} is both claimed and free`);
    });
  }
  const free = await redis.zcard(`${prefix}:free`);
  if (free + claimedSeats !== seatCount) problems.push(`${free} free + ${claimedSeats} claimed = ${free + claimedSeats}, not ${seatCount}`);
  return { holds: holdKeys.length, claims, claimedSeats, oversold: claims - claimedSeats, doubleBooked, free, problems: problems.slice(0, 10) };
}
