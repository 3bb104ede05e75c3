/**
 * Signed tokens (jose, ES256). `TOKEN_SIGNING_KEY` holds a private JWK, or a
 * JWK set whose first key signs and whose every key verifies (rotation by kid).
 */
import { importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from "jose";
import { ConfigError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";

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
    .sign(ring.signing.key);
}

/** Verifies a token for `audience`; throws on anything wrong (signature, alg, kid, expiry, audience). */
export async function verifyToken(raw: string | undefined, token: string, audience: string | string[]): Promise<JWTPayload & { sub: string; jti: string }> {
  const ring = await keyRing(raw);
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

/** The public keys, for `/.well-known/jwks.json`. */
export async function publicJwks(raw: string | undefined): Promise<{ keys: JWK[] }> {
  return { keys: (await keyRing(raw)).publicJwks };
}
