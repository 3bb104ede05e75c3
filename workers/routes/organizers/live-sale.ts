/** A hot sale while it runs: admission rate and pause, live stats (flagged accounts: ./bot-flags.ts). */
import { z } from "@hono/zod-openapi";
import type { Db } from "../../../core/db/client";
import { conflict } from "../../../core/errors";
import { workContext } from "../../app-env";
import { getEvent, updateEvent } from "../../events/events";
import { calmCounts, HISTORY_HOURS, hotCounts, recordAdmissionSample, saleHistory } from "../../events/live-stats";
import { inventoryForEvent } from "../../holds/pick-inventory";
import { countBotFlags } from "../../waiting-room/bot-flags";
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

const placeCounts = { capacity: z.number(), available: z.number(), held: z.number(), sold: z.number() };

const liveView = z.object({
  demandClass: z.enum(["calm", "hot"]),
  queue: queueStateView.nullable().openapi({ description: "The waiting room (hot events; null for calm ones): lobby size (`entrants`), threshold, admitted, rate, pause." }),
  sections: z.array(z.object({ sectionId: z.string(), label: z.string(), priceTier: z.string().nullable(), ...placeCounts })),
  totals: z.object(placeCounts),
  available: z.number(),
  capacity: z.number(),
  soldOut: z.boolean().openapi({ description: "No place is free right now (hot events: or the room says so); places may still come back." }),
  returned: z.number().openapi({ description: "Places sold and then returned to the pool (refunds, cancellations)." }),
  flaggedAccounts: z.number(),
  history: z
    .object({
      windowHours: z.number(),
      minutes: z.array(
        z.object({
          at: z.iso.datetime(),
          admitted: z.number().openapi({ description: "Fans the room admitted in this minute (hot events)." }),
          sold: z.number().openapi({ description: "Places sold in this minute." }),
          ratePerSecond: z.number().nullable(),
          paused: z.boolean(),
        }),
      ),
    })
    .openapi({ description: "One point per minute over the last `windowHours`, from the first minute with anything in it: the charts' data." }),
});

liveSale.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/events/{id}/live",
    summary: "Live sale stats: queue, admission, inventory per section, and the per-minute history",
    description:
      "Held and sold come from each class's source of truth: Postgres for calm events, the event's inventory object for hot ones. The queue is the waiting room's last tick while it ticks (at most 2 s old), else counted afresh from the lobby shards. Reading this also records the room's admission count for the current minute (the cron does every minute).",
    request: { params: idParam },
    responses: { 200: jsonResponse(liveView, "Live stats."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const event = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    const hot = event.demandClass === "hot";
    const availability = await (await inventoryForEvent(workContext(c), id)).availability();
    const counts = hot ? await hotCounts(c.env, id) : await calmCounts(c.var.db, id);
    const queue = hot ? await c.env.WAITING_ROOM.getByName(id).liveView().catch(() => null) : null;
    if (queue) await recordAdmissionSample(c.var.db, id, queue);
    const [flaggedAccounts, minutes] = await Promise.all([countBotFlags(c.var.db, id), saleHistory(c.var.db, id)]);
    const bySection = new Map(counts.sections.map((s) => [s.sectionId, s]));
    const sections = availability.sections.map(({ sectionId, label, priceTier, capacity, available }) => ({
      sectionId,
      label,
      priceTier,
      capacity,
      available,
      held: bySection.get(sectionId)?.held ?? 0,
      sold: bySection.get(sectionId)?.sold ?? 0,
    }));
    const sum = (key: "capacity" | "available" | "held" | "sold") => sections.reduce((total, s) => total + s[key], 0);
    const totals = { capacity: sum("capacity"), available: sum("available"), held: sum("held"), sold: sum("sold") };
    return c.json(
      {
        demandClass: event.demandClass,
        queue,
        sections,
        totals,
        available: totals.available,
        capacity: event.capacity,
        soldOut: totals.available === 0 || (queue?.soldOut ?? false),
        returned: counts.returned,
        flaggedAccounts,
        history: { windowHours: HISTORY_HOURS, minutes },
      },
      200,
    );
  },
);
