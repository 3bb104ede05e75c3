import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import { text } from "node:stream/consumers";
import fc from "fast-check";
import Stripe from "stripe";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { startStripeGateway } from "../../dev/stripe-gateway.ts";
import type { StripeGateway } from "../../dev/stripe-gateway.ts";

const API_KEY = "sk_test_local";
const WEBHOOK_SECRET = "whsec_gateway_test_secret";

let gateway: StripeGateway;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  gateway = await startStripeGateway({ port: 0, webhookUrl: receiver.url, webhookSecret: WEBHOOK_SECRET });
});

afterAll(async () => {
  await gateway.close();
  await receiver.close();
});

afterEach(async () => {
  gateway.clearFaults();
  await gateway.flushWebhooks();
  receiver.failNext(0);
  // Every delivery that reached the receiver carried a valid signature.
  expect(receiver.rejected).toEqual([]);
});

/** The real client, pointed at the gateway; it retries like in production (same idempotency key). */
function stripe(options: Stripe.StripeConfig = {}, apiKey = API_KEY): Stripe {
  return new Stripe(apiKey, { host: "127.0.0.1", port: gateway.port, protocol: "http", maxNetworkRetries: 2, timeout: 5_000, telemetry: false, ...options });
}

/** A hold no other test uses; its id goes into the PaymentIntent's metadata, as the Worker puts it. */
function newHold(): { holdId: string; key: (attempt: number) => string } {
  const holdId = `hold_${randomUUID()}`;
  return { holdId, key: (attempt) => `${holdId}:attempt-${attempt}` };
}

function createParams(holdId: string, extra: Partial<Stripe.PaymentIntentCreateParams> = {}): Stripe.PaymentIntentCreateParams {
  return { amount: 4_500, currency: "eur", metadata: { hold_id: holdId }, ...extra };
}

/** The rejection of `promise`, which must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

async function cardErrorOf(promise: Promise<unknown>): Promise<Stripe.errors.StripeCardError> {
  const error = await rejectionOf(promise);
  if (!(error instanceof Stripe.errors.StripeCardError)) throw error;
  return error;
}

/** A raw call, to check the wire format itself. */
async function api(
  method: string,
  path: string,
  init: { form?: Record<string, string>; key?: string | null; idempotencyKey?: string; signal?: AbortSignal } = {},
): Promise<{ status: number; headers: Headers; text: string; body: unknown }> {
  const headers: Record<string, string> = {};
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? API_KEY}`;
  if (init.idempotencyKey !== undefined) headers["idempotency-key"] = init.idempotencyKey;
  const body = init.form === undefined ? undefined : new URLSearchParams(init.form).toString();
  if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  const response = await fetch(`${gateway.url}${path}`, { method, headers, body, signal: init.signal });
  const responseText = await response.text();
  return { status: response.status, headers: response.headers, text: responseText, body: JSON.parse(responseText) };
}

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${gateway.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

describe("PaymentIntents", () => {
  it("creates and confirms in one call: succeeded, one charge, one payment_intent.succeeded", async () => {
    const { holdId, key } = newHold();
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent).toMatchObject({
      object: "payment_intent",
      status: "succeeded",
      amount: 4_500,
      amount_received: 4_500,
      currency: "eur",
      metadata: { hold_id: holdId },
      last_payment_error: null,
      livemode: false,
    });
    expect(intent.id).toMatch(/^pi_\w{24}$/);
    expect(intent.client_secret).toMatch(new RegExp(`^${intent.id}_secret_`));
    expect(intent.payment_method).toMatch(/^pm_\w{24}$/); // a test PaymentMethod becomes a new one, as on Stripe
    expect(intent.latest_charge).toMatch(/^ch_/);
    expect({ ...(await stripe().paymentIntents.retrieve(intent.id)) }).toEqual({ ...intent });

    expect(gateway.charges({ metadata: { hold_id: holdId } })).toMatchObject([
      { id: intent.latest_charge, paymentIntent: intent.id, amount: 4_500, status: "succeeded", captured: true, idempotencyKey: key(1) },
    ]);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
  });

  it("goes requires_payment_method → requires_confirmation → succeeded through update and confirm", async () => {
    const { holdId, key } = newHold();
    const client = stripe();
    const created = await client.paymentIntents.create(createParams(holdId), { idempotencyKey: key(0) });
    expect(created).toMatchObject({ status: "requires_payment_method", payment_method: null, latest_charge: null, amount_received: 0 });

    const updated = await client.paymentIntents.update(created.id, { payment_method: "pm_card_mastercard", metadata: { attempt: "1" } });
    expect(updated).toMatchObject({ status: "requires_confirmation", metadata: { hold_id: holdId, attempt: "1" } });
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);

    const confirmed = await client.paymentIntents.confirm(created.id, {}, { idempotencyKey: key(1) });
    expect(confirmed).toMatchObject({ status: "succeeded", amount_received: 4_500, payment_method: updated.payment_method });
    const charge = await client.charges.retrieve(String(confirmed.latest_charge));
    expect(charge).toMatchObject({ object: "charge", status: "succeeded", paid: true, amount_captured: 4_500, payment_intent: created.id, metadata: { hold_id: holdId, attempt: "1" } });
  });

  it("takes test card numbers as payment_method_data (raw card data is untyped in the client, so over the wire)", async () => {
    const { holdId } = newHold();
    const withCard = (number: string) => ({
      amount: "4500",
      currency: "eur",
      "metadata[hold_id]": holdId,
      confirm: "true",
      "payment_method_data[type]": "card",
      "payment_method_data[card][number]": number,
      "payment_method_data[card][exp_month]": "12",
      "payment_method_data[card][exp_year]": "2034",
      "payment_method_data[card][cvc]": "123",
    });
    expect(await api("POST", "/v1/payment_intents", { form: withCard("4242424242424242") })).toMatchObject({ status: 200, body: { status: "succeeded" } });
    expect(await api("POST", "/v1/payment_intents", { form: withCard("4000000000000002") })).toMatchObject({
      status: 402,
      body: { error: { type: "card_error", code: "card_declined", decline_code: "generic_decline", payment_intent: { status: "requires_payment_method" } } },
    });
    expect(await api("POST", "/v1/payment_intents", { form: withCard("4000000000009995") })).toMatchObject({
      status: 402,
      body: { error: { code: "card_declined", decline_code: "insufficient_funds", message: "Your card has insufficient funds." } },
    });
    expect(await api("POST", "/v1/payment_intents", { form: withCard("4111111111111111") })).toMatchObject({ status: 402, body: { error: { decline_code: "test_mode_live_card" } } });
  });

  it.each([
    { paymentMethod: "pm_card_chargeDeclined", declineCode: "generic_decline", message: "Your card was declined." },
    { paymentMethod: "pm_card_chargeDeclinedInsufficientFunds", declineCode: "insufficient_funds", message: "Your card has insufficient funds." },
  ])("declines $paymentMethod as a StripeCardError ($declineCode), then takes another card", async ({ paymentMethod, declineCode, message }) => {
    const { holdId, key } = newHold();
    const client = stripe();
    const error = await cardErrorOf(client.paymentIntents.create(createParams(holdId, { payment_method: paymentMethod, confirm: true }), { idempotencyKey: key(1) }));
    expect(error).toMatchObject({ type: "StripeCardError", statusCode: 402, code: "card_declined", decline_code: declineCode, message });
    expect(error.payment_intent).toMatchObject({ status: "requires_payment_method", last_payment_error: { code: "card_declined", decline_code: declineCode } });
    const intentId = String(error.payment_intent?.id);

    const afterDecline = await client.paymentIntents.retrieve(intentId);
    expect(afterDecline).toMatchObject({ status: "requires_payment_method", payment_method: null, amount_received: 0, last_payment_error: { type: "card_error", decline_code: declineCode } });
    expect(afterDecline.latest_charge).toBe(error.charge);

    const paid = await client.paymentIntents.confirm(intentId, { payment_method: "pm_card_visa" }, { idempotencyKey: key(2) });
    expect(paid).toMatchObject({ status: "succeeded", last_payment_error: null, amount_received: 4_500 });
    expect(gateway.charges({ paymentIntent: intentId }).map((charge) => [charge.status, charge.declineCode, charge.idempotencyKey])).toEqual([
      ["failed", declineCode, key(1)],
      ["succeeded", null, key(2)],
    ]);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intentId)).toEqual(["payment_intent.payment_failed", "payment_intent.succeeded"]);
    expect(receiver.eventsFor(intentId)[0]?.data.object).toMatchObject({ last_payment_error: { decline_code: declineCode } });
  });

  it("cancels, and then refuses to confirm", async () => {
    const { holdId } = newHold();
    const client = stripe();
    const created = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa" }));
    const canceled = await client.paymentIntents.cancel(created.id, { cancellation_reason: "abandoned" });
    expect(canceled).toMatchObject({ status: "canceled", cancellation_reason: "abandoned" });
    expect(canceled.canceled_at).toEqual(expect.any(Number));

    const error = await rejectionOf(client.paymentIntents.confirm(created.id));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" });
    expect(await rejectionOf(client.paymentIntents.cancel(created.id))).toMatchObject({ code: "payment_intent_unexpected_state" });
    await gateway.settleWebhooks();
    expect(receiver.typesFor(created.id)).toEqual(["payment_intent.canceled"]);
    expect(gateway.charges({ paymentIntent: created.id })).toEqual([]);
  });

  it("authorizes with capture_method=manual and succeeds only on capture", async () => {
    const { holdId } = newHold();
    const client = stripe();
    const authorized = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true, capture_method: "manual" }));
    expect(authorized).toMatchObject({ status: "requires_capture", amount_capturable: 4_500, amount_received: 0 });
    await gateway.settleWebhooks();
    expect(receiver.typesFor(authorized.id)).toEqual([]);

    const captured = await client.paymentIntents.capture(authorized.id);
    expect(captured).toMatchObject({ status: "succeeded", amount_capturable: 0, amount_received: 4_500 });
    await gateway.settleWebhooks();
    expect(receiver.typesFor(authorized.id)).toEqual(["payment_intent.succeeded"]);
  });

  it("lists newest first, with limit and starting_after", async () => {
    const { holdId } = newHold();
    const client = stripe();
    const ids: string[] = [];
    for (let index = 0; index < 3; index++) ids.push((await client.paymentIntents.create(createParams(holdId))).id);
    const firstPage = await client.paymentIntents.list({ limit: 2 });
    expect(firstPage).toMatchObject({ object: "list", has_more: true, url: "/v1/payment_intents" });
    expect(firstPage.data.map((intent) => intent.id)).toEqual([ids[2], ids[1]]);
    const nextPage = await client.paymentIntents.list({ limit: 2, starting_after: ids[1] });
    expect(nextPage.data[0]?.id).toBe(ids[0]);
  });

  it("answers invalid requests as Stripe does: unknown, missing and invalid params, unknown ids, small amounts", async () => {
    expect(await api("POST", "/v1/payment_intents", { form: { amount: "4500", currency: "eur", colour: "red" } })).toMatchObject({
      status: 400,
      body: { error: { type: "invalid_request_error", code: "parameter_unknown", param: "colour", message: "Received unknown parameter: colour" } },
    });
    expect(await api("POST", "/v1/payment_intents", { form: { currency: "eur" } })).toMatchObject({
      status: 400,
      body: { error: { code: "parameter_missing", param: "amount" } },
    });
    expect(await api("POST", "/v1/payment_intents", { form: { amount: "12.5", currency: "eur" } })).toMatchObject({
      status: 400,
      body: { error: { code: "parameter_invalid_integer", param: "amount" } },
    });
    expect(await api("POST", "/v1/payment_intents", { form: { amount: "4500", currency: "eur", "metadata[hold][id]": "x" } })).toMatchObject({
      status: 400,
      body: { error: { param: "metadata[hold]" } },
    });
    expect(await api("POST", "/v1/payment_intents/pi_nope/confirm", { form: {} })).toMatchObject({ status: 404, body: { error: { code: "resource_missing" } } });
    expect(await api("DELETE", "/v1/payment_intents")).toMatchObject({ status: 404, body: { error: { message: expect.stringMatching(/^Unrecognized request URL/) } } });

    const missing = await rejectionOf(stripe().paymentIntents.retrieve("pi_does_not_exist"));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 404, code: "resource_missing", message: "No such payment_intent: 'pi_does_not_exist'" });
    expect(await rejectionOf(stripe().paymentIntents.create({ amount: 10, currency: "eur" }))).toMatchObject({ code: "amount_too_small", param: "amount" });
    expect(await rejectionOf(stripe().paymentIntents.create({ amount: 4_500, currency: "eur", payment_method: "pm_made_up", confirm: true }))).toMatchObject({
      code: "resource_missing",
      param: "payment_method",
    });
  });

  it("serves the fetch-based client a Worker uses, retries included", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", match: { idempotencyKey: key(1) } });
    const client = stripe({ httpClient: Stripe.createFetchHttpClient() });
    const intent = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(gateway.requests({ idempotencyKey: key(1) }).map((request) => request.outcome)).toEqual(["lost", 200]);
    const declined = await cardErrorOf(client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_chargeDeclinedInsufficientFunds", confirm: true })));
    expect(declined).toMatchObject({ statusCode: 402, decline_code: "insufficient_funds" });
  });

  it("requires a test secret key", async () => {
    expect(await rejectionOf(stripe({}, "sk_live_123456789").paymentIntents.list())).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    const missing = await api("GET", "/v1/payment_intents", { key: null });
    expect(missing).toMatchObject({ status: 401, body: { error: { type: "invalid_request_error", message: expect.stringMatching(/^You did not provide an API key/) } } });

    const strict = await startStripeGateway({ port: 0, webhookSecret: WEBHOOK_SECRET, apiKey: "sk_test_only_this_one" });
    try {
      const client = (key: string) => new Stripe(key, { host: "127.0.0.1", port: strict.port, protocol: "http", maxNetworkRetries: 0 });
      expect(await rejectionOf(client("sk_test_another_one").paymentIntents.list())).toMatchObject({ statusCode: 401, type: "StripeAuthenticationError" });
      expect((await client("sk_test_only_this_one").paymentIntents.list()).data).toEqual([]);
    } finally {
      await strict.close();
    }
  });
});

describe("idempotency", () => {
  it("replays the saved response for the same key and parameters, with Idempotent-Replayed, charging once", async () => {
    const { holdId, key } = newHold();
    const client = stripe();
    const params = createParams(holdId, { payment_method: "pm_card_visa", confirm: true });
    const first = await client.paymentIntents.create(params, { idempotencyKey: key(1) });
    const second = await client.paymentIntents.create(params, { idempotencyKey: key(1) });
    expect(second.id).toBe(first.id);
    expect(first.lastResponse.headers["idempotent-replayed"]).toBeUndefined();
    expect(second.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(second.lastResponse.headers["original-request"]).toBe(first.lastResponse.requestId);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(first.id)).toEqual(["payment_intent.succeeded"]);
  });

  it("replays byte for byte, in any parameter order, and replays a decline without a second attempt", async () => {
    const { holdId, key } = newHold();
    const form = { amount: "4500", currency: "eur", "metadata[hold_id]": holdId, payment_method: "pm_card_chargeDeclined", confirm: "true" };
    const reordered = Object.fromEntries(Object.entries(form).reverse());
    const first = await api("POST", "/v1/payment_intents", { form, idempotencyKey: key(1) });
    const replay = await api("POST", "/v1/payment_intents", { form: reordered, idempotencyKey: key(1) });
    expect(first.status).toBe(402);
    expect(replay.status).toBe(402);
    expect(replay.text).toBe(first.text);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("refuses the same key with other parameters or on another endpoint (400 idempotency_error)", async () => {
    const { holdId, key } = newHold();
    const client = stripe();
    const intent = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    const otherAmount = await rejectionOf(client.paymentIntents.create(createParams(holdId, { amount: 9_000, payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    expect(otherAmount).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(otherAmount).toMatchObject({ statusCode: 400, type: "StripeIdempotencyError", message: expect.stringMatching(/same parameters/) });
    const otherEndpoint = await rejectionOf(client.refunds.create({ payment_intent: intent.id }, { idempotencyKey: key(1) }));
    expect(otherEndpoint).toMatchObject({ statusCode: 400, type: "StripeIdempotencyError", message: expect.stringMatching(/same endpoint/) });
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("scopes keys per API key", async () => {
    const { holdId, key } = newHold();
    const mine = await stripe().paymentIntents.create(createParams(holdId), { idempotencyKey: key(1) });
    const theirs = await stripe({}, "sk_test_another_account").paymentIntents.create(createParams(holdId), { idempotencyKey: key(1) });
    expect(theirs.id).not.toBe(mine.id);
  });

  it("saves nothing for a request that fails validation, so the corrected request runs", async () => {
    const { holdId, key } = newHold();
    expect((await api("POST", "/v1/payment_intents", { form: { amount: "lots", currency: "eur" }, idempotencyKey: key(1) })).status).toBe(400);
    const corrected = await api("POST", "/v1/payment_intents", { form: { amount: "4500", currency: "eur", "metadata[hold_id]": holdId }, idempotencyKey: key(1) });
    expect(corrected).toMatchObject({ status: 200, body: { object: "payment_intent", metadata: { hold_id: holdId } } });
  });

  it("answers 409 idempotency_key_in_use while a request with the same key is in progress", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "hang", match: { idempotencyKey: key(1) } });
    const params = createParams(holdId, { payment_method: "pm_card_visa", confirm: true });
    const hanging = rejectionOf(stripe().paymentIntents.create(params, { idempotencyKey: key(1), timeout: 1_000, maxNetworkRetries: 0 }));
    await vi.waitFor(() => expect(gateway.requests({ idempotencyKey: key(1) }).map((request) => request.outcome)).toEqual(["hanging"]), { interval: 5 });

    const concurrent = await rejectionOf(stripe().paymentIntents.create(params, { idempotencyKey: key(1), maxNetworkRetries: 0 }));
    expect(concurrent).toMatchObject({ statusCode: 409, raw: { type: "idempotency_error", code: "idempotency_key_in_use" } });
    expect(await hanging).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
  });

  it("under concurrent requests with one key, creates one PaymentIntent and one charge", async () => {
    const { holdId, key } = newHold();
    const form = { amount: "4500", currency: "eur", "metadata[hold_id]": holdId, payment_method: "pm_card_visa", confirm: "true" };
    const answers = await Promise.all(Array.from({ length: 25 }, () => api("POST", "/v1/payment_intents", { form, idempotencyKey: key(1) })));
    expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([200]));
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
    expect(gateway.paymentIntents({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("ignores the key on GET", async () => {
    const { key } = newHold();
    expect((await api("GET", "/v1/payment_intents?limit=1", { idempotencyKey: key(1) })).status).toBe(200);
    expect((await api("GET", "/v1/payment_intents?limit=2", { idempotencyKey: key(1) })).status).toBe(200);
  });
});

describe("faults", () => {
  it("error500 fails before acting; the client's retry with the same key charges exactly once", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "error500", match: { path: "/v1/payment_intents", idempotencyKey: key(1) } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(gateway.requests({ idempotencyKey: key(1) }).map((request) => [request.outcome, request.fault])).toEqual([
      [500, "error500"],
      [200, null],
    ]);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("error500 on every try surfaces as StripeAPIError, and nothing was created", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "error500", count: 2, match: { idempotencyKey: key(1) } });
    const error = await rejectionOf(stripe({ maxNetworkRetries: 1 }).paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(error).toMatchObject({ statusCode: 500, raw: { type: "api_error" } });
    expect(gateway.paymentIntents({ metadata: { hold_id: holdId } })).toEqual([]);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
  });

  it("lose_response charges, then the client's automatic retry gets the replayed result: one charge, one event", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", match: { metadata: { hold_id: holdId } } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(intent.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(gateway.requests({ idempotencyKey: key(1) }).map((request) => [request.outcome, request.replayed])).toEqual([
      ["lost", false],
      [200, true],
    ]);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
  });

  it("lose_response is retried once even with maxNetworkRetries 0 (a closed connection), so the key matters there too", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", match: { idempotencyKey: key(1) } });
    const intent = await stripe({ maxNetworkRetries: 0 }).paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("lose_response on every try leaves the client unsure; retrieving shows the charge went through, and a later retry replays it", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", count: 2, match: { idempotencyKey: key(1) } });
    const params = createParams(holdId, { payment_method: "pm_card_visa", confirm: true });
    const error = await rejectionOf(stripe({ maxNetworkRetries: 0 }).paymentIntents.create(params, { idempotencyKey: key(1) }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);

    const [truth] = gateway.paymentIntents({ metadata: { hold_id: holdId } });
    expect(truth).toMatchObject({ status: "succeeded", amount_received: 4_500 });
    expect((await stripe().paymentIntents.retrieve(String(truth?.id))).status).toBe("succeeded");
    const retried = await stripe().paymentIntents.create(params, { idempotencyKey: key(1) });
    expect(retried.id).toBe(truth?.id);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("hang: the client times out, nothing was charged, and a retry with the same key charges once", async () => {
    const { holdId, key } = newHold();
    const client = stripe();
    const intent = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa" }), { idempotencyKey: key(0) });
    gateway.addFault({ mode: "hang", match: { path: `/v1/payment_intents/${intent.id}/confirm` } });
    const error = await rejectionOf(client.paymentIntents.confirm(intent.id, {}, { idempotencyKey: key(1), timeout: 200, maxNetworkRetries: 0 }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(error).toMatchObject({ message: expect.stringMatching(/timeout/) });

    expect(await client.paymentIntents.retrieve(intent.id)).toMatchObject({ status: "requires_confirmation", latest_charge: null });
    expect(gateway.charges({ paymentIntent: intent.id })).toEqual([]);
    await vi.waitFor(() => expect(gateway.requests({ idempotencyKey: key(1) })[0]?.outcome).toBe("hung"), { interval: 5 });

    const confirmed = await client.paymentIntents.confirm(intent.id, {}, { idempotencyKey: key(1) });
    expect(confirmed.status).toBe("succeeded");
    expect(gateway.charges({ paymentIntent: intent.id })).toHaveLength(1);
  });

  it("hang: the client's own retry after its timeout succeeds, charging once", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "hang", match: { idempotencyKey: key(1) } });
    const intent = await stripe({ timeout: 300 }).paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    const outcomes = gateway.requests({ idempotencyKey: key(1) }).map((request) => request.outcome);
    expect(outcomes[0]).toBe("hung");
    expect(outcomes.at(-1)).toBe(200);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("decline declines a good card for the matching hold only, count times", async () => {
    const { holdId, key } = newHold();
    const other = newHold();
    gateway.addFault({ mode: "decline", declineCode: "insufficient_funds", match: { metadata: { hold_id: holdId } } });
    const otherIntent = await stripe().paymentIntents.create(createParams(other.holdId, { payment_method: "pm_card_visa", confirm: true }));
    expect(otherIntent.status).toBe("succeeded");

    const error = await cardErrorOf(stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    expect(error).toMatchObject({ code: "card_declined", decline_code: "insufficient_funds" });
    const paid = await stripe().paymentIntents.confirm(String(error.payment_intent?.id), { payment_method: "pm_card_visa" }, { idempotencyKey: key(2) });
    expect(paid.status).toBe("succeeded");
  });

  it("whatever request faults hit, a client retrying with the same key ends with one PaymentIntent, one charge and one answer", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom("error500", "lose_response", "hang", "none"), { maxLength: 4 }), async (schedule) => {
        const { holdId, key } = newHold();
        for (const mode of schedule) if (mode !== "none") gateway.addFault({ mode, match: { idempotencyKey: key(1) } });
        const form = { amount: "4500", currency: "eur", "metadata[hold_id]": holdId, payment_method: "pm_card_visa", confirm: "true" };
        const answers: string[] = [];
        for (let attempt = 0; attempt < 12 && answers.length < 2; attempt++) {
          const answer = await api("POST", "/v1/payment_intents", { form, idempotencyKey: key(1), signal: AbortSignal.timeout(100) }).catch(() => undefined);
          if (answer?.status === 200) answers.push(answer.text);
        }
        expect(answers).toHaveLength(2);
        expect(answers[1]).toBe(answers[0]);
        expect(gateway.paymentIntents({ metadata: { hold_id: holdId } })).toHaveLength(1);
        expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
      }),
      { numRuns: 25 },
    );
  });
});

describe("create, then confirm (the Worker's two calls)", () => {
  const requestModes = fc.array(fc.constantFrom("error500", "lose_response", "hang", "none"), { maxLength: 4 });

  /** Sends one request until it is answered 200, as a client retrying with the same key does; returns the answers' bodies. */
  async function untilAnswered(path: string, form: Record<string, string>, idempotencyKey: string, answers = 1): Promise<unknown[]> {
    const bodies: unknown[] = [];
    for (let attempt = 0; attempt < 12 && bodies.length < answers; attempt++) {
      const answer = await api("POST", path, { form, idempotencyKey, signal: AbortSignal.timeout(100) }).catch(() => undefined);
      if (answer?.status === 200) bodies.push(answer.body);
    }
    expect(bodies).toHaveLength(answers);
    return bodies;
  }

  it("whatever request faults hit either call, the create charges nothing, the confirm charges once, and the paid intent cannot be canceled", async () => {
    await fc.assert(
      fc.asyncProperty(requestModes, requestModes, async (createFaults, confirmFaults) => {
        const { holdId, key } = newHold();
        for (const mode of createFaults) if (mode !== "none") gateway.addFault({ mode, match: { path: "/v1/payment_intents", metadata: { hold_id: holdId } } });
        for (const mode of confirmFaults) if (mode !== "none") gateway.addFault({ mode, match: { path: "/v1/payment_intents/*/confirm", metadata: { hold_id: holdId } } });

        const form = { amount: "4500", currency: "eur", "metadata[hold_id]": holdId, payment_method: "pm_card_visa" };
        const [created] = await untilAnswered("/v1/payment_intents", form, key(1));
        const intentId = z.object({ id: z.string(), status: z.literal("requires_confirmation") }).parse(created).id;
        expect(gateway.paymentIntents({ metadata: { hold_id: holdId } }).map((intent) => [intent.id, intent.status])).toEqual([[intentId, "requires_confirmation"]]);
        expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
        await gateway.settleWebhooks();
        expect(receiver.typesFor(intentId)).toEqual([]);

        const [first, second] = await untilAnswered(`/v1/payment_intents/${intentId}/confirm`, {}, `${key(1)}_confirm`, 2);
        expect(second).toEqual(first);
        expect(first).toMatchObject({ id: intentId, status: "succeeded" });
        expect(gateway.charges({ metadata: { hold_id: holdId } })).toMatchObject([{ paymentIntent: intentId, status: "succeeded", idempotencyKey: `${key(1)}_confirm` }]);
        const cancel = await api("POST", `/v1/payment_intents/${intentId}/cancel`, { form: {} });
        expect(cancel).toMatchObject({ status: 400, body: { error: { code: "payment_intent_unexpected_state", payment_intent: { status: "succeeded" } } } });
      }),
      { numRuns: 25 },
    );
  });

  it("a cancel whose answer was lost took effect: the intent is canceled and a confirm afterwards charges nothing", async () => {
    const { holdId, key } = newHold();
    const client = stripe({ maxNetworkRetries: 0 });
    const intent = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa" }), { idempotencyKey: key(1) });
    gateway.addFault({ mode: "lose_response", count: 2, match: { path: "/v1/payment_intents/*/cancel", metadata: { hold_id: holdId } } });
    expect(await rejectionOf(client.paymentIntents.cancel(intent.id))).toBeInstanceOf(Stripe.errors.StripeConnectionError);

    expect(await client.paymentIntents.retrieve(intent.id)).toMatchObject({ status: "canceled", latest_charge: null });
    const late = await rejectionOf(client.paymentIntents.confirm(intent.id, {}, { idempotencyKey: `${key(1)}_confirm` }));
    expect(late).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" });
    expect(gateway.charges({ paymentIntent: intent.id })).toEqual([]);
  });
});

describe("refunds", () => {
  async function paidIntent(holdId: string): Promise<Stripe.PaymentIntent> {
    return stripe().paymentIntents.create(createParams(holdId, { amount: 5_000, payment_method: "pm_card_visa", confirm: true }));
  }

  it("refunds in full with a charge.refunded event, then refuses a second refund", async () => {
    const { holdId, key } = newHold();
    const client = stripe();
    const intent = await paidIntent(holdId);
    const refund = await client.refunds.create({ payment_intent: intent.id, reason: "requested_by_customer" }, { idempotencyKey: key(9) });
    expect(refund).toMatchObject({ object: "refund", amount: 5_000, status: "succeeded", charge: intent.latest_charge, payment_intent: intent.id, reason: "requested_by_customer" });
    expect(refund.id).toMatch(/^re_/);
    expect({ ...(await client.refunds.retrieve(refund.id)) }).toEqual({ ...refund });
    expect(await client.charges.retrieve(String(intent.latest_charge))).toMatchObject({ amount_refunded: 5_000, refunded: true });

    await gateway.settleWebhooks();
    const [succeeded, refunded] = receiver.eventsFor(intent.id);
    expect(succeeded?.type).toBe("payment_intent.succeeded");
    expect(refunded).toMatchObject({ type: "charge.refunded", data: { object: { object: "charge", amount_refunded: 5_000, refunded: true }, previous_attributes: { amount_refunded: 0, refunded: false } } });

    const again = await rejectionOf(client.refunds.create({ payment_intent: intent.id }));
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again).toMatchObject({ code: "charge_already_refunded" });
    expect(gateway.charges({ paymentIntent: intent.id })).toMatchObject([{ amountRefunded: 5_000 }]);
  });

  it("refunds partially, up to what is left", async () => {
    const { holdId } = newHold();
    const client = stripe();
    const intent = await paidIntent(holdId);
    expect((await client.refunds.create({ payment_intent: intent.id, amount: 1_500 })).amount).toBe(1_500);
    expect(await rejectionOf(client.refunds.create({ payment_intent: intent.id, amount: 3_501 }))).toMatchObject({ code: "amount_too_large", param: "amount" });
    expect((await client.refunds.create({ charge: String(intent.latest_charge) })).amount).toBe(3_500);
    await gateway.settleWebhooks();
    expect(receiver.eventsFor(intent.id).filter((event) => event.type === "charge.refunded").map((event) => event.data.object)).toMatchObject([
      { amount_refunded: 1_500, refunded: false },
      { amount_refunded: 5_000, refunded: true },
    ]);
  });

  it("refuses to refund a PaymentIntent without a successful charge", async () => {
    const { holdId } = newHold();
    const intent = await stripe().paymentIntents.create(createParams(holdId));
    expect(await rejectionOf(stripe().refunds.create({ payment_intent: intent.id }))).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
  });
});

describe("webhooks", () => {
  it("sends Stripe's event envelope, signed so constructEvent accepts it; a tampered payload or another secret fails", async () => {
    const { holdId } = newHold();
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: `${holdId}:1` });
    await gateway.settleWebhooks();
    const [delivery] = receiver.deliveriesFor(intent.id);
    if (!delivery) throw new Error("no delivery");
    expect(delivery.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(delivery.event).toMatchObject({
      object: "event",
      type: "payment_intent.succeeded",
      api_version: Stripe.API_VERSION,
      livemode: false,
      request: { idempotency_key: `${holdId}:1` },
      data: { object: { id: intent.id, status: "succeeded", metadata: { hold_id: holdId } } },
    });
    expect(delivery.event.id).toMatch(/^evt_/);
    expect(await Stripe.webhooks.constructEventAsync(delivery.raw, delivery.signature, WEBHOOK_SECRET)).toEqual(delivery.event);

    const tampered = delivery.raw.replace('"amount": 4500', '"amount": 1');
    expect(tampered).not.toBe(delivery.raw);
    expect(() => Stripe.webhooks.constructEvent(tampered, delivery.signature, WEBHOOK_SECRET)).toThrow(Stripe.errors.StripeSignatureVerificationError);
    expect(() => Stripe.webhooks.constructEvent(delivery.raw, delivery.signature, "whsec_someone_else")).toThrow(Stripe.errors.StripeSignatureVerificationError);
  });

  it("retries a failed delivery, with the attempts recorded", async () => {
    const { holdId } = newHold();
    receiver.failNext(1);
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }));
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
    const [delivery] = gateway.webhooks({ paymentIntent: intent.id });
    expect(delivery).toMatchObject({ status: "delivered", attempts: [{ status: 500 }, { status: 200 }] });
  });

  it("gives up after a bounded number of attempts", async () => {
    const failing = await startWebhookReceiver();
    failing.failNext(Number.MAX_SAFE_INTEGER);
    const own = await startStripeGateway({ port: 0, webhookUrl: failing.url, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [1, 1, 1] });
    try {
      const client = new Stripe(API_KEY, { host: "127.0.0.1", port: own.port, protocol: "http" });
      const intent = await client.paymentIntents.create({ amount: 4_500, currency: "eur", payment_method: "pm_card_visa", confirm: true });
      await own.settleWebhooks();
      expect(own.webhooks({ paymentIntent: intent.id })).toMatchObject([{ status: "failed", attempts: [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }] }]);
    } finally {
      await own.close();
      await failing.close();
    }
  });

  it("duplicate_webhook sends the same event twice", async () => {
    const { holdId } = newHold();
    gateway.addFault({ mode: "duplicate_webhook", match: { metadata: { hold_id: holdId }, eventType: "payment_intent.succeeded" } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }));
    await gateway.settleWebhooks();
    const events = receiver.eventsFor(intent.id);
    expect(events.map((event) => event.type)).toEqual(["payment_intent.succeeded", "payment_intent.succeeded"]);
    expect(events[1]?.id).toBe(events[0]?.id);
    expect(gateway.webhooks({ paymentIntent: intent.id }).map((delivery) => [delivery.status, delivery.duplicate])).toEqual([
      ["delivered", false],
      ["delivered", true],
    ]);
  });

  it("drop_webhook never sends the event; later events still go", async () => {
    const { holdId } = newHold();
    gateway.addFault({ mode: "drop_webhook", match: { metadata: { hold_id: holdId } } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }));
    await stripe().refunds.create({ payment_intent: intent.id });
    await gateway.flushWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["charge.refunded"]);
    expect(gateway.webhooks({ paymentIntent: intent.id }).map((delivery) => [delivery.type, delivery.status])).toEqual([
      ["payment_intent.succeeded", "dropped"],
      ["charge.refunded", "delivered"],
    ]);
  });

  it("delay_webhook holds the event until flush", async () => {
    const { holdId } = newHold();
    gateway.addFault({ mode: "delay_webhook", match: { metadata: { hold_id: holdId } } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }));
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual([]);
    expect(gateway.webhooks({ paymentIntent: intent.id })).toMatchObject([{ status: "held", attempts: [] }]);
    expect(await gateway.flushWebhooks()).toBe(1);
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
  });

  it("delay_webhook with delayMs sends the event that much later", async () => {
    const { holdId } = newHold();
    gateway.addFault({ mode: "delay_webhook", delayMs: 50, match: { metadata: { hold_id: holdId } } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }));
    expect(gateway.webhooks({ paymentIntent: intent.id })).toMatchObject([{ status: "held" }]);
    await gateway.settleWebhooks(); // waits for the timer, no flush
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
    expect(gateway.webhooks({ paymentIntent: intent.id })).toMatchObject([{ status: "delivered" }]);
  });

  it("reorder_webhooks holds count events and sends them in reverse", async () => {
    const { holdId } = newHold();
    gateway.addFault({ mode: "reorder_webhooks", count: 2, match: { metadata: { hold_id: holdId } } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }));
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual([]);
    await stripe().refunds.create({ payment_intent: intent.id });
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["charge.refunded", "payment_intent.succeeded"]);
  });

  it("records signed payloads even without an endpoint, so a test can post them itself", async () => {
    const own = await startStripeGateway({ port: 0, webhookSecret: WEBHOOK_SECRET });
    try {
      const client = new Stripe(API_KEY, { host: "127.0.0.1", port: own.port, protocol: "http" });
      const intent = await client.paymentIntents.create({ amount: 4_500, currency: "eur", payment_method: "pm_card_chargeDeclined", confirm: true }).catch((error: unknown) => {
        if (error instanceof Stripe.errors.StripeCardError && error.payment_intent) return error.payment_intent;
        throw error;
      });
      const [delivery] = own.webhooks({ paymentIntent: intent.id });
      if (!delivery) throw new Error("no delivery recorded");
      expect(delivery).toMatchObject({ status: "no_endpoint", type: "payment_intent.payment_failed" });
      expect(Stripe.webhooks.constructEvent(delivery.payload, delivery.signature, WEBHOOK_SECRET)).toMatchObject({ type: "payment_intent.payment_failed" });
    } finally {
      await own.close();
    }
  });
});

describe("control over HTTP (for the Worker's tests in workerd)", () => {
  it("adds, lists and removes faults; rejects a bad one", async () => {
    const { holdId } = newHold();
    const added = await control("POST", "/__faults", { mode: "error500", count: 1, match: { path: "/v1/payment_intents", metadata: { hold_id: holdId } } });
    expect(added).toMatchObject({ status: 201, body: { id: expect.any(String), mode: "error500", remaining: 1 } });
    const { id } = z.object({ id: z.string() }).parse(added.body);
    expect((await control("GET", "/__faults")).body).toMatchObject([{ id, remaining: 1 }]);
    expect(await control("DELETE", `/__faults/${id}`)).toEqual({ status: 200, body: { cleared: 1 } });
    expect(await control("DELETE", `/__faults/${id}`)).toEqual({ status: 404, body: { cleared: 0 } });

    expect((await control("POST", "/__faults", { mode: "explode" })).status).toBe(400);
    expect((await control("POST", "/__faults", { mode: "reorder_webhooks", count: 1 })).status).toBe(400);
    expect((await control("POST", "/__faults", { mode: "hang", declineCode: "insufficient_funds" })).status).toBe(400);
    await control("POST", "/__faults", { mode: "hang", count: 3 });
    expect(await control("DELETE", "/__faults")).toEqual({ status: 200, body: { cleared: 1 } });
  });

  it("drives a decline and a delayed webhook, and shows charges, intents, webhooks and requests filtered by hold", async () => {
    const { holdId, key } = newHold();
    await control("POST", "/__faults", { mode: "decline", match: { metadata: { hold_id: holdId } } });
    await control("POST", "/__faults", { mode: "delay_webhook", count: 2, match: { metadata: { hold_id: holdId } } });
    const declined = await cardErrorOf(stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    const intentId = String(declined.payment_intent?.id);
    await stripe().paymentIntents.confirm(intentId, { payment_method: "pm_card_visa" }, { idempotencyKey: key(2) });

    const query = `metadata[hold_id]=${encodeURIComponent(holdId)}`;
    expect((await control("GET", `/__charges?${query}`)).body).toMatchObject([
      { paymentIntent: intentId, status: "failed", declineCode: "generic_decline", idempotencyKey: key(1) },
      { paymentIntent: intentId, status: "succeeded", idempotencyKey: key(2) },
    ]);
    expect((await control("GET", `/__payment_intents?${query}`)).body).toMatchObject([{ id: intentId, status: "succeeded" }]);
    expect((await control("GET", `/__requests?idempotency_key=${encodeURIComponent(key(2))}`)).body).toMatchObject([{ outcome: 200, paymentIntent: intentId, metadata: { hold_id: holdId } }]);

    expect((await control("POST", "/__webhooks/settle")).status).toBe(200);
    expect(receiver.typesFor(intentId)).toEqual([]);
    expect((await control("GET", `/__webhooks?payment_intent=${intentId}`)).body).toMatchObject([{ status: "held" }, { status: "held" }]);
    expect(await control("POST", "/__webhooks/flush")).toEqual({ status: 200, body: { released: 2 } });
    expect(receiver.typesFor(intentId)).toEqual(["payment_intent.payment_failed", "payment_intent.succeeded"]);
    expect((await control("GET", `/__webhooks?type=payment_intent.succeeded&${query}`)).body).toMatchObject([{ status: "delivered", eventId: expect.stringMatching(/^evt_/) }]);
  });
});

interface Delivery {
  raw: string;
  signature: string;
  event: Stripe.Event;
}

interface WebhookReceiver {
  url: string;
  /** Deliveries whose signature did not verify (none, ever, from the gateway). */
  rejected: { raw: string; signature: string; error: string }[];
  deliveriesFor(paymentIntent: string): Delivery[];
  eventsFor(paymentIntent: string): Stripe.Event[];
  typesFor(paymentIntent: string): string[];
  /** Answers the next `count` deliveries with 500. */
  failNext(count: number): void;
  close(): Promise<void>;
}

/** A webhook endpoint as the Worker's will be: it verifies every signature with the real library. */
async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const rejected: WebhookReceiver["rejected"] = [];
  let failures = 0;
  const server = createServer((request, response) => {
    void text(request).then((raw) => {
      if (failures > 0) {
        failures -= 1;
        response.writeHead(500).end();
        return;
      }
      const signature = String(request.headers["stripe-signature"]);
      try {
        deliveries.push({ raw, signature, event: Stripe.webhooks.constructEvent(raw, signature, WEBHOOK_SECRET) });
        response.writeHead(200).end();
      } catch (error) {
        rejected.push({ raw, signature, error: String(error) });
        response.writeHead(400).end();
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const deliveriesFor = (paymentIntent: string) => deliveries.filter((delivery) => paymentIntentOf(delivery.event) === paymentIntent);
  return {
    url: `http://127.0.0.1:${address.port}/webhooks/stripe`,
    rejected,
    deliveriesFor,
    eventsFor: (paymentIntent) => deliveriesFor(paymentIntent).map((delivery) => delivery.event),
    typesFor: (paymentIntent) => deliveriesFor(paymentIntent).map((delivery) => delivery.event.type),
    failNext(count) {
      failures = count;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function paymentIntentOf(event: Stripe.Event): string | null {
  switch (event.type) {
    case "payment_intent.succeeded":
    case "payment_intent.payment_failed":
    case "payment_intent.canceled":
      return event.data.object.id;
    case "charge.refunded": {
      const intent = event.data.object.payment_intent;
      return typeof intent === "string" ? intent : (intent?.id ?? null);
    }
    default:
      return null;
  }
}
