/** Door staff checking tickets in at an event of the organizer's: one scan at a time, or a door scanner's queued scans (static/door/). */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { log } from "../../../core/logger";
import { type AppEnv, workContext } from "../../app-env";
import { assertOrganizersEvent, getEvent } from "../../events/events";
import { emitTicketCheckedIn } from "../../organizers/webhooks/sources";
import { checkIn as checkInTicket, checkInScans, type CheckInResult } from "../../tickets/check-in";
import { placeJson, placeSchema, ticketStatusSchema } from "../../tickets/http-mapping";
import { placeLabel } from "../../tickets/issued-tickets";
import { errorResponses, idParam, jsonBody, jsonResponse, organizerRoute } from "../openapi";
import { auditedChange } from "../../organizers/audit-log";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const checkIn = routeGroup();

/** What a QR code held: a compact code (base45, where a leading space is a digit: not trimmed) or a ticket JWT. */
const tokenSchema = z
  .string()
  .max(4096)
  .refine((token) => token.trim() !== "", "The scanned code is empty.")
  .openapi({ description: "The QR code's content: a compact ticket code (base45, see the README) or a ticket JWT." });

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
      body: jsonBody(
        z.strictObject({
          token: tokenSchema,
        }),
      ),
    },
    responses: { 200: jsonResponse(checkInSchema, "The verdict."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await assertOrganizersEvent(c.var.db, c.var.organizer.id, id);
    const verdict = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await checkInTicket(tx, c.env.TOKEN_SIGNING_KEY, id, c.req.valid("json").token);
      return { result, audit: { targetId: result.ticket?.id ?? null, eventId: id, before: null, after: auditedVerdict(result) } };
    });
    emitCheckIns(c, [verdict]);
    return c.json(verdictJson(verdict), 200);
  },
);

checkIn.openapi(
  organizerRoute("readOrDoor", {
    method: "get",
    path: "/events/{id}/check-in",
    summary: "What a door scanner shows of the event",
    description: "The event's name and times, for the door page (static/door/) to show and to check its key against before it starts.",
    request: { params: idParam },
    responses: {
      200: jsonResponse(z.object({ event: z.object({ id: z.uuid(), name: z.string(), startsAt: z.string() }) }), "The event."),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const event = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: c.req.valid("param").id });
    return c.json({ event: { id: event.id, name: event.name, startsAt: event.startsAt } }, 200);
  },
);

/**
 * The organizer's `ticket.checked_in` webhooks for the scans that found a
 * ticket, after the answer, so the door never waits for (or fails with) the
 * webhooks queue. On a repeat scan too: the webhook is keyed by ticket, so it
 * is sent once, and a failed first emit is made good.
 */
function emitCheckIns(c: Context<AppEnv>, verdicts: CheckInResult[]): void {
  const ctx = workContext(c);
  for (const verdict of verdicts) {
    const ticket = verdict.result === "invalid" ? undefined : verdict.ticket;
    if (!ticket) continue;
    ctx.keepAlive(emitTicketCheckedIn(ctx, ticket).catch((error: unknown) => log.error("webhook_emit_failed", { ticketId: ticket.id, error: String(error) })));
  }
}

/** What the audit log keeps of a scan's verdict. */
function auditedVerdict(verdict: CheckInResult) {
  return { result: verdict.result, reason: verdict.result === "invalid" ? verdict.reason : undefined, checkedInAt: verdict.ticket?.checkedInAt ?? null };
}

/** A verdict as JSON (`CheckIn`). */
function verdictJson(verdict: CheckInResult): z.infer<typeof checkInSchema> {
  const ticket = verdict.ticket;
  return {
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
  };
}

const syncedScanSchema = checkInSchema
  .extend({
    scanId: z.uuid(),
    conflict: z
      .object({
        doorId: z.string().nullable().openapi({ description: "The door whose scan won; null for a scan that named no door." }),
        scannedAt: z.string().nullable().openapi({ description: "When the winning scan was made." }),
      })
      .optional()
      .openapi({ description: "Another door checked this ticket in first: both may have let someone in. Its scan won." }),
  })
  .openapi("SyncedScan");

checkIn.openapi(
  organizerRoute("door", {
    method: "post",
    path: "/events/{id}/check-in/sync",
    summary: "Check in a door scanner's queued scans",
    description:
      "The door page verifies codes offline against the cached JWKS and queues its scans while the network is down; this takes them, in order, " +
      "with their scan times and the door's id. Each gets the verdict of `POST /events/{id}/check-in` (the ticket's check-in time is the scan's). " +
      "The first scan of a ticket to reach the server wins: a scan of a ticket another door checked in first is `already_scanned` with `conflict`, " +
      "naming the winning door and scan time. A retry of scans this door already synced changes nothing.",
    request: {
      params: idParam,
      body: jsonBody(
        z.strictObject({
          doorId: z.string().trim().min(1).max(64).openapi({ description: "The door's name, as its staff set it (e.g. `North gate`)." }),
          scans: z
            .array(
              z.strictObject({
                scanId: z.uuid().openapi({ description: "The door's id for the scan, echoed in the answer." }),
                code: tokenSchema,
                scannedAt: z.iso.datetime({ offset: true }).openapi({ description: "When the door scanned it (a time later than now counts as now)." }),
              }),
            )
            .min(1)
            .max(200),
        }),
      ),
    },
    responses: { 200: jsonResponse(z.object({ results: z.array(syncedScanSchema) }), "A verdict per scan, in order."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await assertOrganizersEvent(c.var.db, c.var.organizer.id, id);
    const { doorId, scans } = c.req.valid("json");
    const verdicts = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await checkInScans(
        tx,
        c.env.TOKEN_SIGNING_KEY,
        id,
        doorId,
        scans.map((scan) => ({ code: scan.code, scannedAt: new Date(scan.scannedAt) })),
      );
      const after = { doorId, scans: result.map((verdict, i) => ({ scanId: scans[i]?.scanId ?? null, ticketId: verdict.ticket?.id ?? null, ...auditedVerdict(verdict) })) };
      return { result, audit: { targetId: null, eventId: id, before: null, after } };
    });
    emitCheckIns(c, verdicts);
    const results = verdicts.map((verdict, i) => ({
      scanId: scans[i]?.scanId ?? "",
      ...verdictJson(verdict),
      ...(verdict.conflict ? { conflict: { doorId: verdict.conflict.doorId, scannedAt: verdict.conflict.scannedAt?.toISOString() ?? null } } : {}),
    }));
    return c.json({ results }, 200);
  },
);
