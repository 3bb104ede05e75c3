/**
 * E-tickets: the signed ticket token, its QR code, and issued tickets as
 * fans and door staff see them.
 *
 * A ticket token is a JWT (ES256, our key ring, audience "ticket") whose
 * subject is the holder's account and whose id is the ticket's id. It names
 * the event (`eid`) and the place: `seat: { section, row, seat }` for a seat,
 * `ga: "<section>"` for general admission. It expires a day after the event
 * ends, and anyone holding `/.well-known/jwks.json` can verify it offline.
 * Whether it was already scanned or voided is state only the check-in
 * endpoint knows.
 */
import { and, asc, eq, sql, type SQL } from "drizzle-orm";
import { errors as joseErrors } from "jose";
import { PNG } from "pngjs";
import QRCode from "qrcode";
import { z } from "zod";
import type { Db } from "../core/db/client";
import { events, orders, seatRows, seats, sections, tickets, venues } from "../core/db/schema";
import { signToken, verifyToken } from "./tokens";

/** The audience of ticket tokens. */
export const TICKET_AUDIENCE = "ticket";
/** Tokens stay valid this long after the event ends (late doors, disputes). */
export const TICKET_GRACE_MS = 86_400_000;

/** Where a ticket admits to: a seat, or a general-admission section. */
export type TicketPlace = { section: string; row: string; seat: string } | { section: string; ga: true };

/** What a ticket token says. */
export interface TicketClaims {
  ticketId: string;
  holderAccountId: string;
  eventId: string;
  place: TicketPlace;
  expiresAt: Date;
}

/** What signing a ticket token needs to know. */
export interface TicketToSign {
  id: string;
  eventId: string;
  holderAccountId: string;
  place: TicketPlace;
  /** When the event ends (its start when it has no end). */
  eventEndsAt: Date;
}

/** Signs a ticket's token: valid until a day after its event ends. */
export function signTicketToken(signingKey: string | undefined, ticket: TicketToSign): Promise<string> {
  const expiresAtSeconds = Math.floor((ticket.eventEndsAt.getTime() + TICKET_GRACE_MS) / 1000);
  const place = "ga" in ticket.place ? { ga: ticket.place.section } : { seat: { section: ticket.place.section, row: ticket.place.row, seat: ticket.place.seat } };
  return signToken(signingKey, {
    audience: TICKET_AUDIENCE,
    subject: ticket.holderAccountId,
    jti: ticket.id,
    ttlSeconds: expiresAtSeconds - Math.floor(Date.now() / 1000),
    claims: { eid: ticket.eventId, ...place },
  });
}

const ticketClaimsSchema = z
  .object({
    sub: z.uuid(),
    jti: z.uuid(),
    eid: z.uuid(),
    exp: z.number(),
    seat: z.object({ section: z.string(), row: z.string(), seat: z.string() }).optional(),
    ga: z.string().optional(),
  })
  .refine((claims) => (claims.seat === undefined) !== (claims.ga === undefined), "a ticket names a seat or a general-admission section");

/** Why a ticket token was refused: it has expired, or it is not one of ours (forged, tampered, garbled, wrong audience). */
export type TicketTokenFailure = "expired" | "bad_token";

/** Verifies a ticket token's signature, audience and expiry, and reads its claims. */
export async function verifyTicketToken(
  signingKey: string | undefined,
  token: string,
): Promise<{ ok: true; claims: TicketClaims } | { ok: false; reason: TicketTokenFailure }> {
  let payload: unknown;
  try {
    payload = await verifyToken(signingKey, token, TICKET_AUDIENCE);
  } catch (error) {
    return { ok: false, reason: error instanceof joseErrors.JWTExpired ? "expired" : "bad_token" };
  }
  const parsed = ticketClaimsSchema.safeParse(payload);
  if (!parsed.success) return { ok: false, reason: "bad_token" };
  const claims = parsed.data;
  const place: TicketPlace = claims.seat ?? { section: claims.ga ?? "", ga: true };
  return { ok: true, claims: { ticketId: claims.jti, holderAccountId: claims.sub, eventId: claims.eid, place, expiresAt: new Date(claims.exp * 1000) } };
}

// ------------------------------------------------------------------ QR codes

/** Medium error correction: survives a scuffed phone screen without making the code much denser. */
const QR_OPTIONS = { errorCorrectionLevel: "M", margin: 4 } as const;
/** Pixels per QR module in the PNG: about 350 px for a ticket token, crisp on paper and screens. */
const PNG_SCALE = 4;

/** The token as a QR code, an SVG document (for the app). */
export function ticketQrSvg(token: string): Promise<string> {
  return QRCode.toString(token, { ...QR_OPTIONS, type: "svg" });
}

/**
 * The token as a QR code, a PNG `data:` URL and its width in pixels (for
 * email). Encoded by qrcode; drawn with pngjs because qrcode's own PNG
 * renderer is in its Node build and its browser build needs a canvas.
 */
export function ticketQrPng(token: string): { dataUrl: string; size: number } {
  const modules = QRCode.create(token, QR_OPTIONS).modules;
  const margin = QR_OPTIONS.margin;
  const side = (modules.size + 2 * margin) * PNG_SCALE;
  const png = new PNG({ width: side, height: side, colorType: 0, inputHasAlpha: true });
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const row = Math.floor(y / PNG_SCALE) - margin;
      const col = Math.floor(x / PNG_SCALE) - margin;
      const dark = row >= 0 && col >= 0 && row < modules.size && col < modules.size && modules.get(row, col) === 1;
      const offset = (y * side + x) * 4;
      png.data.fill(dark ? 0 : 255, offset, offset + 3);
      png.data[offset + 3] = 255;
    }
  }
  return { dataUrl: `data:image/png;base64,${PNG.sync.write(png).toString("base64")}`, size: side };
}

// ------------------------------------------------------------------ issued tickets

/** A ticket as stored, with its event and the labels of its place. */
export interface IssuedTicket {
  id: string;
  orderId: string;
  eventId: string;
  holderAccountId: string;
  status: "valid" | "checked_in" | "void";
  checkedInAt: Date | null;
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
      checkedInAt: tickets.checkedInAt,
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
    checkedInAt: row.checkedInAt,
    // A seat always has labels; the fallbacks only keep a broken chart from blocking delivery.
    place: row.seatIndex === null ? { section: row.sectionLabel, ga: true } : { section: row.sectionLabel, row: row.rowLabel ?? "?", seat: row.seatLabel ?? `#${row.seatIndex}` },
    sectionName: row.sectionName,
    event: { name: row.eventName, startsAt: row.startsAt, endsAt: row.endsAt, venueName: row.venueName, timezone: row.timezone },
  }));
}

// ------------------------------------------------------------------ check-in

/** Why a scan does not admit: see `checkIn`. */
export type CheckInRefusal = TicketTokenFailure | "other_event" | "unknown_ticket" | "void";

/** A door scan's verdict. */
export type CheckInResult =
  | { result: "valid"; ticket: IssuedTicket }
  | { result: "already_scanned"; ticket: IssuedTicket }
  | { result: "invalid"; reason: CheckInRefusal; ticket?: IssuedTicket };

/**
 * Checks a scanned token in at `eventId`. The first scan of a live ticket
 * flips it to checked_in with one conditional UPDATE, so of any number of
 * concurrent scans exactly one is "valid"; later scans are "already_scanned"
 * with the first scan's time. "invalid": the token is expired or not ours
 * (`bad_token`), is for another event, names no ticket of that holder at this
 * event, or the ticket was voided (or its order refunded or cancelled).
 */
export async function checkIn(db: Db, signingKey: string | undefined, eventId: string, token: string): Promise<CheckInResult> {
  const verified = await verifyTicketToken(signingKey, token);
  if (!verified.ok) return { result: "invalid", reason: verified.reason };
  const { claims } = verified;
  if (claims.eventId !== eventId) return { result: "invalid", reason: "other_event" };
  const admitted = await db
    .update(tickets)
    .set({ status: "checked_in", checkedInAt: sql`now()` })
    .where(
      and(
        eq(tickets.id, claims.ticketId),
        eq(tickets.eventId, eventId),
        eq(tickets.accountId, claims.holderAccountId),
        eq(tickets.status, "valid"),
        sql`exists (select 1 from ${orders} where ${orders.id} = ${tickets.orderId} and ${orders.status} = 'confirmed')`,
      ),
    )
    .returning({ id: tickets.id });
  const [ticket] = await findTickets(db, { ticketId: claims.ticketId, eventId });
  if (!ticket || ticket.holderAccountId !== claims.holderAccountId) return { result: "invalid", reason: "unknown_ticket" };
  if (admitted.length > 0) return { result: "valid", ticket };
  if (ticket.status === "checked_in") return { result: "already_scanned", ticket };
  return { result: "invalid", reason: "void", ticket };
}
