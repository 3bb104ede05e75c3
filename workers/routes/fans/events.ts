/** Public event data: the published events, one event. Cacheable at the edge. */
import { createRoute, z } from "@hono/zod-openapi";
import { eventViewSchema, getEvent, listEvents } from "../../events/events";
import { errorResponses, idParam, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

/** Public event data may be a little stale; the edge absorbs the crowd. */
const PUBLIC_CACHE = "public, max-age=10, s-maxage=30, stale-while-revalidate=60";

export const events = routeGroup();

events.openapi(
  createRoute({
    method: "get",
    path: "/events",
    summary: "Published upcoming events",
    responses: { 200: jsonResponse(z.object({ events: z.array(eventViewSchema) }), "The events.") },
  }),
  async (c) => {
    const published = await listEvents(c.var.db, {});
    c.header("Cache-Control", PUBLIC_CACHE);
    return c.json({ events: published }, 200);
  },
);

events.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}",
    summary: "One published event",
    request: { params: idParam },
    responses: { 200: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const event = await getEvent(c.var.db, { eventId: c.req.valid("param").id });
    c.header("Cache-Control", PUBLIC_CACHE);
    return c.json(event, 200);
  },
);
