/**
 * The organizers' audit log: every write route of the admin API leaves one
 * row naming the key, the route, the target, and the target before and after
 * (secrets redacted); bad input leaves none; the row commits with the change
 * or not at all; the log reads back filtered by event, key and time, a page
 * at a time.
 */
import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { organizerApiKeys } from "../../../core/db/schema";
import { createApiKey } from "../../../workers/organizers/api-keys";
import { auditedChange, redactSecrets } from "../../../workers/organizers/audit-log";
import { emitOrganizerEvents } from "../../../workers/organizers/webhooks/emit";
import { flagAccount } from "../../fixtures/bot-flags";
import { adminOperations, auditPage, createKey, keyAndAuditCounts } from "../../fixtures/api-keys";
import { theatreChart } from "../../fixtures/charts";
import { withDb } from "../../fixtures/db";
import { eventBody, strictEvent } from "../../fixtures/events";
import { callApp, expectInvalid, type ReadResponse } from "../../fixtures/http";
import { fanOf, newOrganizer, type Sale } from "../../fixtures/seeding";
import { clock, closeEntries, openWaitlistSale, paidOrder } from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(async () => {
  clock.stop();
  await closeEntries();
});

function admin(sale: Sale, method: string, path: string, body?: unknown): Promise<ReadResponse> {
  return callApp(method, `/admin${path}`, { bearer: sale.apiKey, body });
}

async function ok<T>(response: Promise<ReadResponse>, schema: z.ZodType<T>): Promise<T> {
  const answer = await response;
  expect(answer.status, answer.text).toBeLessThan(300);
  return schema.parse(answer.json);
}

const withId = z.object({ id: z.uuid() });

/** A calm sale with one paid order, and a way to make a fresh draft event at a fresh venue of its organizer. */
async function saleWithOrder() {
  const sale = await openWaitlistSale({ demandClass: "calm", fans: 1 });
  const order = await paidOrder(sale, fanOf(sale, 0), [0]);
  const venue = await ok(admin(sale, "POST", "/venues", theatreChart()), withId);
  const draftEvent = async () => (await ok(admin(sale, "POST", "/events", eventBody(venue.id)), strictEvent)).id;
  return { sale, order, venueId: venue.id, draftEvent };
}

type Setup = Awaited<ReturnType<typeof saleWithOrder>>;

/** A webhook endpoint of the sale's organizer (a public https URL: refused nowhere), through the API. */
async function webhookEndpoint(sale: Sale): Promise<string> {
  const created = await ok(admin(sale, "POST", "/webhooks/endpoints", { url: "https://hooks.example.com/tickets", eventTypes: ["order.created"] }), z.object({ endpoint: withId }));
  return created.endpoint.id;
}

/** One valid call of each write route, and the target (and event) its audit row must name. */
const writes: Record<string, (setup: Setup) => Promise<{ targetId: string | null; eventId: string | null }>> = {
  "POST /api-keys": async ({ sale }) => {
    const { id } = await ok(admin(sale, "POST", "/api-keys", { name: "door 2", scope: "check_in" }), withId);
    return { targetId: id, eventId: null };
  },
  "POST /api-keys/{keyId}/revoke": async ({ sale }) => {
    const { id } = await createKey(sale.apiKey, { scope: "read" });
    await ok(admin(sale, "POST", `/api-keys/${id}/revoke`), withId);
    return { targetId: id, eventId: null };
  },
  "POST /venues": async ({ sale }) => {
    const { id } = await ok(admin(sale, "POST", "/venues", theatreChart()), withId);
    return { targetId: id, eventId: null };
  },
  "POST /events": async ({ sale, venueId }) => {
    const { id } = await ok(admin(sale, "POST", "/events", eventBody(venueId)), withId);
    return { targetId: id, eventId: id };
  },
  "PATCH /events/{id}": async ({ sale, draftEvent }) => {
    const id = await draftEvent();
    await ok(admin(sale, "PATCH", `/events/${id}`, { name: "Renamed" }), withId);
    return { targetId: id, eventId: id };
  },
  "POST /events/{id}/prepare": async ({ sale, draftEvent }) => {
    const id = await draftEvent();
    await ok(admin(sale, "POST", `/events/${id}/prepare`, { promote: true }), z.object({ eventId: z.uuid() }));
    return { targetId: id, eventId: id };
  },
  "PATCH /events/{id}/admission": async ({ sale, draftEvent }) => {
    const id = await draftEvent();
    await ok(admin(sale, "POST", `/events/${id}/prepare`, { promote: true }), z.object({ eventId: z.uuid() }));
    await ok(admin(sale, "PATCH", `/events/${id}/admission`, { paused: true }), z.object({ paused: z.literal(true) }));
    return { targetId: id, eventId: id };
  },
  "POST /events/{id}/bot-flags/{accountId}": async ({ sale, draftEvent }) => {
    const id = await draftEvent();
    await ok(admin(sale, "POST", `/events/${id}/prepare`, { promote: true }), z.object({ eventId: z.uuid() }));
    const { accountId } = fanOf(sale, 0);
    await flagAccount(id, accountId);
    await ok(admin(sale, "POST", `/events/${id}/bot-flags/${accountId}`, { decision: "confirm" }), z.object({ decision: z.literal("confirm") }));
    return { targetId: accountId, eventId: id };
  },
  "POST /events/{id}/check-in": async ({ sale }) => {
    await ok(admin(sale, "POST", `/events/${sale.eventId}/check-in`, { token: "not-a-ticket" }), z.object({ result: z.literal("invalid") }));
    return { targetId: null, eventId: sale.eventId };
  },
  "POST /events/{id}/check-in/sync": async ({ sale }) => {
    const scan = { scanId: crypto.randomUUID(), code: "not-a-ticket", scannedAt: new Date().toISOString() };
    await ok(admin(sale, "POST", `/events/${sale.eventId}/check-in/sync`, { doorId: "North gate", scans: [scan] }), z.object({ results: z.array(z.object({ result: z.literal("invalid") })) }));
    return { targetId: null, eventId: sale.eventId };
  },
  "POST /webhooks/endpoints": async ({ sale }) => ({ targetId: await webhookEndpoint(sale), eventId: null }),
  "PATCH /webhooks/endpoints/{endpointId}": async ({ sale }) => {
    const id = await webhookEndpoint(sale);
    await ok(admin(sale, "PATCH", `/webhooks/endpoints/${id}`, { description: "ERP" }), z.object({ endpoint: withId }));
    return { targetId: id, eventId: null };
  },
  "DELETE /webhooks/endpoints/{endpointId}": async ({ sale }) => {
    const id = await webhookEndpoint(sale);
    await ok(admin(sale, "DELETE", `/webhooks/endpoints/${id}`), z.unknown());
    return { targetId: id, eventId: null };
  },
  "POST /webhooks/endpoints/{endpointId}/rotate-secret": async ({ sale }) => {
    const id = await webhookEndpoint(sale);
    await ok(admin(sale, "POST", `/webhooks/endpoints/${id}/rotate-secret`), z.object({ endpoint: withId }));
    return { targetId: id, eventId: null };
  },
  "POST /webhooks/deliveries/{deliveryId}/resend": async ({ sale }) => {
    const id = await webhookEndpoint(sale);
    const data = { orderId: crypto.randomUUID() };
    await withDb((db) => emitOrganizerEvents({ db, env }, [{ type: "order.created", eventId: sale.eventId, sourceId: data.orderId, data }]));
    const log = await ok(admin(sale, "GET", `/webhooks/endpoints/${id}/deliveries`), z.object({ deliveries: z.array(withId) }));
    const deliveryId = log.deliveries[0]?.id ?? "";
    await ok(admin(sale, "POST", `/webhooks/deliveries/${deliveryId}/resend`), z.object({ delivery: withId }));
    return { targetId: deliveryId, eventId: null };
  },
  "POST /orders/{orderId}/refund": async ({ sale, order }) => {
    await ok(admin(sale, "POST", `/orders/${order.orderId}/refund`), z.object({ order: z.object({ status: z.literal("refunded") }) }));
    return { targetId: order.orderId, eventId: sale.eventId };
  },
  "POST /events/{id}/cancel": async ({ sale, draftEvent }) => {
    const id = await draftEvent();
    await ok(admin(sale, "POST", `/events/${id}/cancel`), z.object({ status: z.literal("cancelled") }));
    return { targetId: id, eventId: id };
  },
};

describe("the audit log", () => {
  it("has a recipe above for every write route of the admin API", async () => {
    const writeRoutes = (await adminOperations()).filter((op) => op.method !== "GET").map((op) => `${op.method} ${op.path}`);
    expect(Object.keys(writes).sort()).toEqual(writeRoutes.sort());
  });

  it("records each write: one row with the key, the route, its target and event", async () => {
    const setup = await saleWithOrder();
    const me = await ok(admin(setup.sale, "GET", "/me"), z.object({ apiKey: z.object({ id: z.uuid(), name: z.string() }).transform(({ id, name }) => ({ id, name })) }));
    for (const [route, write] of Object.entries(writes)) {
      const latest = (await auditPage(setup.sale.apiKey, "limit=1")).entries[0]?.id ?? 0;
      const expected = await write(setup);
      // Exactly one new row of this route (a recipe's arrange steps, such as creating the event it edits, leave their own).
      const rows = (await auditPage(setup.sale.apiKey, "limit=10")).entries.filter((entry) => entry.id > latest && entry.action === route);
      expect(rows.map((entry) => ({ targetId: entry.targetId, eventId: entry.eventId, apiKey: entry.apiKey })), route).toEqual([{ ...expected, apiKey: me.apiKey }]);
    }
  });

  it("keeps the target before and after, and never a secret", async () => {
    const setup = await saleWithOrder();
    const id = await setup.draftEvent();
    await ok(admin(setup.sale, "PATCH", `/events/${id}`, { name: "After" }), withId);
    const [edit] = (await auditPage(setup.sale.apiKey, `eventId=${id}&limit=1`)).entries;
    expect(edit?.before).toMatchObject({ id, name: expect.not.stringMatching(/^After$/) });
    expect(edit?.after).toMatchObject({ id, name: "After" });

    const created = await createKey(setup.sale.apiKey, { scope: "read", name: "reporting" });
    const [creation] = (await auditPage(setup.sale.apiKey, "limit=1")).entries;
    expect(creation).toMatchObject({ action: "POST /api-keys", before: null, after: { id: created.id, name: "reporting", scope: "read" } });
    const log = await callApp("GET", "/admin/audit-log?limit=200", { bearer: setup.sale.apiKey });
    expect(log.text).not.toContain(created.secret);
    expect(log.text).not.toContain(setup.sale.apiKey);
    expect(log.text).not.toMatch(/etk_/);
  });

  it("redacts fields that hold secrets, at any depth", () => {
    const at = new Date(0);
    expect(redactSecrets({ name: "door", apiKey: "etk_x", at, nested: [{ secret: "whsec_x", keyHash: "ab", token: "t", tokenTtlSeconds: 60 }] })).toEqual({
      name: "door",
      apiKey: "[redacted]",
      at: at.toISOString(),
      nested: [{ secret: "[redacted]", keyHash: "[redacted]", token: "[redacted]", tokenTtlSeconds: 60 }],
    });
    expect(redactSecrets(undefined)).toBeNull();
  });

  it("writes no row for bad input or a refused key", async () => {
    const setup = await saleWithOrder();
    const id = await setup.draftEvent();
    const reader = await createKey(setup.sale.apiKey, { scope: "read" });
    const before = await keyAndAuditCounts(setup.sale.organizerId);
    expectInvalid(await admin(setup.sale, "PATCH", `/events/${id}`, { name: "" }), "name");
    expectInvalid(await admin(setup.sale, "POST", "/venues", { name: "No sections" }));
    expect((await callApp("POST", `/admin/events/${id}/cancel`, { bearer: reader.secret })).status).toBe(403);
    expect(await keyAndAuditCounts(setup.sale.organizerId)).toEqual(before);
  });

  it("commits the row with the change, or neither", async () => {
    const { organizerId } = await newOrganizer();
    const before = await keyAndAuditCounts(organizerId);
    // An actor whose organizer does not exist: the audit insert fails after the key insert succeeded.
    const ghost = { organizerId: crypto.randomUUID(), apiKey: { id: crypto.randomUUID(), name: "ghost" }, operation: "POST /api-keys" };
    await expect(
      withDb((db) =>
        auditedChange(db, ghost, async (tx) => {
          const result = await createApiKey(tx, organizerId, { name: "never", scope: "admin" });
          return { result, audit: { targetId: result.key.id, after: result.key } };
        }),
      ),
    ).rejects.toThrow();
    expect(await keyAndAuditCounts(organizerId)).toEqual(before);
    expect(await withDb((db) => db.select().from(organizerApiKeys).where(eq(organizerApiKeys.label, "never")))).toEqual([]);
  });

  it("reads back filtered by event, key and time, a page at a time", async () => {
    const setup = await saleWithOrder();
    const second = await createKey(setup.sale.apiKey, { scope: "admin", name: "second admin" });
    const start = Date.now();
    const [one, two] = [await setup.draftEvent(), await setup.draftEvent()];
    clock.advance(60_000);
    const since = new Date(Date.now()).toISOString();
    for (const name of ["A", "B", "C"]) await ok(callApp("PATCH", `/admin/events/${one}`, { bearer: second.secret, body: { name } }), withId);

    const ofOne = await auditPage(setup.sale.apiKey, `eventId=${one}`);
    expect(ofOne.entries.map((e) => e.action)).toEqual(["PATCH /events/{id}", "PATCH /events/{id}", "PATCH /events/{id}", "POST /events"]);
    expect((await auditPage(setup.sale.apiKey, `eventId=${two}`)).entries.map((e) => e.action)).toEqual(["POST /events"]);
    expect((await auditPage(setup.sale.apiKey, `apiKeyId=${second.id}`)).entries).toHaveLength(3);
    const recent = await auditPage(setup.sale.apiKey, `since=${encodeURIComponent(since)}`);
    expect(recent.entries.map((e) => e.after)).toEqual([expect.objectContaining({ name: "C" }), expect.objectContaining({ name: "B" }), expect.objectContaining({ name: "A" })]);
    expect(new Date(recent.entries.at(-1)?.createdAt ?? 0).getTime()).toBeGreaterThanOrEqual(start);

    const pages: number[][] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof auditPage>> = await auditPage(setup.sale.apiKey, `eventId=${one}&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      pages.push(page.entries.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(pages.map((p) => p.length)).toEqual([3, 1]);
    expect(pages.flat()).toEqual(ofOne.entries.map((e) => e.id));

    for (const query of ["eventId=nope", "since=yesterday", "limit=0", "limit=201", "cursor=-1", "apiKeyId=1"]) expectInvalid(await callApp("GET", `/admin/audit-log?${query}`, { bearer: setup.sale.apiKey }));
    // Another organizer sees none of it.
    const stranger = await newOrganizer("Stranger");
    expect((await auditPage(stranger.apiKey, `eventId=${one}`)).entries).toEqual([]);
  });
});
