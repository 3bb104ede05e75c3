/**
 * Webhook endpoints through the admin API: which URLs are refused (a 400
 * that stores nothing), in production and in local development, and the
 * endpoint's life: list, read, change, the event filter, delete, and
 * another organizer's endpoint as a 404.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { expectInvalid } from "../../fixtures/http";
import { openEvent } from "../../fixtures/seeding";
import { adminCall, createEndpoint, webhookEnv } from "../../fixtures/webhooks";

const endpointsSchema = z.object({ endpoints: z.array(z.object({ id: z.uuid(), url: z.string(), eventTypes: z.array(z.string()), eventId: z.uuid().nullable(), description: z.string() })) });

/** Refused everywhere outside local development. */
const REFUSED_IN_PRODUCTION: [string, string][] = [
  ["http://hooks.example.com/in", "https_required"],
  ["https://localhost/in", "private_address"],
  ["https://LOCALHOST./in", "private_address"],
  ["https://api.localhost/in", "private_address"],
  ["https://intranet/in", "private_address"],
  ["https://metadata.google.internal/computeMetadata/v1/", "private_address"],
  ["https://printer.local/in", "private_address"],
  ["https://127.0.0.1/in", "private_address"],
  ["https://127.8.9.10:8443/in", "private_address"],
  ["https://2130706433/in", "private_address"], // 127.0.0.1 as one number
  ["https://0x7f.1/in", "private_address"],
  ["https://0.0.0.0/in", "private_address"],
  ["https://10.1.2.3/in", "private_address"],
  ["https://172.16.0.1/in", "private_address"],
  ["https://172.31.255.255/in", "private_address"],
  ["https://192.168.1.1/in", "private_address"],
  ["https://100.64.0.1/in", "private_address"],
  ["https://169.254.169.254/latest/meta-data/", "private_address"],
  ["https://224.0.0.1/in", "private_address"],
  ["https://255.255.255.255/in", "private_address"],
  ["https://[::1]/in", "private_address"],
  ["https://[::]/in", "private_address"],
  ["https://[0:0:0:0:0:0:0:1]/in", "private_address"],
  ["https://[::ffff:127.0.0.1]/in", "private_address"],
  ["https://[::ffff:10.0.0.1]/in", "private_address"],
  ["https://[64:ff9b::a9fe:a9fe]/in", "private_address"], // NAT64 of 169.254.169.254
  ["https://[2002:c0a8:101::1]/in", "private_address"], // 6to4 of 192.168.1.1
  ["https://[fc00::1]/in", "private_address"],
  ["https://[fd00:ec2::254]/in", "private_address"], // a cloud metadata address
  ["https://[fe80::1]/in", "private_address"],
  ["https://[ff02::1]/in", "private_address"],
];

/** Refused everywhere. */
const REFUSED_ALWAYS: [string, string][] = [
  ["not a url", "not_a_url"],
  ["/relative/path", "not_a_url"],
  ["ftp://hooks.example.com/in", "not_a_url"],
  ["javascript:alert(1)", "not_a_url"],
  ["https://user:pass@hooks.example.com/in", "credentials_in_url"],
  [`https://hooks.example.com/${"a".repeat(2100)}`, "url"],
];

const ACCEPTED_IN_PRODUCTION = [
  "https://hooks.example.com/in",
  "https://hooks.example.com:8443/in?source=edge-tickets",
  "https://93.184.215.14/in",
  "https://172.32.0.1/in", // just past 172.16.0.0/12
  "https://[2606:4700:4700::1111]/in",
  "https://[::ffff:8.8.8.8]/in",
];

const ACCEPTED_IN_DEVELOPMENT = ["http://127.0.0.1:9999/hooks/a", "http://localhost:8787/in", "https://[::1]/in", "http://10.0.0.2/in"];

async function endpointCount(testEnv: Env, apiKey: string): Promise<number> {
  const listed = await adminCall(testEnv, apiKey, "GET", "/webhooks/endpoints");
  expect(listed.status, listed.text).toBe(200);
  return endpointsSchema.parse(listed.json).endpoints.length;
}

describe("webhook endpoint URLs", () => {
  it("in production: https to public hosts only; a refused URL is a 400 that stores nothing", async () => {
    const { apiKey } = await openEvent({ demandClass: "calm", accounts: 0 });
    const { env } = webhookEnv({ production: true });
    for (const [url, problem] of [...REFUSED_IN_PRODUCTION, ...REFUSED_ALWAYS]) {
      const response = await adminCall(env, apiKey, "POST", "/webhooks/endpoints", { url, eventTypes: ["order.created"] });
      const body = expectInvalid(response, "url");
      if (problem !== "url") expect(body.error.details?.[0]?.message, url).toBe(problem);
    }
    expect(await endpointCount(env, apiKey)).toBe(0);
    for (const url of ACCEPTED_IN_PRODUCTION) await createEndpoint(env, apiKey, { url, eventTypes: ["order.created"] });
    expect(await endpointCount(env, apiKey)).toBe(ACCEPTED_IN_PRODUCTION.length);
  });

  it("in local development: http and this machine's addresses too, but never a non-URL", async () => {
    const { apiKey } = await openEvent({ demandClass: "calm", accounts: 0 });
    const { env } = webhookEnv();
    for (const url of ACCEPTED_IN_DEVELOPMENT) await createEndpoint(env, apiKey, { url, eventTypes: ["order.created"] });
    for (const [url] of REFUSED_ALWAYS) expectInvalid(await adminCall(env, apiKey, "POST", "/webhooks/endpoints", { url, eventTypes: ["order.created"] }), "url");
    expect(await endpointCount(env, apiKey)).toBe(ACCEPTED_IN_DEVELOPMENT.length);
  });

  it("an update to a refused URL is a 400 that changes nothing", async () => {
    const { apiKey } = await openEvent({ demandClass: "calm", accounts: 0 });
    const { env } = webhookEnv({ production: true });
    const endpoint = await createEndpoint(env, apiKey, { url: "https://hooks.example.com/in", eventTypes: ["order.created"] });
    expectInvalid(await adminCall(env, apiKey, "PATCH", `/webhooks/endpoints/${endpoint.id}`, { url: "https://169.254.169.254/", description: "changed" }), "url");
    const read = await adminCall(env, apiKey, "GET", `/webhooks/endpoints/${endpoint.id}`);
    expect(read.json).toMatchObject({ endpoint: { url: "https://hooks.example.com/in", description: "" } });
  });
});

describe("webhook endpoints", () => {
  it("are listed, changed, filtered to an event of the organizer's, and deleted; others' are a 404", async () => {
    const { apiKey, event } = await openEvent({ demandClass: "calm", accounts: 0 });
    const other = await openEvent({ demandClass: "calm", accounts: 0 });
    const { env } = webhookEnv({ production: true });
    const endpoint = await createEndpoint(env, apiKey, { url: "https://hooks.example.com/in", eventTypes: ["order.created", "order.created"], description: "orders" });

    const changed = await adminCall(env, apiKey, "PATCH", `/webhooks/endpoints/${endpoint.id}`, { eventTypes: ["order.refunded", "event.cancelled"], eventId: event.id });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json).toMatchObject({ endpoint: { eventTypes: ["order.refunded", "event.cancelled"], eventId: event.id, description: "orders" } });
    // Another organizer's event as the filter; unknown event types; an empty list.
    expect((await adminCall(env, apiKey, "PATCH", `/webhooks/endpoints/${endpoint.id}`, { eventId: other.event.id })).status).toBe(404);
    expectInvalid(await adminCall(env, apiKey, "PATCH", `/webhooks/endpoints/${endpoint.id}`, { eventTypes: ["order.exploded"] }), "eventTypes.0");
    expectInvalid(await adminCall(env, apiKey, "POST", "/webhooks/endpoints", { url: "https://hooks.example.com/in", eventTypes: [] }), "eventTypes");
    expect(endpointsSchema.parse((await adminCall(env, apiKey, "GET", "/webhooks/endpoints")).json).endpoints).toEqual([
      { id: endpoint.id, url: "https://hooks.example.com/in", eventTypes: ["order.refunded", "event.cancelled"], eventId: event.id, description: "orders" },
    ]);
    const cleared = await adminCall(env, apiKey, "PATCH", `/webhooks/endpoints/${endpoint.id}`, { eventId: null });
    expect(cleared.json).toMatchObject({ endpoint: { eventId: null } });

    // Another organizer sees none of it.
    for (const [method, path] of [
      ["GET", `/webhooks/endpoints/${endpoint.id}`],
      ["PATCH", `/webhooks/endpoints/${endpoint.id}`],
      ["DELETE", `/webhooks/endpoints/${endpoint.id}`],
      ["POST", `/webhooks/endpoints/${endpoint.id}/rotate-secret`],
      ["GET", `/webhooks/endpoints/${endpoint.id}/deliveries`],
    ] as const) {
      const response = await adminCall(env, other.apiKey, method, path, method === "PATCH" ? { description: "mine" } : undefined);
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    expect(await endpointCount(env, other.apiKey)).toBe(0);

    expect((await adminCall(env, apiKey, "DELETE", `/webhooks/endpoints/${endpoint.id}`)).status).toBe(204);
    expect((await adminCall(env, apiKey, "GET", `/webhooks/endpoints/${endpoint.id}`)).status).toBe(404);
    expect(await endpointCount(env, apiKey)).toBe(0);
  });
});
