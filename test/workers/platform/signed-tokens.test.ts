/**
 * ECDSA malleability (issue 13, finding 8): (r, n - s) verifies wherever
 * (r, s) does. Our tokens are signed with the low S, and a high-S copy of a
 * valid token is refused, by the verifier and by the fan routes.
 */
import { env } from "cloudflare:test";
import { base64url } from "jose";
import { describe, expect, it } from "vitest";
import { hasHighS, verifyToken } from "../../../workers/platform/signed-tokens";
import { FAN_SESSION_AUDIENCE, signFanSession } from "../../../workers/sign-in/fan-session";
import { expectApiError, rawRequest } from "../../fixtures/http";

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The token with its signature's S replaced by n - S: the other valid spelling of the same signature. */
function otherS(token: string): string {
  const [header, payload, signature = ""] = token.split(".");
  const bytes = base64url.decode(signature);
  const s = BigInt(`0x${Array.from(bytes.subarray(32), (b) => b.toString(16).padStart(2, "0")).join("")}`);
  const flipped = (P256_ORDER - s).toString(16).padStart(64, "0");
  for (let i = 0; i < 32; i++) bytes[32 + i] = parseInt(flipped.slice(2 * i, 2 * i + 2), 16);
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}

describe("ES256 signatures in low-S form", () => {
  it("signs every token with the low S (WebCrypto alone gives the high one about half the time)", async () => {
    const tokens = await Promise.all(Array.from({ length: 64 }, () => signFanSession(env.TOKEN_SIGNING_KEY, crypto.randomUUID())));
    expect(tokens.filter(hasHighS)).toEqual([]);
    for (const token of tokens) expect(hasHighS(otherS(token))).toBe(true);
  });

  it("refuses the high-S copy of a valid token, in the verifier and on a fan route", async () => {
    const accountId = crypto.randomUUID();
    const token = await signFanSession(env.TOKEN_SIGNING_KEY, accountId);
    const copy = otherS(token);
    expect((await verifyToken(env.TOKEN_SIGNING_KEY, token, FAN_SESSION_AUDIENCE)).sub).toBe(accountId);
    await expect(verifyToken(env.TOKEN_SIGNING_KEY, copy, FAN_SESSION_AUDIENCE)).rejects.toThrow();

    expect((await rawRequest("/api/me/tickets", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expectApiError(await rawRequest("/api/me/tickets", { headers: { Authorization: `Bearer ${copy}` } }), 401, "invalid_token");
  });
});
