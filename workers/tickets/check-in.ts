/** Door check-in: a scanned ticket token admits once. */
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { orders, tickets } from "../../core/db/schema";
import { isCompactCode, isForEvent } from "../../core/tickets/compact-token";
import { verifyCompactTicket } from "./compact-tickets";
import { findTickets, type IssuedTicket } from "./issued-tickets";
import { verifyTicketToken, type TicketTokenFailure } from "./ticket-tokens";

/** Why a scan does not admit: see `checkIn`. */
export type CheckInRefusal = TicketTokenFailure | "other_event" | "unknown_ticket" | "void";

/** A door scan's verdict. */
export type CheckInResult =
  | { result: "valid"; ticket: IssuedTicket }
  | { result: "already_scanned"; ticket: IssuedTicket }
  | { result: "invalid"; reason: CheckInRefusal; ticket?: IssuedTicket };

/** Where and when a door scanned a code (the door scanner's sync): the ticket's check-in time is the scan's (never later than now). */
export interface DoorScan {
  doorId: string;
  scannedAt: Date;
}

/** A synced scan's verdict, and for a ticket another door checked in first, that door's scan: the one that won. */
export type SyncedScan = CheckInResult & { conflict?: { doorId: string | null; scannedAt: Date | null } };

/**
 * Checks in the scans a door queued (while offline, or one at a time online), in the order given. Each is `checkIn`
 * with the door and scan time; the first scan of a ticket to reach us wins. A scan of a ticket already checked in by
 * another door (or by a scan that named no door) is a conflict: both doors may have let someone in, and the answer names
 * the winning scan. A scan this door already synced (a retry after a lost answer) is `already_scanned` without conflict.
 */
export async function checkInScans(
  db: Db,
  signingKey: string | undefined,
  eventId: string,
  doorId: string,
  scans: { code: string; scannedAt: Date }[],
): Promise<SyncedScan[]> {
  const results: SyncedScan[] = [];
  for (const scan of scans) {
    const verdict = await checkIn(db, signingKey, eventId, scan.code, { doorId, scannedAt: scan.scannedAt });
    const winner = verdict.ticket;
    results.push(
      verdict.result === "already_scanned" && winner && winner.checkedInDoor !== doorId
        ? { ...verdict, conflict: { doorId: winner.checkedInDoor, scannedAt: winner.checkedInAt } }
        : verdict,
    );
  }
  return results;
}

/** A scanned code, verified: the ticket it names, whether it is for the event, and its holder (JWTs name one; compact codes need not). */
type ScannedTicket = { ok: true; ticketId: string; holderAccountId: string | undefined; isForEvent(eventId: string): boolean } | { ok: false; reason: TicketTokenFailure };

/**
 * Verifies what the door scanned: a compact code (core/tickets/compact-token.ts; base45, where a leading space
 * is a digit, so only the end is trimmed) or a ticket JWT (trimmed).
 */
async function verifyScan(signingKey: string | undefined, scanned: string): Promise<ScannedTicket> {
  const compact = scanned.trimEnd();
  if (isCompactCode(compact)) {
    const verified = await verifyCompactTicket(signingKey, compact);
    if (!verified.ok) return verified;
    const { ticket } = verified;
    return { ok: true, ticketId: ticket.ticketId, holderAccountId: undefined, isForEvent: (eventId) => isForEvent(ticket, eventId) };
  }
  const verified = await verifyTicketToken(signingKey, scanned.trim());
  if (!verified.ok) return verified;
  const { claims } = verified;
  return { ok: true, ticketId: claims.ticketId, holderAccountId: claims.holderAccountId, isForEvent: (eventId) => claims.eventId === eventId };
}

/**
 * Checks a scanned code in at `eventId`: a compact code or a ticket JWT. The first scan of a live ticket
 * flips it to checked_in with one conditional UPDATE, so of any number of
 * concurrent scans exactly one is "valid"; later scans are "already_scanned"
 * with the first scan's time. "invalid": the code is expired or not ours
 * (`bad_token`), is for another event, names no ticket (of that holder, for a JWT) at this
 * event, or the ticket was voided (or its order refunded or cancelled). Only a "valid" verdict changes anything.
 */
export async function checkIn(db: Db, signingKey: string | undefined, eventId: string, token: string, door?: DoorScan): Promise<CheckInResult> {
  const scanned = await verifyScan(signingKey, token);
  if (!scanned.ok) return { result: "invalid", reason: scanned.reason };
  if (!scanned.isForEvent(eventId)) return { result: "invalid", reason: "other_event" };
  const { ticketId, holderAccountId } = scanned;
  const admitted = await db
    .update(tickets)
    .set({ status: "checked_in", checkedInAt: door ? sql`least(${door.scannedAt.toISOString()}::timestamptz, now())` : sql`now()`, checkedInDoor: door?.doorId ?? null })
    .where(
      and(
        eq(tickets.id, ticketId),
        eq(tickets.eventId, eventId),
        holderAccountId === undefined ? undefined : eq(tickets.accountId, holderAccountId),
        eq(tickets.status, "valid"),
        sql`exists (select 1 from ${orders} where ${orders.id} = ${tickets.orderId} and ${orders.status} = 'confirmed')`,
      ),
    )
    .returning({ id: tickets.id });
  const [ticket] = await findTickets(db, { ticketId, eventId });
  if (!ticket || (holderAccountId !== undefined && ticket.holderAccountId !== holderAccountId)) return { result: "invalid", reason: "unknown_ticket" };
  if (admitted.length > 0) return { result: "valid", ticket };
  if (ticket.status === "checked_in") return { result: "already_scanned", ticket };
  return { result: "invalid", reason: "void", ticket };
}
