/**
 * Scoped organizer API keys: every admin route declares the scopes it accepts
 * and gets exactly those; a check-in key cannot refund or mint keys, a read key
 * cannot write; revoked and expired keys get 401; bad input changes nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { app } from "../../../workers/app";
import { adminOperations, apiKeySchema, createKey, keyAndAuditCounts, withStrangerIds } from "../../fixtures/api-keys";
import { fakeClock } from "../../fixtures/clocks";
import { DAY, HOUR, organizerWithTheatre, postEvent, eventBody } from "../../fixtures/events";
import { adminRequest, callWorker, expectApiError, expectInvalid } from "../../fixtures/http";
import { newOrganizer } from "../../fixtures/seeding";

const SCOPES = ["admin", "read", "check_in"] as const;
const REVOKE = "POST /api-keys/{keyId}/revoke";

describe("scope declarations", () => {
  it("every admin route the app serves declares the scopes it accepts, admin among them", async () => {
    const documented = new Map((await adminOperations()).map((op) => [`${op.method} ${op.path}`, op.scopes]));
    const served = [...new Set(app.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/admin/")).map((r) => `${r.method} ${r.path.slice("/admin".length).replaceAll(/:(\w+)/g, "{$1}")}`))].filter(
      (route) => route !== "GET /openapi.json" && route !== "GET /docs",
    );
    expect(served.length).toBeGreaterThan(15);
    for (const route of served) {
      const scopes = documented.get(route);
      expect(scopes, `${route} declares no scopes`).toBeDefined();
      expect(scopes, route).toContain("admin");
      for (const scope of scopes ?? []) expect(SCOPES, `${route}: ${scope}`).toContain(scope);
    }
  });

  it("reads are open to read keys, writes to admin keys, and the door's routes to check-in keys", async () => {
    const byRoute = Object.fromEntries((await adminOperations()).map((op) => [`${op.method} ${op.path}`, op.scopes]));
    for (const [route, scopes] of Object.entries(byRoute)) {
      if (route === REVOKE) continue;
      if (route.startsWith("GET ")) expect(scopes, route).toContain("read");
      else expect(scopes, route).not.toContain("read");
    }
    expect(byRoute["POST /events/{id}/check-in"]).toEqual(["admin", "check_in"]);
    expect(byRoute["GET /events/{id}"]).toEqual(["admin", "read", "check_in"]);
    expect(byRoute["POST /orders/{orderId}/refund"]).toEqual(["admin"]);
    expect(byRoute["POST /api-keys"]).toEqual(["admin"]);
  });

  it("each key gets 403 exactly on the routes that do not accept its scope, before looking at the input", async () => {
    const { apiKey, organizerId } = await newOrganizer();
    const keys = { admin: apiKey, read: (await createKey(apiKey, { scope: "read" })).secret, check_in: (await createKey(apiKey, { scope: "check_in" })).secret };
    const before = await keyAndAuditCounts(organizerId);
    for (const op of await adminOperations()) {
      if (`${op.method} ${op.path}` === REVOKE) continue;
      for (const scope of SCOPES) {
        // Nobody's ids and an empty body: an accepted key gets a 400 or 404 (or a 200 for a list), a refused one a 403.
        const response = await callWorker(op.method, `/admin${withStrangerIds(op.path)}`, { bearer: keys[scope], body: op.method === "GET" ? undefined : {} });
        const label = `${scope} ${op.method} ${op.path}`;
        if (op.scopes?.includes(scope)) expect(response.status, `${label}: ${response.text}`).not.toBe(403);
        else expectApiError(response, 403, "forbidden");
        expect(response.status, label).not.toBe(401);
      }
    }
    expect(await keyAndAuditCounts(organizerId)).toEqual(before);
  });
});

describe("keys by scope", () => {
  it("a check-in key checks tickets in and reads its event, but gets 403 on refunds and key creation", async () => {
    const { apiKey, organizerId, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id));
    const door = (await createKey(apiKey, { scope: "check_in", name: "north door" })).secret;
    const before = await keyAndAuditCounts(organizerId);

    expectApiError(await adminRequest(door, "POST", `/orders/${crypto.randomUUID()}/refund`), 403, "forbidden");
    expectApiError(await adminRequest(door, "POST", "/api-keys", { name: "more", scope: "admin" }), 403, "forbidden");
    expectApiError(await adminRequest(door, "POST", `/events/${event.id}/cancel`), 403, "forbidden");
    expect(await keyAndAuditCounts(organizerId)).toEqual(before);

    expect((await adminRequest(door, "GET", `/events/${event.id}`)).status).toBe(200);
    const scan = await adminRequest(door, "POST", `/events/${event.id}/check-in`, { token: "not-a-ticket" });
    expect(scan.status, scan.text).toBe(200);
    expect(scan.json).toMatchObject({ result: "invalid" });
  });

  it("a read key reads everything but gets 403 on every write", async () => {
    const { apiKey, organizerId, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id));
    const reader = (await createKey(apiKey, { scope: "read" })).secret;
    const before = await keyAndAuditCounts(organizerId);
    const writes = [
      ["POST", "/api-keys", { name: "more", scope: "read" }],
      ["POST", "/venues", {}],
      ["POST", "/events", eventBody(venue.id)],
      ["PATCH", `/events/${event.id}`, { name: "Renamed" }],
      ["POST", `/events/${event.id}/prepare`, { promote: true }],
      ["PATCH", `/events/${event.id}/admission`, { paused: true }],
      ["POST", `/events/${event.id}/check-in`, { token: "x" }],
      ["POST", `/events/${event.id}/cancel`, undefined],
      ["POST", `/api-keys/${(await createKey(apiKey, { scope: "admin" })).id}/revoke`, undefined],
    ] as const;
    const afterSetup = await keyAndAuditCounts(organizerId);
    for (const [method, path, body] of writes) expectApiError(await adminRequest(reader, method, path, body), 403, "forbidden");
    expect(await keyAndAuditCounts(organizerId)).toEqual(afterSetup);
    expect(afterSetup.keys).toBe(before.keys + 1);

    for (const path of ["/me", "/venues", `/events/${event.id}`, `/events/${event.id}/orders`, "/audit-log"]) expect((await adminRequest(reader, "GET", path)).status, path).toBe(200);
    expect((await adminRequest(apiKey, "GET", `/events/${event.id}`)).json).toMatchObject({ name: event.name, status: event.status });
  });

  it("only an admin key creates keys; the secret is shown once and never listed", async () => {
    const { apiKey, organizerId } = await newOrganizer();
    const created = await createKey(apiKey, { scope: "read", name: "analytics" });
    for (const scope of ["read", "check_in"] as const) {
      const key = (await createKey(apiKey, { scope })).secret;
      const before = await keyAndAuditCounts(organizerId);
      expectApiError(await adminRequest(key, "POST", "/api-keys", { name: "escalate", scope: "admin" }), 403, "forbidden");
      expect(await keyAndAuditCounts(organizerId)).toEqual(before);
    }
    const listed = await adminRequest(apiKey, "GET", "/api-keys");
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(created.secret);
    expect(listed.text).not.toMatch(/etk_|hash/i);
    const { keys } = z.object({ keys: apiKeySchema.array() }).parse(listed.json);
    expect(keys.map((k) => [k.name, k.scope])).toEqual([
      ["first key", "admin"],
      ["analytics", "read"],
      ["read key", "read"],
      ["check_in key", "check_in"],
    ]);
    const me = await adminRequest(created.secret, "GET", "/me");
    expect(me.json).toMatchObject({ id: organizerId, apiKey: { id: created.id, name: "analytics", scope: "read" } });
  });
});

describe("revocation", () => {
  it("a revoked key gets 401 from then on; admin keys revoke any key, others only themselves", async () => {
    const { apiKey } = await newOrganizer();
    const reader = await createKey(apiKey, { scope: "read" });
    const door = await createKey(apiKey, { scope: "check_in" });

    expectApiError(await adminRequest(reader.secret, "POST", `/api-keys/${door.id}/revoke`), 403, "forbidden");
    expect((await adminRequest(door.secret, "GET", "/me")).status).toBe(200);

    const revoked = await adminRequest(door.secret, "POST", `/api-keys/${door.id}/revoke`);
    expect(revoked.status, revoked.text).toBe(200);
    expect(apiKeySchema.parse(revoked.json).revokedAt).not.toBeNull();
    const body = expectApiError(await adminRequest(door.secret, "GET", "/me"), 401, "unauthorized");
    expect(body.error.message).toMatch(/revoked/);

    const first = await adminRequest(apiKey, "POST", `/api-keys/${reader.id}/revoke`);
    expect(first.status).toBe(200);
    expectApiError(await adminRequest(reader.secret, "GET", "/venues"), 401, "unauthorized");
    // Revoking again changes nothing; another organizer's key is a 404.
    const again = await adminRequest(apiKey, "POST", `/api-keys/${reader.id}/revoke`);
    expect(apiKeySchema.parse(again.json).revokedAt).toBe(apiKeySchema.parse(first.json).revokedAt);
    const stranger = await newOrganizer("Stranger");
    expectApiError(await adminRequest(stranger.apiKey, "POST", `/api-keys/${reader.id}/revoke`), 404, "not_found");
    expect((await adminRequest(apiKey, "GET", "/me")).status).toBe(200);
  });
});

describe("expiry", () => {
  const clock = fakeClock({ aheadMs: 0, minGapMs: 1_000 });
  afterEach(() => clock.stop());

  it("an expired key gets 401 from its expiry on, on a controlled clock", async () => {
    const start = clock.start();
    const { apiKey } = await newOrganizer();
    const expiresAt = new Date(start + HOUR).toISOString();
    const temporary = await createKey(apiKey, { scope: "read", expiresAt });
    const listed = z.object({ keys: apiKeySchema.array() }).parse((await adminRequest(apiKey, "GET", "/api-keys")).json);
    expect(listed.keys.find((k) => k.id === temporary.id)?.expiresAt).toBe(expiresAt);

    clock.to(start + HOUR - 1);
    expect((await adminRequest(temporary.secret, "GET", "/venues")).status).toBe(200);
    clock.to(start + HOUR);
    const body = expectApiError(await adminRequest(temporary.secret, "GET", "/venues"), 401, "unauthorized");
    expect(body.error.message).toMatch(/expired/);
    clock.advance(DAY);
    expectApiError(await adminRequest(temporary.secret, "GET", "/me"), 401, "unauthorized");
    expect((await adminRequest(apiKey, "GET", "/me")).status).toBe(200);
  });
});

describe("bad input", () => {
  it.each([
    ["no name", { scope: "read" }, "name"],
    ["an empty name", { name: " ", scope: "read" }, "name"],
    ["an unknown scope", { name: "x", scope: "superuser" }, "scope"],
    ["no scope", { name: "x" }, "scope"],
    ["an expiry that is not a time", { name: "x", scope: "read", expiresAt: "tomorrow" }, "expiresAt"],
    ["an expiry in the past", { name: "x", scope: "read", expiresAt: "2001-01-01T00:00:00Z" }, "expiresAt"],
    ["an unknown field", { name: "x", scope: "read", admin: true }, ""],
  ])("creating a key with %s is a 400 that creates no key and no audit row", async (_name, body, path) => {
    const { apiKey, organizerId } = await newOrganizer();
    const before = await keyAndAuditCounts(organizerId);
    expectInvalid(await adminRequest(apiKey, "POST", "/api-keys", body), path || undefined);
    expect(await keyAndAuditCounts(organizerId)).toEqual(before);
  });

  it("revoking with a malformed key id is a 400, an unknown one a 404, changing nothing", async () => {
    const { apiKey, organizerId } = await newOrganizer();
    const before = await keyAndAuditCounts(organizerId);
    expectInvalid(await adminRequest(apiKey, "POST", "/api-keys/not-a-uuid/revoke"), "keyId");
    expectApiError(await adminRequest(apiKey, "POST", `/api-keys/${crypto.randomUUID()}/revoke`), 404, "not_found");
    expect(await keyAndAuditCounts(organizerId)).toEqual(before);
  });
});
