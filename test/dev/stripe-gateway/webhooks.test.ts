/** Events: signed as Stripe signs them, retried, and duplicated, dropped, delayed or reordered on demand. */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { startStripeGateway } from "../../../dev/stripe-gateway/index.ts";
import { API_KEY, createParams, gateway, newHold, receiver, startWebhookReceiver, stripe, useGateway, WEBHOOK_SECRET } from "./fixtures.ts";

useGateway();

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
