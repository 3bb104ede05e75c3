/** The admin and fan APIs' OpenAPI documents and their interactive docs, public: the admin's exactly these operations and schemas, the fans' every fan route. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { app } from "../../../workers/app";
import { rawRequest } from "../../fixtures/http";

describe("admin API documentation", () => {
  it("serves an OpenAPI 3.1 document listing the admin routes, without a key", async () => {
    const response = await rawRequest("/admin/openapi.json");
    expect(response.status).toBe(200);
    const doc = z
      .object({
        openapi: z.string(),
        paths: z.record(z.string(), z.record(z.string(), z.unknown())),
        components: z.object({ schemas: z.record(z.string(), z.unknown()) }),
      })
      .parse(response.json);
    expect(doc.openapi).toBe("3.1.0");
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    // Exactly these operations and schemas, in this order: moving route files must not change the document.
    expect(routes).toEqual([
      "GET /me",
      "POST /api-keys",
      "GET /api-keys",
      "POST /api-keys/{keyId}/revoke",
      "POST /venues",
      "GET /venues",
      "GET /venues/{id}",
      "POST /events",
      "GET /events",
      "GET /events/{id}",
      "PATCH /events/{id}",
      "POST /events/{id}/prepare",
      "PATCH /events/{id}/admission",
      "GET /events/{id}/live",
      "GET /events/{id}/bot-flags",
      "POST /events/{id}/bot-flags/{accountId}",
      "POST /events/{id}/check-in",
      "GET /events/{id}/check-in",
      "POST /events/{id}/check-in/sync",
      "POST /orders/{orderId}/refund",
      "POST /events/{id}/cancel",
      "GET /events/{id}/orders",
      "POST /webhooks/endpoints",
      "GET /webhooks/endpoints",
      "GET /webhooks/endpoints/{endpointId}",
      "PATCH /webhooks/endpoints/{endpointId}",
      "DELETE /webhooks/endpoints/{endpointId}",
      "POST /webhooks/endpoints/{endpointId}/rotate-secret",
      "GET /webhooks/endpoints/{endpointId}/deliveries",
      "POST /webhooks/deliveries/{deliveryId}/resend",
      "GET /audit-log",
    ]);
    expect(Object.keys(doc.components.schemas)).toEqual([
      "Error",
      "ApiKey",
      "Venue",
      "SeatingChart",
      "ChartSection",
      "ChartRow",
      "Event",
      "CreateEvent",
      "UpdateEvent",
      "AdmissionState",
      "CheckIn",
      "TicketPlace",
      "SyncedScan",
      "Order",
      "WebhookEndpoint",
      "WebhookDelivery",
      "AuditEntry",
    ]);
  });

  it("serves the interactive docs as HTML", async () => {
    const response = await rawRequest("/admin/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(response.text).toContain("/admin/openapi.json");
    expect(response.text.toLowerCase()).toContain("swagger");
  });
});

describe("fan API documentation", () => {
  it("serves an OpenAPI 3.1 document with every fan route, without a session", async () => {
    const response = await rawRequest("/api/openapi.json");
    expect(response.status).toBe(200);
    const doc = z
      .object({
        openapi: z.string(),
        servers: z.array(z.object({ url: z.string() })),
        paths: z.record(z.string(), z.record(z.string(), z.object({ responses: z.record(z.string(), z.unknown()), security: z.array(z.record(z.string(), z.array(z.string()))).optional() }))),
        components: z.object({ securitySchemes: z.record(z.string(), z.unknown()) }),
      })
      .parse(response.json);
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: "/api" }]);
    expect(Object.keys(doc.components.securitySchemes)).toEqual(["fanSession"]);
    // Every scheme an operation names is defined.
    const named = Object.values(doc.paths).flatMap((methods) => Object.values(methods).flatMap((operation) => (operation.security ?? []).flatMap((scheme) => Object.keys(scheme))));
    expect(named.length).toBeGreaterThan(0);
    expect(new Set(named)).toEqual(new Set(["fanSession"]));
    const documented = Object.entries(doc.paths)
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} /api${path.replace(/\{(\w+)\}/g, ":$1")}`))
      .sort();
    // Every route the app answers under /api, the document and docs themselves aside, is in the document.
    const served = [...new Set(app.routes.filter((route) => route.method !== "ALL" && route.path.startsWith("/api/")).map((route) => `${route.method} ${route.path}`))]
      .filter((route) => route !== "GET /api/openapi.json" && route !== "GET /api/docs")
      .sort();
    expect(documented).toEqual(served);
  });

  it("serves the interactive docs as HTML from our own files", async () => {
    const response = await rawRequest("/api/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(response.headers.get("Content-Security-Policy")).toContain("script-src 'self'");
    expect(response.text).toContain("/api/openapi.json");
    expect(response.text).toContain("/docs/vendor/swagger-ui-bundle.js");
  });
});
