/**
 * Who a fan is on the booking API: a signed fan session (audience "fan"), or
 * an admission token from the waiting room (audience "admission", bound to one
 * event). Either gives `{ accountId, attemptKey }` with the token id as the
 * attempt key; an admission also names the event it admits to.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app";
import { ApiError } from "../core/errors";
import { signToken, verifyToken } from "./tokens";
import { ADMISSION_AUDIENCE } from "./waiting-room/tokens";

/** The audience of fan session tokens. */
export const FAN_SESSION_AUDIENCE = "fan";
const SESSION_TTL_SECONDS = 12 * 60 * 60;

/** The identity a booking request acts as. */
export interface FanIdentity {
  accountId: string;
  /** Rate-limit key for hold attempts: the token's id. */
  attemptKey: string;
  /** Set for admission tokens: the one event they admit to. */
  admittedEventId?: string | undefined;
}

/** Verified tokens, so a fan's repeated calls cost one signature check (bounded, per isolate). */
const verified = new Map<string, { identity: FanIdentity; expiresAt: number }>();
const VERIFIED_LIMIT = 50_000;

/** Issues a fan session token for an account. */
export function signFanSession(signingKey: string | undefined, accountId: string): Promise<string> {
  return signToken(signingKey, { audience: FAN_SESSION_AUDIENCE, subject: accountId, ttlSeconds: SESSION_TTL_SECONDS });
}

/** Requires `Authorization: Bearer <fan session>`; sets `fan`. */
export const requireFan: MiddlewareHandler<AppEnv> = async (c, next) => {
  const match = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "");
  const token = match?.[1];
  if (!token) throw new ApiError(401, "unauthorized", "Sign in first: send `Authorization: Bearer <session token>`.");
  const now = Date.now();
  const cached = verified.get(token);
  if (cached && cached.expiresAt > now) {
    c.set("fan", cached.identity);
    return next();
  }
  let identity: FanIdentity;
  let expiresAt: number;
  try {
    const claims = await verifyToken(c.env.TOKEN_SIGNING_KEY, token, [FAN_SESSION_AUDIENCE, ADMISSION_AUDIENCE]);
    const admission = claims.aud === ADMISSION_AUDIENCE || (Array.isArray(claims.aud) && claims.aud.includes(ADMISSION_AUDIENCE));
    if (admission && typeof claims.eid !== "string") throw new Error("admission token without an event");
    identity = { accountId: claims.sub, attemptKey: claims.jti, admittedEventId: admission ? String(claims.eid) : undefined };
    expiresAt = (claims.exp ?? 0) * 1000;
  } catch {
    throw new ApiError(401, "invalid_token", "That session token is invalid or expired; sign in again.");
  }
  if (verified.size >= VERIFIED_LIMIT) verified.clear();
  verified.set(token, { identity, expiresAt });
  c.set("fan", identity);
  return next();
};
