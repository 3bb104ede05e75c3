/** Fans' e-tickets ("my tickets"), each with its signed JWT, its compact code and the code's QR. */
import { z } from "@hono/zod-openapi";
import { notFound } from "../../../core/errors";
import { requireFan } from "../../middleware/require-fan";
import { ORDER_STATUSES } from "../../refunds/orders";
import { placeJson, placeSchema, ticketStatusSchema } from "../../tickets/http-mapping";
import { signCompactTicket } from "../../tickets/compact-tickets";
import { findTickets, placeLabel, signIssuedTicket, type IssuedTicket } from "../../tickets/issued-tickets";
import { ticketQrSvg } from "../../tickets/qr-codes";
import { errorResponses, fanRoute, jsonResponse, pathId } from "../openapi";
import { routeGroup } from "../route-group";

export const tickets = routeGroup();

tickets.use("/me/tickets", requireFan());
tickets.use("/me/tickets/*", requireFan());

const myTicketSchema = z
  .object({
    id: z.uuid(),
    orderId: z.uuid(),
    status: ticketStatusSchema,
    orderStatus: z.enum(ORDER_STATUSES).openapi({ description: "The order's status: a void ticket's order was refunded, cancelled with its event, or disputed with the bank." }),
    checkedInAt: z.string().nullable(),
    event: z.object({ id: z.uuid(), name: z.string(), startsAt: z.string(), endsAt: z.string().nullable(), venue: z.string() }),
    place: placeSchema,
    label: z.string().openapi({ example: "Section A, Row 3, Seat 12" }),
    token: z.string().nullable().openapi({ description: "The ticket as a signed JWT (ES256, verifiable with /.well-known/jwks.json), for integrations; null for a void ticket." }),
    code: z
      .string()
      .nullable()
      .openapi({ description: "The compact signed code the QR code holds (base45, verifiable offline with /.well-known/jwks.json; format in the README); null for a void ticket." }),
    qrSvg: z.string().nullable().openapi({ description: "The compact code as a QR code, an SVG document; null for a void ticket." }),
  })
  .openapi("MyTicket");

async function myTicketJson(signingKey: string | undefined, ticket: IssuedTicket): Promise<z.infer<typeof myTicketSchema>> {
  const live = ticket.status !== "void";
  const token = live ? await signIssuedTicket(signingKey, ticket) : null;
  const code = live ? await signCompactTicket(signingKey, ticket) : null;
  return {
    id: ticket.id,
    orderId: ticket.orderId,
    status: ticket.status,
    orderStatus: ticket.orderStatus,
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
    code,
    qrSvg: code === null ? null : await ticketQrSvg(code),
  };
}

tickets.openapi(
  fanRoute({
    method: "get",
    path: "/me/tickets",
    summary: "Your tickets, across events, with their QR codes",
    responses: { 200: jsonResponse(z.object({ tickets: z.array(myTicketSchema) }), "Your tickets, by event date then seat."), ...errorResponses(401) },
  }),
  async (c) => {
    const found = await findTickets(c.var.db, { accountId: c.var.fan.accountId });
    const json = await Promise.all(found.map((ticket) => myTicketJson(c.env.TOKEN_SIGNING_KEY, ticket)));
    return c.json({ tickets: json }, 200);
  },
);

tickets.openapi(
  fanRoute({
    method: "get",
    path: "/me/tickets/{ticketId}",
    summary: "One of your tickets with its QR code",
    request: { params: z.object({ ticketId: pathId("ticketId") }) },
    responses: { 200: jsonResponse(z.object({ ticket: myTicketSchema }), "The ticket."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const [ticket] = await findTickets(c.var.db, { accountId: c.var.fan.accountId, ticketId: c.req.valid("param").ticketId });
    if (!ticket) throw notFound("Ticket");
    return c.json({ ticket: await myTicketJson(c.env.TOKEN_SIGNING_KEY, ticket) }, 200);
  },
);
