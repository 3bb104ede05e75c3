/** The organizer's events: create, list, read, update, and prepare a hot event's inventory before its sale. */
import { z } from "@hono/zod-openapi";
import { conflict } from "../../../core/errors";
import { createEvent, createEventSchema, eventViewSchema, getEvent, listEvents, updateEvent, updateEventSchema } from "../../events/events";
import { hotDemandRatio } from "../../events/pre-registration";
import { forgetRouting } from "../../events/routing";
import { errorResponses, idParam, jsonBody, jsonResponse, organizerRoute } from "../openapi";
import { appendAudit, auditedChange } from "../../organizers/audit-log";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const events = routeGroup();

events.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/events",
    summary: "Create an event at one of your venues",
    description: "Prices must cover exactly the venue's price tiers. Without `demandClass`, the event is hot when expectedDemand / capacity >= 5.",
    request: { body: jsonBody(createEventSchema) },
    responses: { 201: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const event = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await createEvent(tx, c.var.organizer.id, c.req.valid("json"), new Date(), hotDemandRatio(c.env));
      return { result, audit: { targetId: result.id, eventId: result.id, before: null, after: result } };
    });
    return c.json(event, 201);
  },
);

events.openapi(
  organizerRoute("readOrDoor", {
    method: "get",
    path: "/events",
    summary: "List your events",
    responses: { 200: jsonResponse(z.object({ events: z.array(eventViewSchema) }), "The events."), ...errorResponses(401) },
  }),
  async (c) => c.json({ events: await listEvents(c.var.db, { organizerId: c.var.organizer.id }) }, 200),
);

events.openapi(
  organizerRoute("readOrDoor", {
    method: "get",
    path: "/events/{id}",
    summary: "One of your events",
    request: { params: idParam },
    responses: { 200: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json(await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: c.req.valid("param").id }), 200),
);

events.openapi(
  organizerRoute("admin", {
    method: "patch",
    path: "/events/{id}",
    summary: "Update an event",
    description: "Once a published event's sale has started, only name, description, endsAt and saleEndsAt may change (409 sale_in_progress otherwise).",
    request: { params: idParam, body: jsonBody(updateEventSchema) },
    responses: { 200: jsonResponse(eventViewSchema, "The updated event."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const event = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const before = await getEvent(tx, { organizerId: c.var.organizer.id, eventId: id });
      const result = await updateEvent(tx, c.var.organizer.id, id, c.req.valid("json"), new Date(), hotDemandRatio(c.env));
      return { result, audit: { targetId: id, eventId: id, before, after: result } };
    });
    await forgetRouting(id);
    // A prepared hot inventory and the waiting room keep their own copies of the sale settings: they follow at once.
    if (event.demandClass === "hot") {
      await c.env.EVENT_INVENTORY.getByName(id).refreshConfig();
      await c.env.WAITING_ROOM.getByName(id).configure(id);
    }
    return c.json(event, 200);
  },
);

events.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/events/{id}/prepare",
    summary: "Prepare a hot event's inventory (operators, before the sale)",
    description:
      "Loads the event's seats, prices and any holds or sales from Postgres into its Durable Object. With `promote: true` a calm event becomes hot first (only before its sale opens). Safe to repeat: a prepared object only refreshes its settings.",
    request: { params: idParam, body: jsonBody(z.strictObject({ promote: z.boolean().default(false) })) },
    responses: {
      200: jsonResponse(
        z.object({ eventId: z.uuid(), demandClass: z.enum(["calm", "hot"]), seatCount: z.number(), available: z.number(), holdsRecovered: z.number(), holdsExpired: z.number(), rebuilt: z.boolean() }),
        "The prepared inventory.",
      ),
      ...errorResponses(400, 401, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { promote } = c.req.valid("json");
    const before = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    let event = before;
    if (event.demandClass === "calm") {
      if (!promote) throw conflict("calm_event", "Calm events sell from Postgres and need no preparation; send promote: true to make this event hot.");
      event = await updateEvent(c.var.db, c.var.organizer.id, id, { demandClass: "hot" });
    }
    await forgetRouting(id);
    const prepared = await c.env.EVENT_INVENTORY.getByName(id).prepare(id);
    await c.env.WAITING_ROOM.getByName(id).configure(id);
    const report = { eventId: id, demandClass: event.demandClass, ...prepared };
    // The change is the object's (not a Postgres write), so its row follows it.
    await appendAudit(c.var.db, auditActor(c), { targetId: id, eventId: id, before: { demandClass: before.demandClass }, after: report });
    return c.json(report, 200);
  },
);
