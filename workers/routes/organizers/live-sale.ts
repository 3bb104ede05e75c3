/** A hot sale while it runs: admission rate and pause, live stats, accounts flagged in the lobby. */
import { z } from "@hono/zod-openapi";
import type { Db } from "../../../core/db/client";
import { conflict } from "../../../core/errors";
import { workContext } from "../../app-env";
import { getEvent, updateEvent } from "../../events/events";
import { inventoryForEvent } from "../../holds/pick-inventory";
import { countBotFlags, listBotFlags } from "../../waiting-room/bot-flags";
import { errorResponses, idParam, jsonBody, jsonResponse, organizerRoute } from "../openapi";
import { appendAudit } from "../../organizers/audit-log";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const liveSale = routeGroup();

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

liveSale.openapi(
  organizerRoute("admin", {
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
    const before = await room.snapshot().catch(() => null);
    await room.configure(id);
    const after = await room.control({ ratePerSecond: body.ratePerSecond, paused: body.paused });
    // The room (a Durable Object) holds what changed, so its row follows the change.
    await appendAudit(c.var.db, auditActor(c), {
      targetId: id,
      eventId: id,
      before: before && { ratePerSecond: before.ratePerSecond, paused: before.paused },
      after: { ratePerSecond: after.ratePerSecond, paused: after.paused },
    });
    return c.json(after, 200);
  },
);

liveSale.openapi(
  organizerRoute("read", {
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
    const availability = await (await inventoryForEvent(workContext(c), id)).availability();
    const queue = event.demandClass === "hot" ? await c.env.WAITING_ROOM.getByName(id).snapshot().catch(() => null) : null;
    const flaggedAccounts = await countBotFlags(c.var.db, id);
    const sections = availability.sections.map(({ label, priceTier, capacity, available }) => ({ label, priceTier, capacity, available }));
    return c.json(
      { queue, sections, available: sections.reduce((sum, s) => sum + s.available, 0), capacity: event.capacity, flaggedAccounts },
      200,
    );
  },
);

liveSale.openapi(
  organizerRoute("read", {
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
    return c.json({ flags: await listBotFlags(c.var.db, id) }, 200);
  },
);
