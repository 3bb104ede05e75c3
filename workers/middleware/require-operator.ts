/** `requireOperator()`: the caller must present the platform's operator token (`OPS_TOKEN`). */
import { createMiddleware } from "hono/factory";
import { ApiError } from "../../core/errors";
import { bearerToken } from "./bearer-token";

/**
 * Whether the presented secret is the expected one, in time that depends on
 * neither: both are hashed (SHA-256) first, so the comparison always runs over
 * 32 bytes, whatever their lengths (issue 13, finding 8), with workerd's
 * constant-time compare.
 */
async function sameSecret(presented: string, expected: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [left, right] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(presented)), crypto.subtle.digest("SHA-256", encoder.encode(expected))]);
  return crypto.subtle.timingSafeEqual(left, right);
}

/** Requires `Authorization: Bearer <OPS_TOKEN>`; 401 otherwise, and always when no OPS_TOKEN is set. */
export function requireOperator() {
  return createMiddleware<{ Bindings: Env }>(async (c, next) => {
    const token = bearerToken(c.req.header("Authorization"));
    if (!c.env.OPS_TOKEN || !token || !(await sameSecret(token, c.env.OPS_TOKEN))) throw new ApiError(401, "unauthorized", "An operator token is required.");
    return next();
  });
}
