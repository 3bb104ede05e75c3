/** Refunds, in full and in part, with their `charge.refunded` events. */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { createParams, gateway, newHold, receiver, rejectionOf, stripe, useGateway } from "./fixtures.ts";

useGateway();

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
