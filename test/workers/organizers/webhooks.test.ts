/**
 * Organizer webhook deliveries: signed the Standard Webhooks way (checked
 * with a verifier written here, on node:crypto, apart from the Worker's
 * WebCrypto signer), retried with backoff until a receiver accepts, dead
 * after the last attempt, and sent again on request. Real HTTP to loopback
 * receivers; the queue's retries are driven attempt by attempt.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { emitOrganizerEvents } from "../../../workers/organizers/webhooks/emit";
import { WEBHOOK_MAX_ATTEMPTS, webhookBackoffSeconds } from "../../../workers/organizers/webhooks/consumer";
import { signWebhook } from "../../../workers/organizers/webhooks/signing";
import { withDb } from "../../fixtures/db";
import { openEvent } from "../../fixtures/seeding";
import { adminCall, attemptDelivery, consumeDeadLetters, createEndpoint, deliveriesOf, receiver, webhookEnv, type ReceivedWebhook } from "../../fixtures/webhooks";

/**
 * A Standard Webhooks verifier from the spec alone: the key is the base64
 * after `whsec_`; the signed content is `{id}.{timestamp}.{body}`; any of the
 * space-separated `v1,` signatures may match; the timestamp must be within
 * five minutes of now.
 */
function verifyStandardWebhook(secret: string, headers: Record<string, string | undefined>, body: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(" ").some((entry) => {
    const [version, signature] = entry.split(",");
    if (version !== "v1" || !signature) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

const payloadSchema = z.strictObject({ type: z.string(), timestamp: z.string(), data: z.record(z.string(), z.unknown()) });

/** An organizer with an event, a receiver and an endpoint on it for `event.cancelled`, and a delivery of one. */
async function deliveryToReceiver() {
  const { apiKey, event } = await openEvent({ demandClass: "calm", accounts: 0 });
  const hooks = webhookEnv();
  const hook = receiver();
  const endpoint = await createEndpoint(hooks.env, apiKey, { url: hook.url, eventTypes: ["event.cancelled"] });
  const emitted = await withDb((db) => emitOrganizerEvents({ db, env: hooks.env }, [{ type: "event.cancelled", eventId: event.id, sourceId: event.id, data: { eventId: event.id } }]));
  expect(emitted).toBe(1);
  const [deliveryId] = hooks.queuedDeliveries();
  if (!deliveryId) throw new Error("nothing queued");
  return { apiKey, event, hooks, hook, endpoint, deliveryId };
}

const logSchema = z.object({
  deliveries: z.array(
    z.object({
      id: z.uuid(),
      status: z.enum(["pending", "delivered", "dead"]),
      nextAttemptAt: z.string().nullable(),
      attempts: z.array(z.object({ attemptedAt: z.string(), httpStatus: z.number().nullable(), responseSnippet: z.string(), error: z.string().nullable() })),
    }),
  ),
});

async function deliveryLog(hooks: ReturnType<typeof webhookEnv>, apiKey: string, endpointId: string) {
  const response = await adminCall(hooks.env, apiKey, "GET", `/webhooks/endpoints/${endpointId}/deliveries`);
  expect(response.status, response.text).toBe(200);
  return logSchema.parse(response.json).deliveries;
}

function only<T>(items: T[]): T {
  expect(items).toHaveLength(1);
  const [item] = items;
  if (item === undefined) throw new Error("empty");
  return item;
}

describe("webhook signatures", () => {
  it("match the Standard Webhooks reference vector", async () => {
    // The specification's own example (standard-webhooks/standard-webhooks, libraries' test suites).
    const headers = await signWebhook(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    expect(headers["webhook-signature"]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("verify with an independent verifier, and fail when anything is tampered with", async () => {
    const { hooks, hook, endpoint, deliveryId, event } = await deliveryToReceiver();
    expect(await attemptDelivery(hooks, deliveryId, 1)).toEqual({ outcome: "acked" });
    const got = only(await hook.received());
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(payloadSchema.parse(JSON.parse(got.body))).toMatchObject({ type: "event.cancelled", data: { eventId: event.id } });
    expect(verifyStandardWebhook(endpoint.secret, got.headers, got.body)).toBe(true);

    const tampered = (headers: Partial<Record<string, string>>, body = got.body) => verifyStandardWebhook(endpoint.secret, { ...got.headers, ...headers }, body);
    expect(tampered({}, got.body.replace(event.id, crypto.randomUUID()))).toBe(false);
    expect(tampered({ "webhook-id": "msg_other" })).toBe(false);
    expect(tampered({ "webhook-timestamp": String(Number(got.headers["webhook-timestamp"]) + 1) })).toBe(false);
    expect(tampered({ "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")}` })).toBe(false);
    expect(verifyStandardWebhook(`whsec_${Buffer.alloc(32, 7).toString("base64")}`, got.headers, got.body)).toBe(false);
  });

  it("carry the new and the rotated-out secret's signatures through the grace period", async () => {
    const { apiKey, hooks, hook, endpoint, deliveryId } = await deliveryToReceiver();
    const rotated = await adminCall(hooks.env, apiKey, "POST", `/webhooks/endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.status, rotated.text).toBe(200);
    const { secret, endpoint: view } = z.object({ secret: z.string(), endpoint: z.object({ previousSecretExpiresAt: z.string() }) }).parse(rotated.json);
    expect(secret).not.toBe(endpoint.secret);
    expect(new Date(view.previousSecretExpiresAt).getTime()).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    expect(await attemptDelivery(hooks, deliveryId, 1)).toEqual({ outcome: "acked" });
    const got = only(await hook.received());
    expect(got.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(verifyStandardWebhook(secret, got.headers, got.body)).toBe(true);
    expect(verifyStandardWebhook(endpoint.secret, got.headers, got.body)).toBe(true);
    // The secret is never listed.
    const listed = await adminCall(hooks.env, apiKey, "GET", "/webhooks/endpoints");
    expect(listed.text).not.toContain("whsec_");
  });
});

describe("webhook retries", () => {
  it("get a delivery to a receiver that fails twice on the third try, with backoff between", async () => {
    const { apiKey, hooks, hook, endpoint, deliveryId } = await deliveryToReceiver();
    await hook.behave(2);
    expect(await attemptDelivery(hooks, deliveryId, 1)).toEqual({ outcome: "retried", delaySeconds: webhookBackoffSeconds(1) });
    const afterFirst = only(await deliveryLog(hooks, apiKey, endpoint.id));
    expect(afterFirst.status).toBe("pending");
    expect(afterFirst.attempts.map((a) => a.httpStatus)).toEqual([500]);
    expect(afterFirst.attempts[0]?.responseSnippet).toContain("failing on purpose");
    expect(new Date(afterFirst.nextAttemptAt ?? 0).getTime()).toBeGreaterThan(Date.now() + (webhookBackoffSeconds(1) - 5) * 1000);
    expect(await attemptDelivery(hooks, deliveryId, 2)).toEqual({ outcome: "retried", delaySeconds: webhookBackoffSeconds(2) });
    expect(webhookBackoffSeconds(2)).toBeGreaterThan(webhookBackoffSeconds(1));
    expect(await attemptDelivery(hooks, deliveryId, 3)).toEqual({ outcome: "acked" });

    const received = await hook.received();
    expect(received.map((r: ReceivedWebhook) => r.answered)).toEqual([500, 500, 200]);
    // One webhook-id for every attempt, so the receiver can deduplicate.
    expect(new Set(received.map((r) => r.headers["webhook-id"])).size).toBe(1);
    const delivered = only(await deliveryLog(hooks, apiKey, endpoint.id));
    expect(delivered).toMatchObject({ status: "delivered", nextAttemptAt: null });
    expect(delivered.attempts.map((a) => a.httpStatus)).toEqual([500, 500, 200]);
    // Delivered: a stray redelivery of its message sends nothing more.
    expect(await attemptDelivery(hooks, deliveryId, 4)).toEqual({ outcome: "acked" });
    expect(await hook.received()).toHaveLength(3);
  });

  it("end in the dead letters when the receiver always fails, the log says so, and a resend delivers it", async () => {
    const { apiKey, hooks, hook, endpoint, deliveryId } = await deliveryToReceiver();
    await hook.behave(null, 503);
    for (let attempt = 1; attempt < WEBHOOK_MAX_ATTEMPTS; attempt++) {
      expect(await attemptDelivery(hooks, deliveryId, attempt)).toEqual({ outcome: "retried", delaySeconds: webhookBackoffSeconds(attempt) });
    }
    expect(await attemptDelivery(hooks, deliveryId, WEBHOOK_MAX_ATTEMPTS)).toEqual({ outcome: "dead_lettered" });
    expect(hooks.deadLetters.bodies).toEqual([{ kind: "webhook", deliveryId }]);
    await consumeDeadLetters(hooks);
    const dead = only(await deliveryLog(hooks, apiKey, endpoint.id));
    expect(dead).toMatchObject({ id: deliveryId, status: "dead", nextAttemptAt: null });
    expect(dead.attempts.map((a) => a.httpStatus)).toEqual(Array.from({ length: WEBHOOK_MAX_ATTEMPTS }, () => 503));
    const deadOnly = await adminCall(hooks.env, apiKey, "GET", `/webhooks/endpoints/${endpoint.id}/deliveries?status=dead`);
    expect(logSchema.parse(deadOnly.json).deliveries.map((d) => d.id)).toEqual([deliveryId]);

    // The receiver is fixed; the organizer sends the delivery again.
    await hook.behave(0);
    const queuedBefore = hooks.queuedDeliveries().length;
    const resent = await adminCall(hooks.env, apiKey, "POST", `/webhooks/deliveries/${deliveryId}/resend`);
    expect(resent.status, resent.text).toBe(202);
    expect(z.object({ delivery: z.object({ status: z.literal("pending") }) }).parse(resent.json).delivery.status).toBe("pending");
    expect(hooks.queuedDeliveries().slice(queuedBefore)).toEqual([deliveryId]);
    expect(await attemptDelivery(hooks, deliveryId, 1)).toEqual({ outcome: "acked" });
    const delivered = only(await deliveryLog(hooks, apiKey, endpoint.id));
    expect(delivered.status).toBe("delivered");
    expect(delivered.attempts).toHaveLength(WEBHOOK_MAX_ATTEMPTS + 1);
    const received = await hook.received();
    expect(received.at(-1)?.answered).toBe(200);
    expect(new Set(received.map((r) => r.headers["webhook-id"])).size).toBe(1);
  });

  it("do not follow redirects: a redirect is a failed attempt", async () => {
    const { apiKey, hooks, hook, endpoint, deliveryId } = await deliveryToReceiver();
    await hook.behave(null, 307);
    expect(await attemptDelivery(hooks, deliveryId, 1)).toEqual({ outcome: "retried", delaySeconds: webhookBackoffSeconds(1) });
    expect((await hook.received()).map((r) => r.answered)).toEqual([307]);
    expect(await hook.received("redirected")).toEqual([]);
    expect(only(await deliveryLog(hooks, apiKey, endpoint.id)).attempts.map((a) => a.httpStatus)).toEqual([307]);
  });

  it("never reach a URL the environment does not allow, whatever was stored", async () => {
    // Stored in local development (a loopback receiver), attempted where such URLs are refused.
    const { apiKey, hooks, hook, endpoint, deliveryId } = await deliveryToReceiver();
    const production = { ...hooks, env: { ...hooks.env, WEBHOOKS_ALLOW_LOCAL: "" } };
    expect(await attemptDelivery(production, deliveryId, 1)).toEqual({ outcome: "retried", delaySeconds: webhookBackoffSeconds(1) });
    expect(await hook.received()).toEqual([]);
    const attempt = only(only(await deliveryLog(hooks, apiKey, endpoint.id)).attempts);
    expect(attempt).toMatchObject({ httpStatus: null, error: "url refused: https_required" });
  });

  it("resend answers 404 for another organizer's delivery and queues nothing", async () => {
    const { hooks, deliveryId, endpoint } = await deliveryToReceiver();
    const before = await deliveriesOf(endpoint.id);
    const other = await openEvent({ demandClass: "calm", accounts: 0 });
    const queuedBefore = hooks.queuedDeliveries().length;
    const response = await adminCall(hooks.env, other.apiKey, "POST", `/webhooks/deliveries/${deliveryId}/resend`);
    expect(response.status, response.text).toBe(404);
    expect(hooks.queuedDeliveries()).toHaveLength(queuedBefore);
    expect(await deliveriesOf(endpoint.id)).toEqual(before);
  });
});
