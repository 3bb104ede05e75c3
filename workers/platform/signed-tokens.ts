/**
 * Signed tokens (jose, ES256). `TOKEN_SIGNING_KEY` holds a private JWK, or a
 * JWK set whose first key signs and whose every key verifies (rotation by kid).
 *
 * ECDSA signatures are malleable: (r, n - s) verifies wherever (r, s) does,
 * so every token has a second valid spelling. Tokens are signed with the low
 * S (WebCrypto picks either) and a high-S copy is refused (issue 13, finding 8),
 * so a token has exactly one accepted form.
 */
import { base64url, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from "jose";
import { ConfigError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { toHex } from "./hex-digest";

const ISSUER = "edge-tickets";
const ALG = "ES256";

interface KeyRing {
  signing: { kid: string; key: CryptoKey };
  verifying: Map<string, CryptoKey>;
  publicJwks: JWK[];
}

/** Imported key rings by `TOKEN_SIGNING_KEY` value (a rotation brings a second one). */
const rings = new IsolateCache<string, Promise<KeyRing>>(8);

function parseKeys(raw: string): JWK[] {
  const parsed: unknown = JSON.parse(raw);
  const keys = typeof parsed === "object" && parsed !== null && "keys" in parsed && Array.isArray(parsed.keys) ? parsed.keys : [parsed];
  return keys.filter((k): k is JWK => typeof k === "object" && k !== null && "kty" in k && "kid" in k && typeof k.kid === "string");
}

async function buildRing(raw: string): Promise<KeyRing> {
  const jwks = parseKeys(raw);
  const first = jwks[0];
  if (!first?.kid) throw new ConfigError(["TOKEN_SIGNING_KEY (an ES256 private JWK with a kid)"]);
  const verifying = new Map<string, CryptoKey>();
  const publicJwks: JWK[] = [];
  for (const jwk of jwks) {
    const { d: _private, ...publicJwk } = jwk;
    const publicKey = await importJWK({ ...publicJwk, alg: ALG }, ALG);
    if (publicKey instanceof Uint8Array) throw new ConfigError(["TOKEN_SIGNING_KEY (asymmetric keys only)"]);
    verifying.set(jwk.kid ?? "", publicKey);
    publicJwks.push({ ...publicJwk, alg: ALG, use: "sig" });
  }
  const signingKey = await importJWK({ ...first, alg: ALG }, ALG);
  if (signingKey instanceof Uint8Array) throw new ConfigError(["TOKEN_SIGNING_KEY (asymmetric keys only)"]);
  return { signing: { kid: first.kid, key: signingKey }, verifying, publicJwks };
}

/** The imported keys for a `TOKEN_SIGNING_KEY` value, imported once per isolate. */
export function keyRing(raw: string | undefined): Promise<KeyRing> {
  if (!raw) throw new ConfigError(["TOKEN_SIGNING_KEY"]);
  let ring = rings.get(raw);
  if (!ring) {
    ring = buildRing(raw);
    rings.set(raw, ring);
    ring.catch(() => rings.delete(raw));
  }
  return ring;
}

/** Signs a token for `audience` about `subject`. */
export async function signToken(
  raw: string | undefined,
  options: { audience: string; subject: string; ttlSeconds: number; claims?: Record<string, unknown>; jti?: string },
): Promise<string> {
  const ring = await keyRing(raw);
  return new SignJWT(options.claims ?? {})
    .setProtectedHeader({ alg: ALG, kid: ring.signing.kid, typ: "JWT" })
    .setIssuer(ISSUER)
    .setAudience(options.audience)
    .setSubject(options.subject)
    .setJti(options.jti ?? crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds)
    .sign(ring.signing.key)
    .then(withLowS);
}

/** Verifies a token for `audience`; throws on anything wrong (signature, alg, kid, expiry, audience). */
export async function verifyToken(raw: string | undefined, token: string, audience: string | string[]): Promise<JWTPayload & { sub: string; jti: string }> {
  const ring = await keyRing(raw);
  if (hasHighS(token)) throw new Error("signature not in low-S form");
  const { payload } = await jwtVerify(
    token,
    async (header) => {
      const key = header.kid ? ring.verifying.get(header.kid) : undefined;
      if (!key) throw new Error("unknown key id");
      return key;
    },
    { algorithms: [ALG], issuer: ISSUER, audience, currentDate: new Date() },
  );
  if (typeof payload.sub !== "string" || typeof payload.jti !== "string") throw new Error("token lacks sub or jti");
  return { ...payload, sub: payload.sub, jti: payload.jti };
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

/** The public keys, for `/.well-known/jwks.json`. */
export async function publicJwks(raw: string | undefined): Promise<{ keys: JWK[] }> {
  return { keys: (await keyRing(raw)).publicJwks };
}
