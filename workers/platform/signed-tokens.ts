/**
 * Signed tokens (jose), under two key sets from the environment, each a JWK
 * or a JWK set whose first key signs and whose every key verifies (rotation
 * by kid):
 * - `TOKEN_SIGNING_KEY`, ES256 private keys: fan sessions, lobby tickets and
 *   tickets. Their public keys are the JWKS, so anyone can verify a ticket
 *   offline.
 * - `ADMISSION_TOKEN_KEY`, HS256 secrets: admission tokens, which only our
 *   Workers issue and check, on every hold. An HMAC costs a few µs where an
 *   ECDSA verification costs ~75 µs of workerd CPU (`npm run bench -- tokens`).
 *
 * ECDSA signatures are malleable: (r, n - s) verifies wherever (r, s) does,
 * so every ES256 token has a second valid spelling. Tokens are signed with the
 * low S (WebCrypto picks either) and a high-S copy is refused (issue 13,
 * finding 8), so a token has exactly one accepted form.
 */
import { base64url, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from "jose";
import { ConfigError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { toHex } from "./hex-digest";

const ISSUER = "edge-tickets";

/** One of the two key sets: its algorithm and the setting that holds it. */
interface Scheme {
  alg: "ES256" | "HS256";
  setting: "TOKEN_SIGNING_KEY" | "ADMISSION_TOKEN_KEY";
  /** What a key of the set must be, for the error that names the setting. */
  wanted: string;
  /** Whether a JWK of the set is usable (beyond having a kid); `signing`: as the set's first key, which signs. */
  accepts(jwk: JWK, signing: boolean): boolean;
  /** The key that verifies, from the stored JWK; undefined: verify with the signing key itself. */
  verifyingJwk(jwk: JWK): JWK | undefined;
}

/** HS256 keys shorter than the hash are refused (RFC 7518 §3.2). */
const MIN_MAC_KEY_BYTES = 32;

const ES256: Scheme = {
  alg: "ES256",
  setting: "TOKEN_SIGNING_KEY",
  wanted: "an ES256 private JWK with a kid",
  // Keys after the first only verify: a retired key may be kept as its public half.
  accepts: (jwk, signing) => jwk.kty === "EC" && jwk.crv === "P-256" && (!signing || typeof jwk.d === "string"),
  verifyingJwk: ({ d: _private, ...publicJwk }) => publicJwk,
};

const HS256: Scheme = {
  alg: "HS256",
  setting: "ADMISSION_TOKEN_KEY",
  wanted: `an HS256 secret JWK (kty "oct", at least ${MIN_MAC_KEY_BYTES} bytes) with a kid`,
  accepts: (jwk) => jwk.kty === "oct" && typeof jwk.k === "string" && base64urlBytes(jwk.k) >= MIN_MAC_KEY_BYTES,
  verifyingJwk: () => undefined,
};

interface KeyRing {
  signing: { kid: string; key: CryptoKey };
  verifying: Map<string, CryptoKey>;
  /** ES256 only: the public keys, for the JWKS. */
  publicJwks: JWK[];
}

/** Imported key rings by setting value (a rotation brings a second one), per scheme. */
const rings = { ES256: new IsolateCache<string, Promise<KeyRing>>(8), HS256: new IsolateCache<string, Promise<KeyRing>>(8) };

function parseKeys(raw: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  return typeof parsed === "object" && parsed !== null && "keys" in parsed && Array.isArray(parsed.keys) ? parsed.keys : [parsed];
}

function isKeyWithKid(value: unknown): value is JWK & { kid: string } {
  return typeof value === "object" && value !== null && "kty" in value && "kid" in value && typeof value.kid === "string" && value.kid !== "";
}

async function importKey(scheme: Scheme, jwk: JWK): Promise<CryptoKey> {
  const key = await importJWK({ ...jwk, alg: scheme.alg }, scheme.alg);
  if (!(key instanceof Uint8Array)) return key;
  // jose hands an HMAC secret back as bytes and would import them again on every call: import them once, here.
  return crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

async function buildRing(scheme: Scheme, raw: string): Promise<KeyRing> {
  const jwks = parseKeys(raw);
  const usable = jwks.filter(isKeyWithKid).filter((jwk, i) => scheme.accepts(jwk, i === 0));
  const first = usable[0];
  // Every key must be usable: a set with a broken key would fail later, on the token that names it.
  if (!first || usable.length !== jwks.length) throw new ConfigError([`${scheme.setting} (${scheme.wanted})`]);
  const signing = { kid: first.kid, key: await importKey(scheme, first) };
  const verifying = new Map<string, CryptoKey>();
  const publicJwks: JWK[] = [];
  for (const jwk of usable) {
    const publicJwk = scheme.verifyingJwk(jwk);
    verifying.set(jwk.kid, publicJwk ? await importKey(scheme, publicJwk) : await importKey(scheme, jwk));
    if (publicJwk) publicJwks.push({ ...publicJwk, alg: scheme.alg, use: "sig" });
  }
  return { signing, verifying, publicJwks };
}

function ringOf(scheme: Scheme, raw: string | undefined): Promise<KeyRing> {
  if (!raw) return Promise.reject(new ConfigError([scheme.setting]));
  const cache = rings[scheme.alg];
  let ring = cache.get(raw);
  if (!ring) {
    ring = buildRing(scheme, raw);
    cache.set(raw, ring);
    ring.catch(() => cache.delete(raw));
  }
  return ring;
}

/** What a token says beyond issuer and expiry. */
export interface TokenContents {
  audience: string;
  subject: string;
  ttlSeconds: number;
  claims?: Record<string, unknown>;
  jti?: string;
}

async function sign(scheme: Scheme, raw: string | undefined, contents: TokenContents): Promise<string> {
  const ring = await ringOf(scheme, raw);
  return new SignJWT(contents.claims ?? {})
    .setProtectedHeader({ alg: scheme.alg, kid: ring.signing.kid, typ: "JWT" })
    .setIssuer(ISSUER)
    .setAudience(contents.audience)
    .setSubject(contents.subject)
    .setJti(contents.jti ?? crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + contents.ttlSeconds)
    .sign(ring.signing.key)
    .then(withLowS);
}

/** Verified claims: always a subject and a token id. */
export type VerifiedClaims = JWTPayload & { sub: string; jti: string };

/** A key set to verify with: its scheme, the setting's value, and the audience its tokens must have. */
interface Verifier {
  scheme: Scheme;
  raw: string | undefined;
  audience: string | string[];
}

/**
 * Verifies a token with the verifier its header's alg names (one parse of
 * the token), then checks the audience is that verifier's: a token of one
 * set never passes for a token of the other.
 */
async function verify(verifiers: Verifier[], token: string): Promise<VerifiedClaims & { alg: Scheme["alg"] }> {
  let used: Verifier | undefined;
  const { payload } = await jwtVerify(
    token,
    async (header) => {
      used = verifiers.find((v) => v.scheme.alg === header.alg);
      if (!used) throw new Error("unexpected algorithm");
      // Only an ECDSA signature has two forms (an HS256 admission token, checked on every hold, skips the decode).
      if (used.scheme.alg === "ES256" && hasHighS(token)) throw new Error("signature not in low-S form");
      const key = header.kid ? (await ringOf(used.scheme, used.raw)).verifying.get(header.kid) : undefined;
      if (!key) throw new Error("unknown key id");
      return key;
    },
    { algorithms: verifiers.map((v) => v.scheme.alg), issuer: ISSUER, audience: verifiers.flatMap((v) => v.audience), currentDate: new Date() },
  );
  if (!used) throw new Error("no key set verified the token");
  const wanted = [used.audience].flat();
  if (![payload.aud ?? []].flat().some((aud) => wanted.includes(aud))) throw new Error("token for another audience");
  if (typeof payload.sub !== "string" || typeof payload.jti !== "string") throw new Error("token lacks sub or jti");
  return { ...payload, sub: payload.sub, jti: payload.jti, alg: used.scheme.alg };
}

/** Signs an ES256 token (`TOKEN_SIGNING_KEY`) for `audience` about `subject`. */
export function signToken(raw: string | undefined, contents: TokenContents): Promise<string> {
  return sign(ES256, raw, contents);
}

/** Verifies an ES256 token for `audience`; throws on anything wrong (signature, alg, kid, expiry, audience), a `ConfigError` when the key is missing. */
export function verifyToken(raw: string | undefined, token: string, audience: string | string[]): Promise<VerifiedClaims> {
  return verify([{ scheme: ES256, raw, audience }], token);
}

/** Signs an HS256 token (`ADMISSION_TOKEN_KEY`) for `audience` about `subject`. */
export function signMacToken(raw: string | undefined, contents: TokenContents): Promise<string> {
  return sign(HS256, raw, contents);
}

/**
 * Verifies an ES256 token (`TOKEN_SIGNING_KEY`) for `es256Audience` or an
 * HS256 one (`ADMISSION_TOKEN_KEY`) for `hs256Audience`, whichever the
 * header names; `alg` says which it was.
 */
export async function verifyEitherToken(
  keys: { es256: string | undefined; hs256: string | undefined },
  token: string,
  audiences: { es256: string; hs256: string },
): Promise<VerifiedClaims & { alg: "ES256" | "HS256" }> {
  return verify(
    [
      { scheme: ES256, raw: keys.es256, audience: audiences.es256 },
      { scheme: HS256, raw: keys.hs256, audience: audiences.hs256 },
    ],
    token,
  );
}

/**
 * The kid of the ES256 signing key (`TOKEN_SIGNING_KEY`'s first key), for formats smaller than a JWT (compact
 * ticket codes) that name their key and are signed with `signBytes`: raw R and S (64 bytes, S as WebCrypto gave it).
 */
export async function signingKid(raw: string | undefined): Promise<string> {
  return (await ringOf(ES256, raw)).signing.kid;
}

/** Signs raw bytes with the ES256 signing key; see `signingKid`. */
export async function signBytes(raw: string | undefined, data: Uint8Array): Promise<Uint8Array> {
  const { signing } = await ringOf(ES256, raw);
  return new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, signing.key, data));
}

/** The ES256 keys' public halves, for `/.well-known/jwks.json` (HS256 secrets are never published). */
export async function publicJwks(raw: string | undefined): Promise<{ keys: JWK[] }> {
  return { keys: (await ringOf(ES256, raw)).publicJwks };
}

function base64urlBytes(value: string): number {
  return Math.floor((value.replace(/=+$/, "").length * 3) / 4);
}

// ------------------------------------------------------------------ low S

/** The order of P-256, and half of it: a signature's S above the half is the high form. */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_ORDER = P256_ORDER >> 1n;
/** An ES256 JWS signature is R and S, 32 bytes each. */
const SCALAR_BYTES = 32;

/** The signature's S, or undefined when the token has no well-formed ES256 signature (verification then refuses it). */
function signatureS(token: string): bigint | undefined {
  const signature = token.split(".")[2];
  if (signature === undefined) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(signature);
  } catch {
    return undefined;
  }
  if (bytes.length !== 2 * SCALAR_BYTES) return undefined;
  return BigInt(`0x${toHex(bytes.subarray(SCALAR_BYTES).slice().buffer)}`);
}

/** True for a token whose ECDSA signature uses the high S. */
export function hasHighS(token: string): boolean {
  const s = signatureS(token);
  return s !== undefined && s > P256_HALF_ORDER;
}

/** The same token with its signature's S in the low form (n - s when high): it verifies the same. */
function withLowS(token: string): string {
  const s = signatureS(token);
  if (s === undefined || s <= P256_HALF_ORDER) return token;
  const [header, payload, signature = ""] = token.split(".");
  const bytes = base64url.decode(signature);
  const low = (P256_ORDER - s).toString(16).padStart(2 * SCALAR_BYTES, "0");
  for (let i = 0; i < SCALAR_BYTES; i++) bytes[SCALAR_BYTES + i] = parseInt(low.slice(2 * i, 2 * i + 2), 16);
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}
