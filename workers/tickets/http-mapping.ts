/** How tickets look on the wire: the place and status schemas shared by "my tickets" and door check-in. */
import { z } from "@hono/zod-openapi";
import type { IssuedTicket } from "./issued-tickets";

/** Where a ticket admits to, on the wire. */
export const placeSchema = z
  .object({
    section: z.string().openapi({ description: "The section's label, as printed in the venue." }),
    sectionName: z.string(),
    row: z.string().nullable(),
    seat: z.string().nullable(),
    generalAdmission: z.boolean(),
  })
  .openapi("TicketPlace");

/** A ticket's place as JSON. */
export function placeJson(ticket: IssuedTicket): z.infer<typeof placeSchema> {
  const place = ticket.place;
  return "ga" in place
    ? { section: place.section, sectionName: ticket.sectionName, row: null, seat: null, generalAdmission: true }
    : { section: place.section, sectionName: ticket.sectionName, row: place.row, seat: place.seat, generalAdmission: false };
}

/** A ticket's status on the wire. */
export const ticketStatusSchema = z.enum(["valid", "checked_in", "void"]);
