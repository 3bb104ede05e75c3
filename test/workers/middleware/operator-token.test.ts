/**
 * `/ops` takes exactly the operator token (issue 13, finding 8: it compares
 * SHA-256 digests in constant time, so no length leaks through an early
 * return). Every near miss is refused alike: shorter, longer, a prefix, one
 * character off, another case.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { expectApiError, rawRequest } from "../../fixtures/http";

const replay = (token: string) => rawRequest("/ops/dead-letters/replay", { method: "POST", headers: { Authorization: `Bearer ${token}` } });

describe("the operator token", () => {
  it("is refused in every near-miss form, and accepted exactly", async () => {
    const token = env.OPS_TOKEN;
    const nearMisses = [token.slice(0, 4), token.slice(0, -1), `${token}x`, `${token}${token}`, token.toUpperCase(), `${token.slice(0, -1)}${token.endsWith("a") ? "b" : "a"}`, "x"];
    for (const wrong of nearMisses) expectApiError(await replay(wrong), 401, "unauthorized");
    const right = await replay(token);
    expect(right.status, right.text).not.toBe(401);
  });
});
