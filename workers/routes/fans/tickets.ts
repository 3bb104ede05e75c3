/**
 * E-tickets over HTTP: fans' "my tickets" (`tickets`, mounted at /api) and
 * door staff's check-in (`ticketsAdmin`, mounted at /admin behind the
 * organizer API key middleware, scoped to the key's organizer).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { routeGroup } from "../app";
import { events } from "../../core/db/schema";
import { notFound, unauthorized } from "../../core/errors";
import { requireFan } from "../fan-auth";
import { errorResponses, jsonBody, jsonResponse } from "../openapi";
import { checkIn, findTickets, placeLabel, signIssuedTicket, ticketQrSvg, type IssuedTicket } from "../tickets";

const placeSchema = z
  .object({
    section: z.string().openapi({ description: "The section's label, as printed in the venue." }),
    sectionName: z.string(),
    row: z.string().nullable(),
    seat: z.string().nullable(),
    generalAdmission: z.boolean(),
  })
  .openapi("TicketPlace");

function placeJson(ticket: IssuedTicket): z.infer<typeof placeSchema> {
  const place = ticket.place;
  return "ga" in place
    ? { section: place.section, sectionName: ticket.sectionName, row: null, seat: null, generalAdmission: true }
    : { section: place.section, sectionName: ticket.sectionName, row: place.row, seat: place.seat, generalAdmission: false };
}

const ticketStatus = z.enum(["valid", "checked_in", "void"]);

// ------------------------------------------------------------------ fans: my tickets

/** The fans' ticket routes. Mounted at /api. */
export const tickets = routeGroup();

tickets.use("/me/tickets", requireFan);
tickets.use("/me/tickets/*", requireFan);

const myTicketSchema = z
  .object({
    id: z.uuid(),
    orderId: z.uuid(),
    status: ticketStatus,
    checkedInAt: z.string().nullable(),
    event: z.object({ id: z.uuid(), name: z.string(), startsAt: z.string(), endsAt: z.string().nullable(), venue: z.string() }),
    place: placeSchema,
    label: z.string().openapi({ example: "Section A, Row 3, Seat 12" }),
    token: z.string().nullable().openapi({ description: "The signed ticket token the QR code holds (verifiable with /.well-known/jwks.json); null for a void ticket." }),
    qrSvg: z.string().nullable().openapi({ description: "The QR code as an SVG document; null for a void ticket." }),
  })
  .openapi("MyTicket");

async function myTicketJson(signingKey: string | undefined, ticket: IssuedTicket): Promise<z.infer<typeof myTicketSchema>> {
  const token = ticket.status === "void" ? null : await signIssuedTicket(signingKey, ticket);
  return {
    id: ticket.id,
    orderId: ticket.orderId,
    status: ticket.status,
    checkedInAt: ticket.checkedInAt?.toISOString() ?? null,
    event: {
      id: ticket.eventId,
      name: ticket.event.name,
      startsAt: ticket.event.startsAt.toISOString(),
      endsAt: ticket.event.endsAt?.toISOString() ?? null,
      venue: ticket.event.venueName,
    },
    place: placeJson(ticket),
    label: placeLabel(ticket.place),
    token,
    qrSvg: token === null ? null : await ticketQrSvg(token),
  };
}

tickets.openapi(
  createRoute({
    method: "get",
    path: "/me/tickets",
    summary: "Your tickets, across events, with their QR codes",
    security: [{ fanSession: [] }],
    responses: { 200: jsonResponse(z.object({ tickets: z.array(myTicketSchema) }), "Your tickets, by event date then seat."), ...errorResponses(401) },
  }),
  async (c) => {
    const found = await findTickets(c.var.db, { accountId: c.var.fan.accountId });
    const json = await Promise.all(found.map((ticket) => myTicketJson(c.env.TOKEN_SIGNING_KEY, ticket)));
    c.header("Cache-Control", "no-store");
    return c.json({ tickets: json }, 200);
  },
);

tickets.openapi(
  createRoute({
    method: "get",
    path: "/me/tickets/{ticketId}",
    summary: "One of your tickets with its QR code",
    security: [{ fanSession: [] }],
    request: { params: z.object({ ticketId: z.uuid().openapi({ param: { name: "ticketId", in: "path" } }) }) },
    responses: { 200: jsonResponse(z.object({ ticket: myTicketSchema }), "The ticket."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const [ticket] = await findTickets(c.var.db, { accountId: c.var.fan.accountId, ticketId: c.req.valid("param").ticketId });
    if (!ticket) throw notFound("Ticket");
    c.header("Cache-Control", "no-store");
    return c.json({ ticket: await myTicketJson(c.env.TOKEN_SIGNING_KEY, ticket) }, 200);
  },
);

// ------------------------------------------------------------------ door staff: check-in

/** Door staff's routes. Mounted at /admin, after the admin group whose middleware authenticates the organizer. */
export const ticketsAdmin = routeGroup();

// Fail closed if this group is ever mounted where the organizer middleware does not run.
// (Only on its own paths: a "*" here would apply to every /admin route, the public docs included.)
ticketsAdmin.use("/events/:id/check-in", async (c, next) => {
  if (!c.get("organizer")) throw unauthorized();
  return next();
});

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
        status: ticketStatus,
        checkedInAt: z.string().nullable().openapi({ description: "The first scan's time." }),
        place: placeSchema,
        label: z.string(),
      })
      .optional(),
  })
  .openapi("CheckIn");

ticketsAdmin.openapi(
  createRoute({
    method: "post",
    path: "/events/{id}/check-in",
    summary: "Check a scanned ticket in at the door",
    description:
      "Always 200 with a verdict for a well-formed request: `valid` admits (the ticket is now checked in), `already_scanned` carries the first scan's time, " +
      "`invalid` has a reason (expired or forged token, another event's ticket, unknown or void ticket). Of concurrent scans of one ticket exactly one is `valid`.",
    request: {
      params: z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) }),
      body: jsonBody(z.strictObject({ token: z.string().trim().min(1).max(4096).openapi({ description: "The QR code's content." }) })),
    },
    responses: { 200: jsonResponse(checkInSchema, "The verdict."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const [event] = await c.var.db
      .select({ id: events.id })
      .from(events)
      .where(and(eq(events.id, id), eq(events.organizerId, c.var.organizer.id)));
    if (!event) throw notFound("Event");
    const verdict = await checkIn(c.var.db, c.env.TOKEN_SIGNING_KEY, id, c.req.valid("json").token);
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
