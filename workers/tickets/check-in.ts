/** Door check-in: a scanned ticket token admits once. */
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { orders, tickets } from "../../core/db/schema";
import { findTickets, type IssuedTicket } from "./issued-tickets";
import { verifyTicketToken, type TicketTokenFailure } from "./ticket-tokens";

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
