/**
 * The HTTP surface as clients know it: every route of the app (method and
 * path), exactly, and who may call what. Moving route files around must not
 * add, drop or rename any of them. (The admin OpenAPI document's operations
 * and schemas are held exactly in openapi.test.ts.)
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../../workers/app";
import { rawRequest } from "../../fixtures/http";

describe("the HTTP surface", () => {
  it("has exactly these routes", () => {
    const routes = new Set(app.routes.filter((route) => route.method !== "ALL").map((route) => `${route.method} ${route.path}`));
    expect([...routes].sort()).toEqual([
      "DELETE /admin/webhooks/endpoints/:endpointId",
      "DELETE /api/events/:id/holds/:holdId",
      "DELETE /api/events/:id/waitlist",
      "GET /.well-known/jwks.json",
      "GET /admin/api-keys",
      "GET /admin/audit-log",
      "GET /admin/docs",
      "GET /admin/events",
      "GET /admin/events/:id",
      "GET /admin/events/:id/bot-flags",
      "GET /admin/events/:id/check-in",
      "GET /admin/events/:id/live",
      "GET /admin/events/:id/orders",
      "GET /admin/me",
      "GET /admin/openapi.json",
      "GET /admin/venues",
      "GET /admin/venues/:id",
      "GET /admin/webhooks/endpoints",
      "GET /admin/webhooks/endpoints/:endpointId",
      "GET /admin/webhooks/endpoints/:endpointId/deliveries",
      "GET /api/config",
      "GET /api/docs",
      "GET /api/events",
      "GET /api/events/:id",
      "GET /api/events/:id/availability",
      "GET /api/events/:id/holds",
      "GET /api/events/:id/holds/:holdId",
      "GET /api/events/:id/holds/:holdId/payment",
      "GET /api/events/:id/queue",
      "GET /api/events/:id/seat-feed",
      "GET /api/events/:id/seats",
      "GET /api/events/:id/waitlist",
      "GET /api/health",
      "GET /api/me/tickets",
      "GET /api/me/tickets/:ticketId",
      "GET /api/openapi.json",
      "PATCH /admin/events/:id",
      "PATCH /admin/events/:id/admission",
      "PATCH /admin/webhooks/endpoints/:endpointId",
      "POST /admin/api-keys",
      "POST /admin/api-keys/:keyId/revoke",
      "POST /admin/events",
      "POST /admin/events/:id/bot-flags/:accountId",
      "POST /admin/events/:id/cancel",
      "POST /admin/events/:id/check-in",
      "POST /admin/events/:id/check-in/sync",
      "POST /admin/events/:id/prepare",
      "POST /admin/orders/:orderId/refund",
      "POST /admin/venues",
      "POST /admin/webhooks/deliveries/:deliveryId/resend",
      "POST /admin/webhooks/endpoints",
      "POST /admin/webhooks/endpoints/:endpointId/rotate-secret",
      "POST /api/auth/code",
      "POST /api/auth/session",
      "POST /api/events/:id/admission",
      "POST /api/events/:id/holds",
      "POST /api/events/:id/holds/:holdId/payment",
      "POST /api/events/:id/holds/best",
      "POST /api/events/:id/lobby",
      "POST /api/events/:id/pre-registration",
      "POST /api/events/:id/waitlist",
      "POST /ops/dead-letters/replay",
      "POST /webhooks/stripe",
    ]);
  });

  it("answers the public document and docs without a key, and every other admin path only with one", async () => {
    expect((await rawRequest("/admin/openapi.json")).status).toBe(200);
    expect((await rawRequest("/admin/docs")).status).toBe(200);
    for (const path of ["/admin/me", "/admin/events", "/admin/no-such-route"]) {
      const response = await rawRequest(path);
      expect(response.status, path).toBe(401);
      expect(response.headers.get("Cache-Control"), path).toBeNull();
    }
    expect(env.OPS_TOKEN).toBeTruthy();
    expect((await rawRequest("/ops/dead-letters/replay", { method: "POST" })).status).toBe(401);
  });
});
