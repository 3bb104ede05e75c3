/** Platform operations (operators, not organizers): authenticated by OPS_TOKEN. Mounted at /ops. */
import { routeGroup } from "../app";
import { replayDeadLetters } from "../checkout/sales-consumer";
import { ApiError } from "../../core/errors";

export const ops = routeGroup();

/** Constant-time comparison of two strings. */
function sameSecret(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  if (left.length !== right.length) return false;
  let diff = 0;
  for (let i = 0; i < left.length; i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
}

ops.use("*", async (c, next) => {
  const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
  if (!c.env.OPS_TOKEN || !token || !sameSecret(token, c.env.OPS_TOKEN)) throw new ApiError(401, "unauthorized", "An operator token is required.");
  return next();
});

ops.post("/dead-letters/replay", async (c) => c.json(await replayDeadLetters(c.var.db, c.env), 200));
