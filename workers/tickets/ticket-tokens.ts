/**
 * The signed ticket token: a JWT (ES256, our key ring, audience "ticket")
 * whose subject is the holder's account and whose id is the ticket's id. It names
 * the event (`eid`) and the place: `seat: { section, row, seat }` for a seat,
 * `ga: "<section>"` for general admission. It expires a day after the event
 * ends, and anyone holding `/.well-known/jwks.json` can verify it offline.
 * Whether it was already scanned or voided is state only the check-in
 * endpoint knows.
 */
import { errors as joseErrors } from "jose";
import { z } from "zod";
import { signToken, verifyToken } from "../platform/signed-tokens";

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
