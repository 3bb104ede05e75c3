/**
 * The waiting room's signed tokens (see platform/signed-tokens.ts): lobby
 * tickets (ES256, `TOKEN_SIGNING_KEY`) and admission tokens (HS256,
 * `ADMISSION_TOKEN_KEY`: checked on every hold, by our Workers only).
 */
import { signMacToken, signToken, verifyToken, type TokenContents } from "../platform/signed-tokens";

/** The lobby ticket: proof of lobby entry carrying the fan's order key (`key`) for one event (`eid`). */
export const LOBBY_AUDIENCE = "lobby";
/** The admission token: lets one account (`sub`) book one event (`eid`) for 15 minutes; its id is the attempt key. */
export const ADMISSION_AUDIENCE = "admission";

/** Signs a fan's admission token for one event with `ADMISSION_TOKEN_KEY`; `admissionId` becomes the jti (the inventory's attempt key). */
export function signAdmissionToken(
  admissionKey: string | undefined,
  admission: { accountId: string; eventId: string; admissionId: string; expiresAt: number },
): Promise<string> {
  const ttlSeconds = Math.max(1, Math.floor((admission.expiresAt - Date.now()) / 1000));
  return signMacToken(admissionKey, eventTokenContents(ADMISSION_AUDIENCE, admission, ttlSeconds, { jti: admission.admissionId }));
}

/** Signs a lobby ticket: the fan's order key at one event, valid until the sale ends (a minute at least). */
export function signLobbyTicket(
  signingKey: string | undefined,
  ticket: { accountId: string; eventId: string; orderKey: number; saleEndsAt: number },
): Promise<string> {
  const ttlSeconds = Math.max(60, Math.ceil((ticket.saleEndsAt - Date.now()) / 1000));
  return signToken(signingKey, eventTokenContents(LOBBY_AUDIENCE, ticket, ttlSeconds, { claims: { key: ticket.orderKey } }));
}

/** A waiting-room token: about one account (`sub`) at one event (`eid`). */
function eventTokenContents(
  audience: string,
  holder: { accountId: string; eventId: string },
  ttlSeconds: number,
  extra: { jti?: string; claims?: Record<string, unknown> },
): TokenContents {
  return { audience, subject: holder.accountId, jti: extra.jti, ttlSeconds, claims: { eid: holder.eventId, ...extra.claims } };
}

/** The order key a lobby ticket carries; throws when it is invalid, expired, or for another event or account. */
export async function lobbyOrderKey(signingKey: string | undefined, ticket: string, holder: { accountId: string; eventId: string }): Promise<number> {
  const claims = await verifyToken(signingKey, ticket, LOBBY_AUDIENCE);
  if (claims.eid !== holder.eventId || claims.sub !== holder.accountId || typeof claims.key !== "number") throw new Error("ticket for another event or account");
  return claims.key;
}
