/** `GET /api/health`: whether the Worker reaches Postgres and Redis (for monitors; public, never cached). */
import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { createRedis } from "../../platform/redis";
import { jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const health = routeGroup();

const checkSchema = z.object({ ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() });
const healthSchema = z.object({ ok: z.boolean(), postgres: checkSchema, redis: checkSchema });

async function timed(check: () => Promise<unknown>): Promise<z.infer<typeof checkSchema>> {
  const started = Date.now();
  try {
    await check();
    return { ok: true, latencyMs: Date.now() - started };
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: error instanceof Error ? error.message.slice(0, 200) : "unreachable" };
  }
}

health.openapi(
  createRoute({
    method: "get",
    path: "/health",
    summary: "Reachability of Postgres and Redis",
    responses: {
      200: jsonResponse(healthSchema, "Everything is reachable."),
      503: jsonResponse(healthSchema, "Something is not."),
    },
  }),
  async (c) => {
    const [postgres, redis] = await Promise.all([
      timed(() => c.var.db.execute(sql`select 1`)),
      timed(() => createRedis(c.var.config).ping()),
    ]);
    const ok = postgres.ok && redis.ok;
    c.header("Cache-Control", "no-store");
    return ok ? c.json({ ok, postgres, redis }, 200) : c.json({ ok, postgres, redis }, 503);
  },
);
