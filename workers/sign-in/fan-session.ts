/**
 * Who a fan is on the booking API: a signed fan session (ES256, audience
 * "fan"), or an admission token from the waiting room (HS256, audience
 * "admission", bound to one event). Either gives `{ accountId, attemptKey }`
 * with an attempt key; an admission also names the event it admits to. The
 * attempt key of a session is its account (issue 13, finding 3: one account
 * may hold many sessions, and the hold-attempt limit counts fans, not
 * sessions); an admission token's is its id, as the waiting room issues one
 * admission per account and event.
 */
import { signToken, verifyEitherToken } from "../platform/signed-tokens";
import { ADMISSION_AUDIENCE } from "../waiting-room/tokens";

/** The audience of fan session tokens. */
export const FAN_SESSION_AUDIENCE = "fan";
const SESSION_TTL_SECONDS = 12 * 60 * 60;

/** The identity a booking request acts as. */
export interface FanIdentity {
  accountId: string;
  /** Rate-limit key for hold attempts: the account for a session, the token's id for an admission. */
  attemptKey: string;
  /** Set for admission tokens: the one event they admit to. */
  admittedEventId?: string | undefined;
}

/** Issues a fan session token for an account. */
export function signFanSession(signingKey: string | undefined, accountId: string): Promise<string> {
  return signToken(signingKey, { audience: FAN_SESSION_AUDIENCE, subject: accountId, ttlSeconds: SESSION_TTL_SECONDS });
}

/** The keys fan tokens are checked with: the Worker's `TOKEN_SIGNING_KEY` and `ADMISSION_TOKEN_KEY`. */
export type FanTokenKeys = Pick<Env, "TOKEN_SIGNING_KEY" | "ADMISSION_TOKEN_KEY">;

/**
 * The identity a fan session or admission token carries, and when it expires
 * (epoch ms); throws for anything else, a `ConfigError` when the key it needs
 * is missing. The header's algorithm picks the key set (one parse of the
 * token), and each set checks only its own audience: an admission is only
 * ever an HS256 token, a session only an ES256 one.
 */
export async function verifyFanToken(keys: FanTokenKeys, token: string): Promise<{ identity: FanIdentity; expiresAt: number }> {
  const claims = await verifyEitherToken(
    { es256: keys.TOKEN_SIGNING_KEY, hs256: keys.ADMISSION_TOKEN_KEY },
    token,
    { es256: FAN_SESSION_AUDIENCE, hs256: ADMISSION_AUDIENCE },
  );
  const admission = claims.alg === "HS256";
  if (admission && typeof claims.eid !== "string") throw new Error("admission token without an event");
  return {
    identity: { accountId: claims.sub, attemptKey: admission ? claims.jti : claims.sub, admittedEventId: admission ? String(claims.eid) : undefined },
    expiresAt: (claims.exp ?? 0) * 1000,
  };
}
