/** `requireOperator()`: the caller must present the platform's operator token (`OPS_TOKEN`). */
import { createMiddleware } from "hono/factory";
import { ApiError } from "../../core/errors";
import { bearerToken } from "./bearer-token";

/** Constant-time comparison of two strings. */
function sameSecret(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  if (left.length !== right.length) return false;
  let diff = 0;
  for (let i = 0; i < left.length; i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
}

/** Requires `Authorization: Bearer <OPS_TOKEN>`; 401 otherwise, and always when no OPS_TOKEN is set. */
export function requireOperator() {
  return createMiddleware<{ Bindings: Env }>(async (c, next) => {
    const token = bearerToken(c.req.header("Authorization"));
    if (!c.env.OPS_TOKEN || !token || !sameSecret(token, c.env.OPS_TOKEN)) throw new ApiError(401, "unauthorized", "An operator token is required.");
    return next();
  });
}
