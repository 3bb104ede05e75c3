/** The HTTP side: API keys, invalid requests answered as Stripe does, and the fetch-based client a Worker uses. */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { startStripeGateway } from "../../../dev/stripe-gateway/index.ts";
import { api, cardErrorOf, createParams, gateway, newHold, rejectionOf, stripe, useGateway, WEBHOOK_SECRET } from "./fixtures.ts";

useGateway();

describe("API requests", () => {
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
