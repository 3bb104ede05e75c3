/** Issued tickets (written by the sales consumer) as fans and door staff see them, with their event and place labels. */
import { and, asc, eq, type SQL } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { events, orders, seatRows, seats, sections, tickets, venues } from "../../core/db/schema";
import { signTicketToken, type TicketPlace } from "./ticket-tokens";

/** A ticket as stored, with its event and the labels of its place. */
export interface IssuedTicket {
  id: string;
  orderId: string;
  eventId: string;
  holderAccountId: string;
  status: "valid" | "checked_in" | "void";
  /** Its order's status: why a ticket is void (refunded, cancelled, disputed). */
  orderStatus: (typeof orders.$inferSelect)["status"];
  checkedInAt: Date | null;
  /** The door that checked it in, when the scan named one. */
  checkedInDoor: string | null;
  place: TicketPlace;
  sectionName: string;
  event: { name: string; startsAt: Date; endsAt: Date | null; venueName: string; timezone: string };
}

/** When an event is over, for token expiry: its end, or its start when it has none. */
export function eventEnd(event: { startsAt: Date; endsAt: Date | null }): Date {
  return event.endsAt ?? event.startsAt;
}

/** "Section A, Row 3, Seat 12" or "Section PIT, general admission". */
export function placeLabel(place: TicketPlace): string {
  return "ga" in place ? `Section ${place.section}, general admission` : `Section ${place.section}, Row ${place.row}, Seat ${place.seat}`;
}

/** The token for an issued ticket. */
export function signIssuedTicket(signingKey: string | undefined, ticket: IssuedTicket): Promise<string> {
  return signTicketToken(signingKey, {
    id: ticket.id,
    eventId: ticket.eventId,
    holderAccountId: ticket.holderAccountId,
    place: ticket.place,
    eventEndsAt: eventEnd(ticket.event),
  });
}

/**
 * Tickets matching every given filter, with their event and place labels,
 * ordered by event date then position in the venue.
 */
export async function findTickets(db: Db, filter: { accountId?: string; orderId?: string; ticketId?: string; eventId?: string }): Promise<IssuedTicket[]> {
  const conditions: SQL[] = [];
  if (filter.accountId !== undefined) conditions.push(eq(tickets.accountId, filter.accountId));
  if (filter.orderId !== undefined) conditions.push(eq(tickets.orderId, filter.orderId));
  if (filter.ticketId !== undefined) conditions.push(eq(tickets.id, filter.ticketId));
  if (filter.eventId !== undefined) conditions.push(eq(tickets.eventId, filter.eventId));
  if (conditions.length === 0) throw new Error("findTickets needs a filter");
  const rows = await db
    .select({
      id: tickets.id,
      orderId: tickets.orderId,
      eventId: tickets.eventId,
      holderAccountId: tickets.accountId,
      status: tickets.status,
      orderStatus: orders.status,
      checkedInAt: tickets.checkedInAt,
      checkedInDoor: tickets.checkedInDoor,
      seatIndex: tickets.seatIndex,
      sectionLabel: sections.label,
      sectionName: sections.name,
      rowLabel: seatRows.label,
      seatLabel: seats.label,
      eventName: events.name,
      startsAt: events.startsAt,
      endsAt: events.endsAt,
      venueName: venues.name,
      timezone: venues.timezone,
    })
    .from(tickets)
    .innerJoin(orders, eq(orders.id, tickets.orderId))
    .innerJoin(events, eq(events.id, tickets.eventId))
    .innerJoin(venues, eq(venues.id, events.venueId))
    .innerJoin(sections, eq(sections.id, tickets.sectionId))
    .leftJoin(seats, and(eq(seats.venueId, events.venueId), eq(seats.seatIndex, tickets.seatIndex)))
    .leftJoin(seatRows, eq(seatRows.id, seats.rowId))
    .where(and(...conditions))
    .orderBy(asc(events.startsAt), asc(events.id), asc(sections.sortOrder), asc(seatRows.sortOrder), asc(seats.position), asc(tickets.id));
  return rows.map((row) => ({
    id: row.id,
    orderId: row.orderId,
    eventId: row.eventId,
    holderAccountId: row.holderAccountId,
    status: row.status,
    orderStatus: row.orderStatus,
    checkedInAt: row.checkedInAt,
    checkedInDoor: row.checkedInDoor,
    // A seat always has labels; the fallbacks only keep a broken chart from blocking delivery.
    place: row.seatIndex === null ? { section: row.sectionLabel, ga: true } : { section: row.sectionLabel, row: row.rowLabel ?? "?", seat: row.seatLabel ?? `#${row.seatIndex}` },
    sectionName: row.sectionName,
    event: { name: row.eventName, startsAt: row.startsAt, endsAt: row.endsAt, venueName: row.venueName, timezone: row.timezone },
  }));
}
