/**
 * Security headers (issue 13, finding 5) on what the Worker answers: API
 * answers (success and error alike) cannot be framed, sniffed or leak the
 * page's address, and carry a CSP that runs nothing. The pages' own headers
 * (static/_headers) are checked in the browser (test/browser/security-headers.test.ts).
 */
import { describe, expect, it } from "vitest";
import { openEvent } from "../../fixtures/seeding";
import { rawRequest, type ReadResponse } from "../../fixtures/http";

function expectApiSecurityHeaders(response: ReadResponse): void {
  const csp = response.headers.get("Content-Security-Policy") ?? "";
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(response.headers.get("X-Frame-Options")).toBe("DENY");
  expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
  expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
  expect(response.headers.get("Strict-Transport-Security")).toMatch(/^max-age=\d{7,}/);
}

describe("API security headers", () => {
  it.each([
    ["a success", "/api/health", 200],
    ["a 404", "/api/no-such-route", 404],
    ["a 401", "/api/me/tickets", 401],
    ["the JWKS", "/.well-known/jwks.json", 200],
  ])("are on %s", async (_, path, status) => {
    const response = await rawRequest(path);
    expect(response.status, response.text).toBe(status);
    expectApiSecurityHeaders(response);
  });

  it("are on an answer served from the edge cache (whose headers are immutable), every time", async () => {
    const { event } = await openEvent({ demandClass: "calm", accounts: 0 });
    for (let i = 0; i < 3; i++) {
      const response = await rawRequest(`/api/events/${event.id}/availability`);
      expect(response.status, response.text).toBe(200);
      expectApiSecurityHeaders(response);
    }
  });

  it("are on a 400 for bad input", async () => {
    const response = await rawRequest("/api/auth/code", { method: "POST", headers: { "Content-Type": "application/json", "CF-Connecting-IP": "10.9.9.9" }, body: "{" });
    expect(response.status).toBe(400);
    expectApiSecurityHeaders(response);
  });
});
