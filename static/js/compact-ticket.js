// Compact ticket codes: reading and verifying them, the one implementation the
// door scanner (offline, in the browser) and the Worker's check-in both run
// (core/tickets/compact-token.ts re-exports it with its types, from
// compact-ticket.d.ts, and adds the signing half; it documents the format).

/** RFC 9285's alphabet: every character is in the QR alphanumeric mode. */
export const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
export const VERSION = 1;
export const EVENT_ID_PREFIX_BYTES = 4;
export const SIGNATURE_BYTES = 64;
export const FIXED_BYTES = 1 + 1 + 16 + EVENT_ID_PREFIX_BYTES + 4 + 1;
export const PLACE_SEPARATOR = "\u001f";
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
export const P256_HALF_ORDER = P256_ORDER >> 1n;
const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

/** True when `text` can only be a compact code (a JWT has lower-case letters). */
export function isCompactCode(text) {
  return text.length > 0 && [...text].every((char) => BASE45.includes(char));
}

/** Whether a verified code's event prefix is that of `eventId`. */
export function isForEvent(ticket, eventId) {
  return eventId.replaceAll("-", "").toLowerCase().slice(0, 2 * EVENT_ID_PREFIX_BYTES) === ticket.eventIdPrefix;
}

/** RFC 9285 decoding; undefined for text that is not base45. */
export function base45Decode(text) {
  if (text.length % 3 === 1) return undefined;
  const out = [];
  for (let i = 0; i < text.length; i += 3) {
    const chunk = text.slice(i, i + 3);
    let n = 0;
    for (let k = chunk.length - 1; k >= 0; k--) {
      const value = BASE45.indexOf(chunk[k]);
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

export const hex = (bytes) => [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");

function uuidText(bytes) {
  const d = hex(bytes);
  return `${d.slice(0, 8)}-${d.slice(8, 12)}-${d.slice(12, 16)}-${d.slice(16, 20)}-${d.slice(20)}`;
}

/** Reads a code without verifying it; undefined when it is not a well-formed compact code. */
export function parseCompactCode(code) {
  const bytes = base45Decode(code);
  if (!bytes || bytes.length < FIXED_BYTES + SIGNATURE_BYTES || bytes[0] !== VERSION) return undefined;
  const placeLength = bytes[FIXED_BYTES - 1];
  if (bytes.length !== FIXED_BYTES + placeLength + SIGNATURE_BYTES) return undefined;
  const payload = bytes.subarray(0, FIXED_BYTES + placeLength);
  let placeText;
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
      keyId: bytes[1],
    },
  };
}

/** The key id byte of a `kid`: the first byte of its SHA-256. */
export async function keyIdOf(kid) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(kid)))[0];
}

const isP256PublicJwk = (jwk) =>
  typeof jwk === "object" && jwk !== null && jwk.kty === "EC" && jwk.crv === "P-256" && typeof jwk.kid === "string" && typeof jwk.x === "string" && typeof jwk.y === "string";

/**
 * Verifies a code against a JWKS (the published one, or a door's cached copy): a
 * P-256 key whose kid has the code's key id byte must verify its signature (in the
 * low-S form: a high-S copy is refused, so a code has one accepted form), and it
 * must not have expired at `now`. { ok: true, ticket } or { ok: false, reason:
 * "expired" | "bad_token" }.
 */
export async function verifyCompactCode(code, jwks, now = new Date()) {
  const parsed = parseCompactCode(code);
  if (!parsed || BigInt(`0x${hex(parsed.signature.subarray(32))}`) > P256_HALF_ORDER) return { ok: false, reason: "bad_token" };
  for (const jwk of jwks.keys ?? []) {
    if (!isP256PublicJwk(jwk) || (await keyIdOf(jwk.kid)) !== parsed.ticket.keyId) continue;
    const key = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, ECDSA, false, ["verify"]);
    if (!(await crypto.subtle.verify(ECDSA, key, parsed.signature, parsed.payload))) continue;
    return parsed.ticket.expiresAt.getTime() <= now.getTime() ? { ok: false, reason: "expired" } : { ok: true, ticket: parsed.ticket };
  }
  return { ok: false, reason: "bad_token" };
}
