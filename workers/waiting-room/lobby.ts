/**
 * The Worker's side of the lobby: which shard an account joins, and a join
 * from start to end (rate limits, Turnstile, bot evidence, the shard), with
 * the flags organizers see. Nothing here reaches the room itself, except once
 * per isolate and event to learn how many shards the event has.
 */
import type { Context } from "hono";
import { eq, sql } from "drizzle-orm";
import { accounts, botFlags } from "../../core/db/schema";
import type { Db } from "../../core/db/client";
import { ApiError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { flagReason, type Assessment, type EvidenceLimits, type LobbyEvidence } from "../../core/waiting-room/bot-evidence";
import { shardName, shardOf } from "../../core/waiting-room/lobby-shards";
import type { JoinResult } from "../../core/waiting-room/lobby-shards";

/** A lobby shard's stub, as the binding gives it. */
type LobbyShardStub = ReturnType<Env["LOBBY_SHARD"]["get"]>;
import type { AppEnv } from "../app-env";
import type { EventRouting } from "../events/routing";
import { clientIp } from "../platform/client-ip";
import { sha256Hex } from "../platform/hex-digest";
import { createRedis } from "../platform/redis";
import { limitWaitingRoomStep } from "./bot-defense";
import { LobbySignals, type JoinFacts, type Recorded } from "./bot-signals";
import { verifyTurnstile } from "./turnstile";

/** Each event's number of shards, per isolate: fixed once the room chose it, so never stale. */
const shardCounts = new IsolateCache<string, number>(10_000);

/** The lobby shard an account of this event joins and exchanges its ticket at. */
export async function lobbyShardOf(env: Env, eventId: string, accountId: string): Promise<{ index: number; stub: LobbyShardStub }> {
  let shards = shardCounts.get(eventId);
  if (shards === undefined) {
    shards = await env.WAITING_ROOM.getByName(eventId).lobbyShards(eventId);
    shardCounts.set(eventId, shards);
  }
  const index = shardOf(accountId, shards);
  return { index, stub: env.LOBBY_SHARD.getByName(shardName(eventId, index)) };
}

/** A successful join. */
export type Joined = Extract<JoinResult, { ok: true }>;

/**
 * Joins the lobby: 429 over the rate limits, 400 when Turnstile fails, 409
 * when the lobby is closed or the sale over, 403 when the event refuses
 * accounts with this much evidence against them. The shard decides on the
 * evidence as it stands (read, not written) before anything is recorded, so
 * every refusal but 403 leaves no signal behind (the rate limiters count the
 * attempt, which is what they are for). Accounts that a set's going over its
 * limit now implicates are weighed again, and every penalty is recorded for
 * the organizer.
 */
export async function joinLobby(c: Context<AppEnv>, routing: EventRouting, join: { accountId: string; turnstileToken: string; deviceId?: string | undefined }): Promise<Joined> {
  const { eventId } = routing;
  const ip = clientIp(c.req.raw.headers);
  await limitWaitingRoomStep(c, "lobby", eventId, join.accountId);
  const turnstile = await verifyTurnstile(c.env, join.turnstileToken, ip);
  if (!turnstile.success) throw new ApiError(400, "turnstile_failed", "The human check failed or expired; please try it again.");

  const now = Date.now();
  const facts: JoinFacts = {
    accountId: join.accountId,
    ip,
    device: join.deviceId ?? `ipua-${(await sha256Hex(`${ip}|${c.req.header("User-Agent") ?? ""}`)).slice(0, 32)}`,
    deviceReported: join.deviceId !== undefined,
    ephemeralId: turnstile.ephemeralId ?? null,
    accountCreatedAt: await accountCreatedAt(c.var.db, join.accountId, now),
  };
  const signals = new LobbySignals(createRedis(c.var.config), eventId);
  const shard = await lobbyShardOf(c.env, eventId, join.accountId);
  const shardJoin = { eventId, shard: shard.index, accountId: join.accountId };
  const evidence = await signals.peek(facts, now);
  let joined = inTime(await shard.stub.join({ ...shardJoin, evidence }));
  const recorded = await signals.record(facts, now);
  if (joined.ok && countedMore(recorded.evidence, evidence)) {
    // Joins recorded since the peek count too: weighed with them, this account may move back (or out).
    const again = inTime(await shard.stub.join({ ...shardJoin, evidence: recorded.evidence }));
    joined = again.ok ? { ...again, rejoined: joined.rejoined } : again;
  }
  const flags: FlagRow[] = [];
  if (joined.assessment && (joined.assessment.level > 0 || !joined.ok)) flags.push(flagRow(eventId, facts, joined.assessment, joined.ok));
  flags.push(...(await weighAgain(c.env, eventId, signals, recorded, joined.limits, now)));
  if (flags.length > 0) {
    await c.var.db
      .insert(botFlags)
      .values(flags)
      .onConflictDoUpdate({ target: [botFlags.eventId, botFlags.accountId, botFlags.reason], set: { detail: botFlagsExcluded.detail, deprioritized: botFlagsExcluded.deprioritized } });
  }
  if (!joined.ok) throw new ApiError(403, "refused", "Too many accounts joined from this device or network; this sale does not admit them.");
  return joined;
}

/** The shard's answer, or 409 for a join turned away for its timing (lobby not open yet, sale over). */
function inTime(joined: JoinResult): Exclude<JoinResult, { reason: "lobby_closed" | "sale_ended" }> {
  if (!joined.ok && joined.reason !== "refused") {
    const messages = { lobby_closed: "The lobby is not open yet.", sale_ended: "The sale has ended." } as const;
    throw new ApiError(409, joined.reason, messages[joined.reason]);
  }
  return joined;
}

/** True when `now` counts more accounts on any signal than `then`. */
function countedMore(now: LobbyEvidence, then: LobbyEvidence): boolean {
  return (
    now.accountsOnDevice > then.accountsOnDevice ||
    now.accountsOnEphemeralId > then.accountsOnEphemeralId ||
    now.accountsOnIp > then.accountsOnIp ||
    now.accountsInCreationBurst > then.accountsInCreationBurst
  );
}

/** When the account was created (a new account is weak evidence); `now` for an account Postgres does not know. */
async function accountCreatedAt(db: Db, accountId: string, now: number): Promise<number> {
  const [row] = await db.select({ createdAt: accounts.createdAt }).from(accounts).where(eq(accounts.id, accountId));
  return row?.createdAt.getTime() ?? now;
}

/** Weighs again the accounts this join implicated (a set they share went over its limit); returns their flags. */
async function weighAgain(env: Env, eventId: string, signals: LobbySignals, recorded: Recorded, limits: EvidenceLimits, now: number): Promise<FlagRow[]> {
  const members = await signals.membersOverLimit(recorded, limits, now);
  const byShard = new Map<number, { stub: LobbyShardStub; members: typeof members }>();
  for (const member of members) {
    const shard = await lobbyShardOf(env, eventId, member.facts.accountId);
    const entry = byShard.get(shard.index) ?? { stub: shard.stub, members: [] };
    entry.members.push(member);
    byShard.set(shard.index, entry);
  }
  const flags: FlagRow[] = [];
  await Promise.all(
    [...byShard].map(async ([index, { stub, members: onShard }]) => {
      const outcomes = await stub.penalize(eventId, index, onShard.map((m) => ({ accountId: m.facts.accountId, evidence: m.evidence })));
      outcomes.forEach((outcome, i) => {
        const facts = onShard[i]?.facts;
        if (facts && (outcome.outcome === "moved" || outcome.outcome === "removed")) flags.push(flagRow(eventId, facts, outcome.assessment, outcome.outcome === "moved"));
      });
    }),
  );
  return flags;
}

type FlagRow = typeof botFlags.$inferInsert;

/** The flags upsert's new values (a flag weighed again keeps one row per account and reason). */
const botFlagsExcluded = { detail: sql.raw("excluded.detail"), deprioritized: sql.raw("excluded.deprioritized") };

/** What an organizer sees of a penalty: its strongest signal as the reason, and every signal with its numbers. */
function flagRow(eventId: string, facts: JoinFacts, assessment: Assessment, inLine: boolean): FlagRow {
  const penalty = !inLine ? "refused" : assessment.level === 2 ? "behind_everyone" : "back_of_block";
  return {
    eventId,
    accountId: facts.accountId,
    reason: flagReason(assessment),
    deprioritized: inLine,
    detail: {
      score: assessment.score,
      penalty,
      signals: assessment.signals,
      accounts: assessment.signals[0]?.accounts ?? 1,
      ip: facts.ip,
      device: facts.device,
      deviceReported: facts.deviceReported,
      ephemeralId: facts.ephemeralId,
      accountCreatedAt: new Date(facts.accountCreatedAt).toISOString(),
    },
  };
}
