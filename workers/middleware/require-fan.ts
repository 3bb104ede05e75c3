/** `requireFan()`: the caller must be a signed-in fan (a fan session or an admission token). */
import { createMiddleware } from "hono/factory";
import { ApiError, ConfigError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { verifyFanToken, type FanIdentity } from "../sign-in/fan-session";
import { bearerToken } from "./bearer-token";

/** What `requireFan` puts in the context. */
export interface FanVariables {
  fan: FanIdentity;
}

/** Verified tokens, so a fan's repeated calls cost one signature check. */
const verified = new IsolateCache<string, { identity: FanIdentity; expiresAt: number }>(50_000);

/**
 * Requires `Authorization: Bearer <fan session or admission token>`; sets `fan`. 401 otherwise.
 * Every answer behind it is the fan's own (errors included), so none may be cached.
 */
export function requireFan() {
  return createMiddleware<{ Bindings: Env; Variables: FanVariables }>(async (c, next) => {
    c.header("Cache-Control", "no-store");
    const token = bearerToken(c.req.header("Authorization"));
    if (!token) throw new ApiError(401, "unauthorized", "Sign in first: send `Authorization: Bearer <session token>`.");
    const cached = verified.get(token);
    if (cached && cached.expiresAt > Date.now()) {
      c.set("fan", cached.identity);
      return next();
    }
    let fan: { identity: FanIdentity; expiresAt: number };
    try {
      fan = await verifyFanToken(c.env, token);
    } catch (error) {
      // A missing key is our fault, not the fan's: 500 misconfigured, naming it.
      if (error instanceof ConfigError) throw error;
      throw new ApiError(401, "invalid_token", "That session token is invalid or expired; sign in again.");
    }
    verified.set(token, fan);
    c.set("fan", fan.identity);
    return next();
  });
}
