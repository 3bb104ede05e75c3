/**
 * Admission tokens are HS256 under `ADMISSION_TOKEN_KEY` (only our Workers
 * issue and check them); fan sessions, lobby tickets and tickets stay ES256
 * under `TOKEN_SIGNING_KEY`, whose public keys alone are published. Each key
 * set verifies only its own kind of token, rotates by kid (the first key
 * signs, all verify), and a missing or unusable key fails the request with
 * 500 `misconfigured` naming the setting, never a 401 blaming the fan.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { base64url, decodeProtectedHeader, generateSecret, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { generateAdmissionKey } from "../../../dev/signing-key";
import { app } from "../../../workers/app";
import { publicJwks, signMacToken, signToken } from "../../../workers/platform/signed-tokens";
import { FAN_SESSION_AUDIENCE, signFanSession, verifyFanToken, type FanTokenKeys } from "../../../workers/sign-in/fan-session";
import { ADMISSION_AUDIENCE, signAdmissionToken } from "../../../workers/waiting-room/tokens";
import { ORIGIN } from "../../fixtures/http";

const keys: FanTokenKeys = { TOKEN_SIGNING_KEY: env.TOKEN_SIGNING_KEY, ADMISSION_TOKEN_KEY: env.ADMISSION_TOKEN_KEY };

function admission(admissionKey: string | undefined, overrides: { eventId?: string } = {}) {
  return signAdmissionToken(admissionKey, {
    accountId: crypto.randomUUID(),
    eventId: overrides.eventId ?? crypto.randomUUID(),
    admissionId: crypto.randomUUID(),
    expiresAt: Date.now() + 15 * 60_000,
  });
}

/** Whether `verifyFanToken` accepts the token with these keys. */
async function accepted(token: string, with_: FanTokenKeys = keys): Promise<boolean> {
  return verifyFanToken(with_, token).then(
    () => true,
    () => false,
  );
}

/** The Worker's answer to a best-available hold with `token`, under `workerEnv`. */
async function holdWith(workerEnv: Env, token: string): Promise<{ status: number; body: unknown }> {
  const ctx = createExecutionContext();
  const response = await app.fetch(
    new Request(`${ORIGIN}/api/events/${crypto.randomUUID()}/holds/best`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ requestId: crypto.randomUUID(), quantity: 1 }),
    }),
    workerEnv,
    ctx,
  );
  const body: unknown = await response.json();
  await waitOnExecutionContext(ctx);
  return { status: response.status, body };
}

describe("admission tokens", () => {
  it("are HS256 under ADMISSION_TOKEN_KEY's kid and name the account, event and attempt key", async () => {
    const eventId = crypto.randomUUID();
    const token = await admission(env.ADMISSION_TOKEN_KEY, { eventId });
    const kid = JSON.parse(env.ADMISSION_TOKEN_KEY).kid;
    expect(decodeProtectedHeader(token)).toEqual({ alg: "HS256", kid, typ: "JWT" });
    const { identity } = await verifyFanToken(keys, token);
    expect(identity.admittedEventId).toBe(eventId);
  });

  it("are never published: the JWKS holds only the ES256 public keys", async () => {
    const { keys: published } = await publicJwks(env.TOKEN_SIGNING_KEY);
    expect(published.length).toBeGreaterThan(0);
    for (const jwk of published) {
      expect(jwk).toMatchObject({ kty: "EC", alg: "ES256", use: "sig" });
      expect(jwk).not.toHaveProperty("d");
      expect(jwk).not.toHaveProperty("k");
    }
    expect(JSON.stringify(published)).not.toContain(JSON.parse(env.ADMISSION_TOKEN_KEY).k);
  });

  it("refuse forged, confused, cross-kind, unsigned, tampered and expired tokens", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: "edge-tickets", aud: ADMISSION_AUDIENCE, sub: crypto.randomUUID(), jti: crypto.randomUUID(), eid: crypto.randomUUID(), iat: now, exp: now + 600 };
    const kid = JSON.parse(env.ADMISSION_TOKEN_KEY).kid;
    const otherSecret = await generateSecret("HS256");
    const hs256 = (secret: Uint8Array | CryptoKey, header: { kid: string }) => new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT", ...header }).sign(secret);
    const signingPublic = (await publicJwks(env.TOKEN_SIGNING_KEY)).keys[0];
    const genuine = await admission(env.ADMISSION_TOKEN_KEY);
    const [header, payload, signature] = genuine.split(".");
    const refused: [string, string][] = [
      ["another secret under our kid", await hs256(otherSecret, { kid })],
      ["an unknown kid", await hs256(otherSecret, { kid: "someone-elses" })],
      // The algorithm-confusion attack: HMAC keyed with the published ES256 key.
      ["keyed with the public JWK", await hs256(new TextEncoder().encode(JSON.stringify(signingPublic)), { kid: signingPublic?.kid ?? kid })],
      // Each key set verifies only its own kind: an ES256 "admission" and an HS256 "session" are both refused.
      ["an ES256 admission", await signToken(env.TOKEN_SIGNING_KEY, { audience: ADMISSION_AUDIENCE, subject: claims.sub, ttlSeconds: 600, claims: { eid: claims.eid } })],
      ["an HS256 session", await signMacToken(env.ADMISSION_TOKEN_KEY, { audience: FAN_SESSION_AUDIENCE, subject: claims.sub, ttlSeconds: 600 })],
      ["an admission without an event", await signMacToken(env.ADMISSION_TOKEN_KEY, { audience: ADMISSION_AUDIENCE, subject: claims.sub, ttlSeconds: 600 })],
      ["alg none", `${base64url.encode(JSON.stringify({ alg: "none", kid }))}.${payload}.`],
      ["tampered payload", `${header}.${base64url.encode(JSON.stringify({ ...claims, eid: crypto.randomUUID() }))}.${signature}`],
      ["expired", await signMacToken(env.ADMISSION_TOKEN_KEY, { audience: ADMISSION_AUDIENCE, subject: claims.sub, ttlSeconds: -5, claims: { eid: claims.eid } })],
      ["not a JWT", "not.a.jwt"],
    ];
    for (const [name, token] of refused) expect(await accepted(token), name).toBe(false);
    expect(await accepted(genuine)).toBe(true);
    // Sessions are unaffected: still ES256, still accepted.
    const session = await signFanSession(env.TOKEN_SIGNING_KEY, crypto.randomUUID());
    expect(decodeProtectedHeader(session).alg).toBe("ES256");
    expect(await accepted(session)).toBe(true);
  });

  it("rotate like the signing key: the first key of a set signs, every key verifies, a dropped key stops verifying", async () => {
    const old = await generateAdmissionKey("admission-old");
    const fresh = await generateAdmissionKey("admission-new");
    const beforeRotation = await admission(old);
    const rotated = JSON.stringify({ keys: [JSON.parse(fresh), JSON.parse(old)] });
    const afterRotation = await admission(rotated);
    expect(decodeProtectedHeader(afterRotation).kid).toBe("admission-new");
    const during = { ...keys, ADMISSION_TOKEN_KEY: rotated };
    expect(await accepted(beforeRotation, during)).toBe(true);
    expect(await accepted(afterRotation, during)).toBe(true);
    const after = { ...keys, ADMISSION_TOKEN_KEY: fresh };
    expect(await accepted(beforeRotation, after)).toBe(false);
    expect(await accepted(afterRotation, after)).toBe(true);
  });
});

describe("a missing or unusable ADMISSION_TOKEN_KEY", () => {
  const shortSecret = JSON.stringify({ kty: "oct", kid: "short", k: base64url.encode(new Uint8Array(16)) });
  const ecKey = env.TOKEN_SIGNING_KEY;
  it.each([
    ["missing", ""],
    ["not JSON", "hunter2"],
    ["a 16-byte secret", shortSecret],
    ["an EC key", ecKey],
    ["a set with a broken key", JSON.stringify({ keys: [JSON.parse(env.ADMISSION_TOKEN_KEY), { kty: "oct", kid: "no-secret" }] })],
  ])("(%s) fails holds with 500 misconfigured naming it, and issuing admissions too", async (_name, value) => {
    const misconfigured: Env = { ...env, ADMISSION_TOKEN_KEY: value };
    const token = await admission(env.ADMISSION_TOKEN_KEY);
    const { status, body } = await holdWith(misconfigured, token);
    expect(status).toBe(500);
    expect(body).toMatchObject({ error: { code: "misconfigured" } });
    expect(JSON.stringify(body)).toContain("ADMISSION_TOKEN_KEY");
    const signing = await admission(value).then(
      () => "signed",
      (error: unknown) => String(error),
    );
    expect(signing).toContain("ADMISSION_TOKEN_KEY");
  });

  it("does not stop fan sessions: a session still authenticates (and the unknown event is a 404)", async () => {
    const session = await signFanSession(env.TOKEN_SIGNING_KEY, crypto.randomUUID());
    const { status, body } = await holdWith({ ...env, ADMISSION_TOKEN_KEY: "" }, session);
    expect(status, JSON.stringify(body)).toBe(404);
  });
});
