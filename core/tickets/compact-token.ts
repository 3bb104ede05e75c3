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
 * static/js/compact-ticket.js is this module's verifying half for the door
 * page (no build step); test/static/compact-ticket.test.ts holds both to the
 * same vectors.
 */

/** The format's version, the code's first byte. */
export const COMPACT_TICKET_VERSION = 1;
/** Bytes of the event id a code carries. */
export const EVENT_ID_PREFIX_BYTES = 4;
const SIGNATURE_BYTES = 64;
const FIXED_BYTES = 1 + 1 + 16 + EVENT_ID_PREFIX_BYTES + 4 + 1;
const PLACE_SEPARATOR = "\u001f";
const MAX_PLACE_BYTES = 255;
/** RFC 9285's alphabet: every character is in the QR alphanumeric mode. */
const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_ORDER = P256_ORDER >> 1n;
const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Where a ticket admits to: a seat, or a general-admission section. */
export type CompactPlace = { section: string; row: string; seat: string } | { section: string; ga: true };

/** What a compact code says. */
export interface CompactTicket {
  ticketId: string;
  /** The event id's first 8 hex digits (see `isForEvent`). */
  eventIdPrefix: string;
  place: CompactPlace;
  expiresAt: Date;
  /** The first byte of SHA-256 of the signing key's kid. */
  keyId: number;
}

/** What signing a compact code needs. */
export interface CompactTicketFields {
  ticketId: string;
  eventId: string;
  place: CompactPlace;
  expiresAt: Date;
}

/** Why a code was refused: expired, or not ours (forged, tampered, garbled, unknown key). */
export type CompactFailure = "expired" | "bad_token";

/** True when `text` can only be a compact code (a JWT has lower-case letters). */
export function isCompactCode(text: string): boolean {
  return text.length > 0 && [...text].every((char) => BASE45.includes(char));
}

/** Whether a code's event prefix is that of `eventId`. */
export function isForEvent(ticket: CompactTicket, eventId: string): boolean {
  return eventId.replaceAll("-", "").toLowerCase().slice(0, 2 * EVENT_ID_PREFIX_BYTES) === ticket.eventIdPrefix;
}

/** The key id byte of a `kid`: the first byte of its SHA-256. */
export async function keyIdOf(kid: string): Promise<number> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(kid)))[0] ?? 0;
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

/** Reads a code without verifying it; undefined when it is not a well-formed compact code. */
export function parseCompactCode(code: string): { payload: Uint8Array; signature: Uint8Array; ticket: CompactTicket } | undefined {
  const bytes = base45Decode(code);
  if (!bytes || bytes.length < FIXED_BYTES + SIGNATURE_BYTES || bytes[0] !== COMPACT_TICKET_VERSION) return undefined;
  const placeLength = bytes[FIXED_BYTES - 1] ?? 0;
  if (bytes.length !== FIXED_BYTES + placeLength + SIGNATURE_BYTES) return undefined;
  const payload = bytes.subarray(0, FIXED_BYTES + placeLength);
  let placeText: string;
  try {
    placeText = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(payload.subarray(FIXED_BYTES));
  } catch {
    return undefined;
  }
  const parts = placeText.split(PLACE_SEPARATOR);
  const [section = "", row = "", seat = ""] = parts;
  if (section === "" || (parts.length !== 1 && parts.length !== 3)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    payload,
    signature: bytes.subarray(payload.length),
    ticket: {
      ticketId: uuidText(bytes.subarray(2, 18)),
      eventIdPrefix: hex(bytes.subarray(18, 18 + EVENT_ID_PREFIX_BYTES)),
      place: parts.length === 1 ? { section, ga: true } : { section, row, seat },
      expiresAt: new Date(view.getUint32(18 + EVENT_ID_PREFIX_BYTES) * 1000),
      keyId: bytes[1] ?? 0,
    },
  };
}

/**
 * Verifies a code against a JWKS (the published one, or a door's cached copy):
 * a P-256 key whose kid has the code's key id byte must verify its signature
 * (in the low-S form), and it must not have expired at `now`.
 */
export async function verifyCompactCode(
  code: string,
  jwks: { keys: readonly unknown[] },
  now: Date = new Date(),
): Promise<{ ok: true; ticket: CompactTicket } | { ok: false; reason: CompactFailure }> {
  const parsed = parseCompactCode(code);
  if (!parsed || isHighS(parsed.signature)) return { ok: false, reason: "bad_token" };
  for (const jwk of jwks.keys) {
    if (!isP256PublicJwk(jwk) || (await keyIdOf(jwk.kid)) !== parsed.ticket.keyId) continue;
    const key = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, ECDSA, false, ["verify"]);
    if (!(await crypto.subtle.verify(ECDSA, key, parsed.signature, parsed.payload))) continue;
    return parsed.ticket.expiresAt.getTime() <= now.getTime() ? { ok: false, reason: "expired" } : { ok: true, ticket: parsed.ticket };
  }
  return { ok: false, reason: "bad_token" };
}

function isP256PublicJwk(value: unknown): value is { kid: string; x: string; y: string } {
  if (typeof value !== "object" || value === null) return false;
  const jwk: Record<string, unknown> = { ...value };
  return jwk.kty === "EC" && jwk.crv === "P-256" && typeof jwk.kid === "string" && typeof jwk.x === "string" && typeof jwk.y === "string";
}

// ------------------------------------------------------------------ bytes

function uuidBytes(uuid: string): Uint8Array {
  const digits = uuid.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(digits)) throw new Error(`not a UUID: ${uuid}`);
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(digits.slice(2 * i, 2 * i + 2), 16));
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function uuidText(bytes: Uint8Array): string {
  const digits = hex(bytes);
  return `${digits.slice(0, 8)}-${digits.slice(8, 12)}-${digits.slice(12, 16)}-${digits.slice(16, 20)}-${digits.slice(20)}`;
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

/** RFC 9285 decoding; undefined for text that is not base45. */
export function base45Decode(text: string): Uint8Array | undefined {
  if (text.length % 3 === 1) return undefined;
  const out: number[] = [];
  for (let i = 0; i < text.length; i += 3) {
    const chunk = text.slice(i, i + 3);
    let n = 0;
    for (let k = chunk.length - 1; k >= 0; k--) {
      const value = BASE45.indexOf(chunk[k] ?? "");
      if (value < 0) return undefined;
      n = n * 45 + value;
    }
    if (chunk.length === 3) {
      if (n > 0xffff) return undefined;
      out.push(n >> 8, n & 0xff);
    } else {
      if (n > 0xff) return undefined;
      out.push(n);
    }
  }
  return Uint8Array.from(out);
}

// ------------------------------------------------------------------ low S

function scalar(bytes: Uint8Array): bigint {
  return BigInt(`0x${hex(bytes) || "0"}`);
}

function isHighS(signature: Uint8Array): boolean {
  return scalar(signature.subarray(32)) > P256_HALF_ORDER;
}

/** The signature with S replaced by n - S when S is high: it verifies the same. */
function withLowS(signature: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_BYTES) throw new Error("an ES256 signature is 64 bytes");
  if (!isHighS(signature)) return signature;
  const low = (P256_ORDER - scalar(signature.subarray(32))).toString(16).padStart(64, "0");
  const out = signature.slice();
  for (let i = 0; i < 32; i++) out[32 + i] = parseInt(low.slice(2 * i, 2 * i + 2), 16);
  return out;
}
