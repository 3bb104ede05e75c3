/**
 * Rate limits at the waiting room's steps (seed "Deep Dive 2"), per IP and
 * per account, with `@upstash/ratelimit`. The lobby's bot evidence is in
 * bot-signals.ts and lobby.ts.
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Context } from "hono";
import { ApiError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import type { AppEnv } from "../app-env";
import { clientIp } from "../platform/client-ip";
import { createRedis } from "../platform/redis";

/** Identifiers over a limit, per isolate, until their window resets (the limiter's `ephemeralCache`). */
const ephemeralCache = new IsolateCache<string, number>(10_000);
/**
 * Attempts per minute, per IP and per account, at each waiting-room step.
 * `flaggedCheck`: early asks with a ticket from the flagged block that reach
 * the fan's shard (the queue page's look every 30 s, in case the organizer
 * cleared the fan); over it, the published document answers as for any fan,
 * so a farm of flagged accounts costs the shards 3 requests a minute each at
 * most, not the admission step's 10.
 */
const LIMITS = { lobby: { ip: 30, account: 5 }, admission: { ip: 60, account: 10 }, flaggedCheck: { ip: 10, account: 3 } } as const;
type Step = keyof typeof LIMITS;
/** The limiters of each step (three steps: bounded as it is). */
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

/** Counts an attempt at `step` by this IP and account; whether both are within their limits, and when the first over it resets. */
async function countStep(c: Context<AppEnv>, step: Step, eventId: string, accountId: string): Promise<{ byIp: { success: boolean; reset: number }; byAccount: { success: boolean; reset: number } }> {
  const ip = clientIp(c.req.raw.headers);
  const { ip: ipLimit, account: accountLimit } = stepLimiters(c, step);
  const [byIp, byAccount] = await Promise.all([ipLimit.limit(`${eventId}:${ip}`), accountLimit.limit(`${eventId}:${accountId}`)]);
  return { byIp, byAccount };
}

/** Whether an early ask with a flagged ticket may reach the fan's shard (`flaggedCheck` above); false: answer it from the document. */
export async function flaggedCheckAllowed(c: Context<AppEnv>, eventId: string, accountId: string): Promise<boolean> {
  const { byIp, byAccount } = await countStep(c, "flaggedCheck", eventId, accountId);
  return byIp.success && byAccount.success;
}

/** Throws 429 (with Retry-After) when this IP or account is over its limit for the step (400 without an IP: nothing counted). */
export async function limitWaitingRoomStep(c: Context<AppEnv>, step: Exclude<Step, "flaggedCheck">, eventId: string, accountId: string): Promise<void> {
  const { byIp, byAccount } = await countStep(c, step, eventId, accountId);
  if (!byIp.success || !byAccount.success) {
    const reset = Math.max(byIp.success ? 0 : byIp.reset, byAccount.success ? 0 : byAccount.reset);
    c.header("Retry-After", String(Math.max(1, Math.ceil((reset - Date.now()) / 1000))));
    throw new ApiError(429, "rate_limited", step === "lobby" ? "Too many attempts to join; wait a moment." : "Too many attempts; wait a moment.");
  }
}
