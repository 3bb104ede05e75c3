/** The admin API's OpenAPI document and its interactive docs, public: exactly these operations and schemas. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
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
      "POST /events/{id}/check-in",
      "POST /orders/{orderId}/refund",
      "POST /events/{id}/cancel",
      "GET /events/{id}/orders",
    ]);
    expect(Object.keys(doc.components.schemas)).toEqual([
      "Error",
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
      "Order",
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
