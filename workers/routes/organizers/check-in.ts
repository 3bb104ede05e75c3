/** Door staff checking tickets in at an event of the organizer's. */
import { z } from "@hono/zod-openapi";
import { assertOrganizersEvent } from "../../events/events";
import { checkIn as checkInTicket } from "../../tickets/check-in";
import { placeJson, placeSchema, ticketStatusSchema } from "../../tickets/http-mapping";
import { placeLabel } from "../../tickets/issued-tickets";
import { errorResponses, idParam, jsonBody, jsonResponse, organizerRoute } from "../openapi";
import { auditedChange } from "../../organizers/audit-log";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const checkIn = routeGroup();

const checkInSchema = z
  .object({
    result: z.enum(["valid", "already_scanned", "invalid"]),
    reason: z
      .enum(["expired", "bad_token", "other_event", "unknown_ticket", "void"])
      .optional()
      .openapi({ description: "Why an invalid scan does not admit." }),
    ticket: z
      .object({
        id: z.uuid(),
        eventId: z.uuid(),
        holderAccountId: z.uuid(),
        status: ticketStatusSchema,
        checkedInAt: z.string().nullable().openapi({ description: "The first scan's time." }),
        place: placeSchema,
        label: z.string(),
      })
      .optional(),
  })
  .openapi("CheckIn");

checkIn.openapi(
  organizerRoute("door", {
    method: "post",
    path: "/events/{id}/check-in",
    summary: "Check a scanned ticket in at the door",
    description:
      "Always 200 with a verdict for a well-formed request: `valid` admits (the ticket is now checked in), `already_scanned` carries the first scan's time, " +
      "`invalid` has a reason (expired or forged token, another event's ticket, unknown or void ticket). Of concurrent scans of one ticket exactly one is `valid`.",
    request: {
      params: idParam,
      body: jsonBody(z.strictObject({ token: z.string().trim().min(1).max(4096).openapi({ description: "The QR code's content." }) })),
    },
    responses: { 200: jsonResponse(checkInSchema, "The verdict."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await assertOrganizersEvent(c.var.db, c.var.organizer.id, id);
    const verdict = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await checkInTicket(tx, c.env.TOKEN_SIGNING_KEY, id, c.req.valid("json").token);
      const after = { result: result.result, reason: result.result === "invalid" ? result.reason : undefined, checkedInAt: result.ticket?.checkedInAt ?? null };
      return { result, audit: { targetId: result.ticket?.id ?? null, eventId: id, before: null, after } };
    });
    const ticket = verdict.ticket;
    return c.json(
      {
        result: verdict.result,
        ...(verdict.result === "invalid" ? { reason: verdict.reason } : {}),
        ...(ticket
          ? {
              ticket: {
                id: ticket.id,
                eventId: ticket.eventId,
                holderAccountId: ticket.holderAccountId,
                status: ticket.status,
                checkedInAt: ticket.checkedInAt?.toISOString() ?? null,
                place: placeJson(ticket),
                label: placeLabel(ticket.place),
              },
            }
          : {}),
      },
      200,
    );
  },
);
