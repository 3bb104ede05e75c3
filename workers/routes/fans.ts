/** The fans' API: public event data and health. Mounted at /api. */
import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { routeGroup } from "../app";
import { eventViewSchema, getEvent, listEvents } from "../events";
import { errorResponses, jsonResponse } from "../openapi";
import { createRedis } from "../redis";

/** Public event data may be a little stale; the edge absorbs the crowd. */
const PUBLIC_CACHE = "public, max-age=10, s-maxage=30, stale-while-revalidate=60";

export const fans = routeGroup();

const checkSchema = z.object({ ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() });

async function timed(check: () => Promise<unknown>): Promise<z.infer<typeof checkSchema>> {
  const started = Date.now();
  try {
    await check();
    return { ok: true, latencyMs: Date.now() - started };
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: error instanceof Error ? error.message.slice(0, 200) : "unreachable" };
  }
}

fans.openapi(
  createRoute({
    method: "get",
    path: "/health",
    summary: "Reachability of Postgres and Redis",
    responses: {
      200: jsonResponse(z.object({ ok: z.boolean(), postgres: checkSchema, redis: checkSchema }), "Everything is reachable."),
      503: jsonResponse(z.object({ ok: z.boolean(), postgres: checkSchema, redis: checkSchema }), "Something is not."),
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

fans.openapi(
  createRoute({
    method: "get",
    path: "/events",
    summary: "Published upcoming events",
    responses: { 200: jsonResponse(z.object({ events: z.array(eventViewSchema) }), "The events.") },
  }),
  async (c) => {
    const events = await listEvents(c.var.db, {});
    c.header("Cache-Control", PUBLIC_CACHE);
    return c.json({ events }, 200);
  },
);

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}",
    summary: "One published event",
    request: { params: z.object({ id: z.uuid() }) },
    responses: { 200: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const event = await getEvent(c.var.db, { eventId: c.req.valid("param").id });
    c.header("Cache-Control", PUBLIC_CACHE);
    return c.json(event, 200);
  },
);
