/** `Idempotency-Key` as Stripe documents it for API v1. */
import Stripe from "stripe";
import { describe, expect, it, vi } from "vitest";
import { api, createParams, gateway, newHold, receiver, rejectionOf, stripe, useGateway } from "./fixtures.ts";

useGateway();

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
