/** PaymentIntents: their lifecycle, test cards and declines, as the real `stripe` client sees them. */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { api, cardErrorOf, createParams, gateway, newHold, receiver, rejectionOf, stripe, useGateway } from "./fixtures.ts";

useGateway();

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
});
