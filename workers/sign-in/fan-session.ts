/**
 * Who a fan is on the booking API: a signed fan session (audience "fan"), or
 * an admission token from the waiting room (audience "admission", bound to one
 * event). Either gives `{ accountId, attemptKey }`; an admission also names
 * the event it admits to. The attempt key of a session is its account (issue
 * 13, finding 3: one account may hold many sessions, and the hold-attempt
 * limit counts fans, not sessions); an admission token's is its id, as the
 * waiting room issues one admission per account and event.
 */
import { signToken, verifyToken } from "../platform/signed-tokens";
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

/** The identity a fan session or admission token carries, and when it expires (epoch ms); throws for anything else. */
export async function verifyFanToken(signingKey: string | undefined, token: string): Promise<{ identity: FanIdentity; expiresAt: number }> {
  const claims = await verifyToken(signingKey, token, [FAN_SESSION_AUDIENCE, ADMISSION_AUDIENCE]);
  const admission = claims.aud === ADMISSION_AUDIENCE || (Array.isArray(claims.aud) && claims.aud.includes(ADMISSION_AUDIENCE));
  if (admission && typeof claims.eid !== "string") throw new Error("admission token without an event");
  return {
    identity: { accountId: claims.sub, attemptKey: admission ? claims.jti : claims.sub, admittedEventId: admission ? String(claims.eid) : undefined },
    expiresAt: (claims.exp ?? 0) * 1000,
  };
}
