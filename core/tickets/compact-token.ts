/**
 * The compact signed ticket: what a ticket's QR code holds, small enough for
 * a low-version code that a door scanner reads easily off a phone screen,
 * and verifiable offline against `/.well-known/jwks.json` like the JWT.
 *
 * Bytes (big-endian), then RFC 9285 base45, all in the QR alphanumeric set:
 *
 * | bytes | what |
 * |---|---|
 * | 1 | version, 1 |
 * | 1 | key id: the first byte of SHA-256 of the signing key's `kid` |
 * | 16 | ticket id (UUID) |
 * | 4 | the event id's first 4 bytes |
 * | 4 | expiry, Unix seconds |
 * | 1 | place length n |
 * | n | place, UTF-8: the section, or section, row and seat separated by U+001F |
 * | 64 | ES256 signature of every byte above: raw R and S, S in its low form |
 *
 * A ticket id is unique, so the holder is not in the code (the door does not
 * need it). 4 bytes of event id tell one event's codes from another's offline
 * (a genuine ticket of another event passes a door's offline check only if its
 * event id shares them: 1 in 4 billion); the server checks in by ticket id and
 * the full event id. With a place of up to 11 bytes ("114", "AA", "23") a code
 * is at most 102 bytes, 153 characters: a version-6 QR code (41 modules) at error
 * correction M, where the ticket JWT takes version 17 (85 modules). A high-S copy of a
 * signature is refused, so a code has one accepted form.
 *
 * Reading and verifying are static/js/compact-ticket.js, the one
 * implementation the door page (no build step) and the Worker's check-in both
 * run, re-exported here with its types; this module adds the signing half.
 */

import {
  BASE45,
  EVENT_ID_PREFIX_BYTES,
  FIXED_BYTES,
  hex,
  P256_HALF_ORDER,
  P256_ORDER,
  PLACE_SEPARATOR,
  SIGNATURE_BYTES,
  VERSION,
  type CompactPlace,
} from "../../static/js/compact-ticket.js";

export {
  base45Decode,
  EVENT_ID_PREFIX_BYTES,
  isCompactCode,
  isForEvent,
  keyIdOf,
  parseCompactCode,
  verifyCompactCode,
  type CompactFailure,
  type CompactPlace,
  type CompactTicket,
} from "../../static/js/compact-ticket.js";

/** The format's version, the code's first byte. */
export const COMPACT_TICKET_VERSION = VERSION;
const MAX_PLACE_BYTES = 255;

/** What signing a compact code needs. */
export interface CompactTicketFields {
  ticketId: string;
  eventId: string;
  place: CompactPlace;
  expiresAt: Date;
}

/** The bytes a code signs. Throws for a place too long for the format. */
export function compactPayload(fields: CompactTicketFields, keyId: number): Uint8Array {
  const place = new TextEncoder().encode("ga" in fields.place ? fields.place.section : [fields.place.section, fields.place.row, fields.place.seat].join(PLACE_SEPARATOR));
  if (place.length > MAX_PLACE_BYTES) throw new Error("a ticket's place is too long for a compact code");
  const bytes = new Uint8Array(FIXED_BYTES + place.length);
  const view = new DataView(bytes.buffer);
  bytes[0] = COMPACT_TICKET_VERSION;
  bytes[1] = keyId;
  bytes.set(uuidBytes(fields.ticketId), 2);
  bytes.set(uuidBytes(fields.eventId).subarray(0, EVENT_ID_PREFIX_BYTES), 18);
  view.setUint32(18 + EVENT_ID_PREFIX_BYTES, Math.floor(fields.expiresAt.getTime() / 1000));
  bytes[FIXED_BYTES - 1] = place.length;
  bytes.set(place, FIXED_BYTES);
  return bytes;
}

/** The code: payload and signature (its S made low), base45. */
export function compactCode(payload: Uint8Array, signature: Uint8Array): string {
  const bytes = new Uint8Array(payload.length + SIGNATURE_BYTES);
  bytes.set(payload);
  bytes.set(withLowS(signature), payload.length);
  return base45Encode(bytes);
}

function uuidBytes(uuid: string): Uint8Array {
  const digits = uuid.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(digits)) throw new Error(`not a UUID: ${uuid}`);
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(digits.slice(2 * i, 2 * i + 2), 16));
}

/** RFC 9285: each 2 bytes as 3 characters (the last single byte as 2), least significant first. */
export function base45Encode(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 2) {
    const pair = i + 1 < bytes.length;
    let n = pair ? (bytes[i] ?? 0) * 256 + (bytes[i + 1] ?? 0) : (bytes[i] ?? 0);
    for (let k = 0; k < (pair ? 3 : 2); k++) {
      out += BASE45[n % 45];
      n = Math.floor(n / 45);
    }
  }
  return out;
}

/** The signature with S replaced by n - S when S is high: it verifies the same. */
function withLowS(signature: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_BYTES) throw new Error("an ES256 signature is 64 bytes");
  const s = BigInt(`0x${hex(signature.subarray(32)) || "0"}`);
  if (s <= P256_HALF_ORDER) return signature;
  const low = (P256_ORDER - s).toString(16).padStart(64, "0");
  const out = signature.slice();
  for (let i = 0; i < 32; i++) out[32 + i] = parseInt(low.slice(2 * i, 2 * i + 2), 16);
  return out;
}
