/** The organizers' admin API, authenticated by API key and scoped to its organizer. Mounted at /admin. */
import { createRoute, z } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import { routeGroup } from "../app";
import { conflict, unauthorized } from "../../core/errors";
import { ticketsAdmin } from "./tickets";
import { refundsAdmin } from "./waitlist";
import { forgetRouting, inventoryFor } from "../inventory";
import { hotDemandRatio } from "../pre-registration";
import { count, desc, eq } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { accounts, botFlags } from "../../core/db/schema";
import { createEvent, createEventSchema, eventViewSchema, getEvent, listEvents, updateEvent, updateEventSchema } from "../events";
import { errorResponses, jsonBody, jsonResponse } from "../openapi";
import { addApiKey, organizerForApiKey } from "../organizers";
import { seatingChartSchema } from "../seating-chart";
import { getVenue, importVenue, listVenues } from "../venues";

export const admin = routeGroup();

admin.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
  type: "http",
  scheme: "bearer",
  description: "An organizer API key (`etk_...`).",
});

admin.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "Edge Tickets admin API",
    version: "1.0.0",
    description: "Venues, seating charts and events for organizers. Every route needs an organizer API key and sees only that organizer's data.",
  },
  servers: [{ url: "/admin" }],
  security: [{ apiKey: [] }],
});
admin.get("/docs", swaggerUI({ url: "/admin/openapi.json" }));

const PUBLIC_PATHS = new Set(["/admin/openapi.json", "/admin/docs"]);

admin.use("*", async (c, next) => {
  if (PUBLIC_PATHS.has(c.req.path)) return next();
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw unauthorized();
  const organizer = await organizerForApiKey(c.var.db, match[1]);
  if (!organizer) throw unauthorized("That API key is unknown or revoked.");
  c.set("organizer", organizer);
  c.header("Cache-Control", "no-store");
  return next();
});

const idParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

admin.openapi(
  createRoute({
    method: "get",
    path: "/me",
    summary: "The organizer this key belongs to",
    responses: { 200: jsonResponse(z.object({ id: z.uuid(), name: z.string() }), "The organizer."), ...errorResponses(401) },
  }),
  (c) => c.json(c.var.organizer, 200),
);

admin.openapi(
  createRoute({
    method: "post",
    path: "/api-keys",
    summary: "Create another API key (shown once)",
    request: { body: jsonBody(z.strictObject({ label: z.string().trim().min(1).max(80) })) },
    responses: { 201: jsonResponse(z.object({ id: z.uuid(), apiKey: z.string() }), "The new key."), ...errorResponses(400, 401) },
  }),
  async (c) => c.json(await addApiKey(c.var.db, c.var.organizer.id, c.req.valid("json").label), 201),
);

const venueSummary = z.object({
  id: z.uuid(),
  name: z.string(),
  city: z.string().nullable(),
  timezone: z.string(),
  capacity: z.number(),
  seatCount: z.number(),
  createdAt: z.string(),
});
const venueView = venueSummary
  .extend({
    priceTiers: z.array(z.string()),
    sections: z.array(
      z.object({
        id: z.uuid(),
        label: z.string(),
        name: z.string(),
        kind: z.enum(["seated", "general_admission"]),
        priceTier: z.string().nullable(),
        capacity: z.number(),
        rows: z.array(z.object({ label: z.string(), priceTier: z.string(), seats: z.number() })),
      }),
    ),
  })
  .openapi("Venue");

admin.openapi(
  createRoute({
    method: "post",
    path: "/venues",
    summary: "Create a venue from a seating chart",
    request: { body: jsonBody(seatingChartSchema) },
    responses: { 201: jsonResponse(venueView, "The venue."), ...errorResponses(400, 401) },
  }),
  async (c) => c.json(await importVenue(c.var.db, c.var.organizer.id, c.req.valid("json")), 201),
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/venues",
    summary: "List your venues",
    responses: { 200: jsonResponse(z.object({ venues: z.array(venueSummary) }), "The venues."), ...errorResponses(401) },
  }),
  async (c) => c.json({ venues: await listVenues(c.var.db, c.var.organizer.id) }, 200),
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/venues/{id}",
    summary: "One venue with its sections and rows",
    request: { params: idParam },
    responses: { 200: jsonResponse(venueView, "The venue."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json(await getVenue(c.var.db, c.var.organizer.id, c.req.valid("param").id), 200),
);

admin.openapi(
  createRoute({
    method: "post",
    path: "/events",
    summary: "Create an event at one of your venues",
    description: "Prices must cover exactly the venue's price tiers. Without `demandClass`, the event is hot when expectedDemand / capacity >= 5.",
    request: { body: jsonBody(createEventSchema) },
    responses: { 201: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json(await createEvent(c.var.db, c.var.organizer.id, c.req.valid("json"), new Date(), hotDemandRatio(c.env)), 201),
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/events",
    summary: "List your events",
    responses: { 200: jsonResponse(z.object({ events: z.array(eventViewSchema) }), "The events."), ...errorResponses(401) },
  }),
  async (c) => c.json({ events: await listEvents(c.var.db, { organizerId: c.var.organizer.id }) }, 200),
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}",
    summary: "One of your events",
    request: { params: idParam },
    responses: { 200: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json(await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: c.req.valid("param").id }), 200),
);

admin.openapi(
  createRoute({
    method: "patch",
    path: "/events/{id}",
    summary: "Update an event",
    description: "Once a published event's sale has started, only name, description, endsAt and saleEndsAt may change (409 sale_in_progress otherwise).",
    request: { params: idParam, body: jsonBody(updateEventSchema) },
    responses: { 200: jsonResponse(eventViewSchema, "The updated event."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const event = await updateEvent(c.var.db, c.var.organizer.id, id, c.req.valid("json"), new Date(), hotDemandRatio(c.env));
    forgetRouting(id);
    // A prepared hot inventory keeps its own copy of the sale settings.
    if (event.demandClass === "hot") await c.env.EVENT_INVENTORY.getByName(id).refreshConfig();
    return c.json(event, 200);
  },
);

admin.openapi(
  createRoute({
    method: "post",
    path: "/events/{id}/prepare",
    summary: "Prepare a hot event's inventory (operators, before the sale)",
    description:
      "Loads the event's seats, prices and any holds or sales from Postgres into its Durable Object. With `promote: true` a calm event becomes hot first (only before its sale opens). Safe to repeat: a prepared object only refreshes its settings.",
    request: { params: idParam, body: jsonBody(z.strictObject({ promote: z.boolean().default(false) })) },
    responses: {
      200: jsonResponse(
        z.object({ eventId: z.uuid(), demandClass: z.enum(["calm", "hot"]), seatCount: z.number(), available: z.number(), holdsRecovered: z.number(), rebuilt: z.boolean() }),
        "The prepared inventory.",
      ),
      ...errorResponses(400, 401, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { promote } = c.req.valid("json");
    let event = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    if (event.demandClass === "calm") {
      if (!promote) throw conflict("calm_event", "Calm events sell from Postgres and need no preparation; send promote: true to make this event hot.");
      event = await updateEvent(c.var.db, c.var.organizer.id, id, { demandClass: "hot" });
    }
    forgetRouting(id);
    const prepared = await c.env.EVENT_INVENTORY.getByName(id).prepare(id);
    return c.json({ eventId: id, demandClass: event.demandClass, ...prepared }, 200);
  },
);

const queueStateView = z
  .object({
    threshold: z.number(),
    admitted: z.number(),
    entrants: z.object({ lobby: z.number(), late: z.number(), flagged: z.number() }),
    ratePerSecond: z.number(),
    paused: z.boolean(),
    soldOut: z.boolean(),
    available: z.number(),
    held: z.number(),
    updatedAt: z.number(),
  })
  .openapi("AdmissionState");

async function hotEventOf(c: { var: { db: Db; organizer: { id: string } } }, eventId: string) {
  const event = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId });
  if (event.demandClass !== "hot") throw conflict("no_waiting_room", "Calm events have no waiting room.");
  return event;
}

admin.openapi(
  createRoute({
    method: "patch",
    path: "/events/{id}/admission",
    summary: "Change the admission rate or pause admission, live",
    request: {
      params: idParam,
      body: jsonBody(z.strictObject({ ratePerSecond: z.number().int().min(1).max(100_000).optional(), paused: z.boolean().optional() })),
    },
    responses: { 200: jsonResponse(queueStateView, "The waiting room's state after the change."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    await hotEventOf(c, id);
    if (body.ratePerSecond !== undefined) await updateEvent(c.var.db, c.var.organizer.id, id, { admissionRatePerSecond: body.ratePerSecond });
    const room = c.env.WAITING_ROOM.getByName(id);
    await room.configure(id);
    return c.json(await room.control({ ratePerSecond: body.ratePerSecond, paused: body.paused }), 200);
  },
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/live",
    summary: "Live sale stats: queue, admission and inventory",
    request: { params: idParam },
    responses: {
      200: jsonResponse(
        z.object({
          queue: queueStateView.nullable(),
          sections: z.array(z.object({ label: z.string(), priceTier: z.string().nullable(), capacity: z.number(), available: z.number() })),
          available: z.number(),
          capacity: z.number(),
          flaggedAccounts: z.number(),
        }),
        "Live stats.",
      ),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const event = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    const availability = await (await inventoryFor({ env: c.env, db: c.var.db, eventId: id, keepAlive: (p) => c.executionCtx.waitUntil(p) })).availability();
    const queue = event.demandClass === "hot" ? await c.env.WAITING_ROOM.getByName(id).snapshot().catch(() => null) : null;
    const [flags] = await c.var.db.select({ n: count() }).from(botFlags).where(eq(botFlags.eventId, id));
    const sections = availability.sections.map(({ label, priceTier, capacity, available }) => ({ label, priceTier, capacity, available }));
    return c.json(
      { queue, sections, available: sections.reduce((sum, s) => sum + s.available, 0), capacity: event.capacity, flaggedAccounts: flags?.n ?? 0 },
      200,
    );
  },
);

admin.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/bot-flags",
    summary: "Accounts flagged in this event's lobby",
    request: { params: idParam },
    responses: {
      200: jsonResponse(
        z.object({
          flags: z.array(z.object({ accountId: z.uuid(), email: z.string(), reason: z.string(), deprioritized: z.boolean(), detail: z.record(z.string(), z.unknown()), createdAt: z.string() })),
        }),
        "Flags, newest first.",
      ),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    const rows = await c.var.db
      .select({ accountId: botFlags.accountId, email: accounts.email, reason: botFlags.reason, deprioritized: botFlags.deprioritized, detail: botFlags.detail, createdAt: botFlags.createdAt })
      .from(botFlags)
      .innerJoin(accounts, eq(accounts.id, botFlags.accountId))
      .where(eq(botFlags.eventId, id))
      .orderBy(desc(botFlags.createdAt))
      .limit(1_000);
    return c.json({ flags: rows.map((r) => ({ ...r, detail: r.detail as Record<string, unknown>, createdAt: r.createdAt.toISOString() })) }, 200);
  },
);

// Door staff check-in, refunds, cancellation and orders, behind the same API-key auth.
admin.route("/", ticketsAdmin);
admin.route("/", refundsAdmin);
