/** Audiences of the waiting room's signed tokens (see workers/tokens.ts). */
import { signToken } from "../tokens";

/** The lobby ticket: proof of lobby entry carrying the fan's order key (`key`) for one event (`eid`). */
export const LOBBY_AUDIENCE = "lobby";
/** The admission token: lets one account (`sub`) book one event (`eid`) for 15 minutes; its id is the attempt key. */
export const ADMISSION_AUDIENCE = "admission";

/** Signs a fan's admission token for one event; `admissionId` becomes the jti (the inventory's attempt key). */
export function signAdmissionToken(
  signingKey: string | undefined,
  admission: { accountId: string; eventId: string; admissionId: string; expiresAt: number },
): Promise<string> {
  return signToken(signingKey, {
    audience: ADMISSION_AUDIENCE,
    subject: admission.accountId,
    jti: admission.admissionId,
    ttlSeconds: Math.max(1, Math.floor((admission.expiresAt - Date.now()) / 1000)),
    claims: { eid: admission.eventId },
  });
}
