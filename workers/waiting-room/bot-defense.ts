/**
 * Lobby defenses (seed "Deep Dive 2"): rate limits per IP and account, a
 * Turnstile check, and device signals counted in Redis. An event's policy
 * decides what happens to accounts that share one device or IP beyond its
 * limits: moved behind everyone ("deprioritize") or kept out ("refuse").
 * Every flag is recorded in Postgres for the organizer.
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Context } from "hono";
import { botFlags } from "../../core/db/schema";
import { ApiError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import type { AppEnv } from "../app-env";
import type { EventRouting } from "../events/routing";
import { clientIp } from "../platform/client-ip";
import { sha256Hex } from "../platform/hex-digest";
import { createRedis } from "../platform/redis";
import { verifyTurnstile } from "./turnstile";

/** Keys of the device-signal sets in Redis; they outlive any sale. */
const SIGNAL_TTL_SECONDS = 3 * 24 * 3600;

/** Identifiers over a limit, per isolate, until their window resets (the limiter's `ephemeralCache`). */
const ephemeralCache = new IsolateCache<string, number>(10_000);
/** Attempts per minute, per IP and per account, at each waiting-room step. */
const LIMITS = { lobby: { ip: 30, account: 5 }, admission: { ip: 60, account: 10 } } as const;
type Step = keyof typeof LIMITS;
/** The limiters of each step (two steps: bounded as it is). */
const limiters = new Map<Step, { ip: Ratelimit; account: Ratelimit }>();

function stepLimiters(c: Context<AppEnv>, step: Step) {
  let pair = limiters.get(step);
  if (!pair) {
    const redis = createRedis(c.var.config);
    pair = {
      ip: new Ratelimit({ redis, limiter: Ratelimit.slidingWindow(LIMITS[step].ip, "60 s"), prefix: `rl:${step}:ip`, ephemeralCache }),
      account: new Ratelimit({ redis, limiter: Ratelimit.slidingWindow(LIMITS[step].account, "60 s"), prefix: `rl:${step}:account`, ephemeralCache }),
    };
    limiters.set(step, pair);
  }
  return pair;
}

/** Throws 429 (with Retry-After) when this IP or account is over its limit for the step. */
export async function limitWaitingRoomStep(c: Context<AppEnv>, step: Step, eventId: string, accountId: string): Promise<void> {
  const { ip: ipLimit, account: accountLimit } = stepLimiters(c, step);
  const [byIp, byAccount] = await Promise.all([ipLimit.limit(`${eventId}:${clientIp(c.req.raw.headers)}`), accountLimit.limit(`${eventId}:${accountId}`)]);
  if (!byIp.success || !byAccount.success) {
    const reset = Math.max(byIp.success ? 0 : byIp.reset, byAccount.success ? 0 : byAccount.reset);
    c.header("Retry-After", String(Math.max(1, Math.ceil((reset - Date.now()) / 1000))));
    throw new ApiError(429, "rate_limited", step === "lobby" ? "Too many attempts to join; wait a moment." : "Too many attempts; wait a moment.");
  }
}

/** What the screening decided: join normally, or join flagged (behind everyone). */
export interface Screening {
  flag: string | undefined;
}

/**
 * Screens a lobby join. Throws 429 over the rate limits, 400 when Turnstile
 * fails, 403 when the event refuses flagged accounts; otherwise says whether
 * the account joins flagged.
 */
export async function screenLobbyJoin(
  c: Context<AppEnv>,
  routing: EventRouting,
  join: { accountId: string; turnstileToken: string; deviceId?: string | undefined },
): Promise<Screening> {
  const eventId = routing.eventId;
  const ip = clientIp(c.req.raw.headers);
  await limitWaitingRoomStep(c, "lobby", eventId, join.accountId);
  const turnstile = await verifyTurnstile(c.env, join.turnstileToken, ip);
  if (!turnstile.success) throw new ApiError(400, "turnstile_failed", "The human check failed or expired; please try it again.");

  const device = join.deviceId ?? `ipua-${(await sha256Hex(`${ip}|${c.req.header("User-Agent") ?? ""}`)).slice(0, 32)}`;
  const redis = createRedis(c.var.config);
  const deviceKey = `lobby:${eventId}:device:${device}`;
  const ipKey = `lobby:${eventId}:ip:${ip}`;
  const counts = await redis
    .pipeline()
    .sadd(deviceKey, join.accountId)
    .scard(deviceKey)
    .expire(deviceKey, SIGNAL_TTL_SECONDS)
    .sadd(ipKey, join.accountId)
    .scard(ipKey)
    .expire(ipKey, SIGNAL_TTL_SECONDS)
    .exec<[number, number, number, number, number, number]>();
  const perDevice = counts[1];
  const perIp = counts[4];
  const reason = perDevice > routing.maxAccountsPerDevice ? "shared_device" : perIp > routing.maxAccountsPerIp ? "shared_ip" : undefined;
  if (!reason) return { flag: undefined };

  const members = await redis.smembers(reason === "shared_device" ? deviceKey : ipKey);
  const detail = { device, ip, accounts: members.length, userAgent: c.req.header("User-Agent") ?? "" };
  await c.var.db
    .insert(botFlags)
    .values(members.map((accountId) => ({ eventId, accountId, reason, detail, deprioritized: routing.botPolicy === "deprioritize" })))
    .onConflictDoNothing();
  const room = c.env.WAITING_ROOM.getByName(eventId);
  if (routing.botPolicy === "refuse") {
    await room.remove(members);
    throw new ApiError(403, "refused", "Too many accounts joined from this device or network; this sale does not admit them.");
  }
  await room.flag(members, reason);
  return { flag: reason };
}
