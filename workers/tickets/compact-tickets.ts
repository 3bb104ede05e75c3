/**
 * Compact ticket codes (core/tickets/compact-token.ts) signed and verified
 * with our key ring: what "my tickets" and the emails put in the QR code,
 * and what the door accepts beside the JWT.
 */
import { compactCode, compactPayload, keyIdOf, verifyCompactCode, type CompactFailure, type CompactTicket } from "../../core/tickets/compact-token";
import { publicJwks, signBytes, signingKid } from "../platform/signed-tokens";
import { eventEnd, type IssuedTicket } from "./issued-tickets";
import { TICKET_GRACE_MS } from "./ticket-tokens";

/** The compact code of an issued ticket: valid until a day after its event ends, like its JWT. */
export async function signCompactTicket(signingKey: string | undefined, ticket: IssuedTicket): Promise<string> {
  const expiresAt = new Date(eventEnd(ticket.event).getTime() + TICKET_GRACE_MS);
  const keyId = await keyIdOf(await signingKid(signingKey));
  const payload = compactPayload({ ticketId: ticket.id, eventId: ticket.eventId, place: ticket.place, expiresAt }, keyId);
  return compactCode(payload, await signBytes(signingKey, payload));
}

/** Verifies a compact code against our published keys. */
export async function verifyCompactTicket(
  signingKey: string | undefined,
  code: string,
): Promise<{ ok: true; ticket: CompactTicket } | { ok: false; reason: CompactFailure }> {
  return verifyCompactCode(code, await publicJwks(signingKey));
}
