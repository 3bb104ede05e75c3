/**
 * The dashboard's side of the gateway: a refund made outside the API and a
 * dispute opened by the cardholder's bank, each sent as its signed event in
 * Stripe's wire format (Charge with `refunded`, `amount_refunded`, `refunds`;
 * Dispute with `charge`, `payment_intent`, `reason`, `status`).
 */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { control, createParams, gateway, newHold, receiver, rejectionOf, stripe, useGateway } from "./fixtures.ts";

useGateway();

async function paidIntent(holdId: string): Promise<Stripe.PaymentIntent> {
  return stripe().paymentIntents.create(createParams(holdId, { amount: 5_000, payment_method: "pm_card_visa", confirm: true }));
}

describe("dashboard refunds", () => {
  it("refund a charge in part and then in full, each with a charge.refunded event listing its refunds", async () => {
    const { holdId } = newHold();
    const intent = await paidIntent(holdId);
    const partial = await control("POST", "/__dashboard/refund", { payment_intent: intent.id, amount: 1_000 });
    expect(partial.status).toBe(200);
    expect(partial.body).toMatchObject({ object: "refund", amount: 1_000, status: "succeeded", payment_intent: intent.id, charge: intent.latest_charge });
    const rest = await control("POST", "/__dashboard/refund", { charge: intent.latest_charge, reason: "requested_by_customer" });
    expect(rest.body).toMatchObject({ object: "refund", amount: 4_000, reason: "requested_by_customer" });

    await gateway.settleWebhooks();
    const refunds = receiver.eventsFor(intent.id).filter((event) => event.type === "charge.refunded");
    expect(refunds).toHaveLength(2);
    const [first, second] = refunds.map((event) => (event.type === "charge.refunded" ? event.data.object : undefined));
    expect(first).toMatchObject({ object: "charge", id: intent.latest_charge, payment_intent: intent.id, amount: 5_000, amount_refunded: 1_000, refunded: false, metadata: { hold_id: holdId } });
    expect(first?.refunds).toMatchObject({ object: "list", has_more: false, total_count: 1, url: `/v1/charges/${String(intent.latest_charge)}/refunds`, data: [{ amount: 1_000 }] });
    expect(second).toMatchObject({ amount_refunded: 5_000, refunded: true, refunds: { total_count: 2, data: [{ amount: 4_000 }, { amount: 1_000 }] } });
    // Made outside the API: the events name a request, with no idempotency key.
    expect(refunds.every((event) => event.request?.idempotency_key === null && typeof event.request.id === "string")).toBe(true);
    // The API sees the same charge.
    expect(await stripe().charges.retrieve(String(intent.latest_charge))).toMatchObject({ amount_refunded: 5_000, refunded: true, refunds: { total_count: 2 } });
  });

  it("refuses what Stripe refuses, with Stripe's errors, and sends nothing", async () => {
    const { holdId } = newHold();
    const intent = await paidIntent(holdId);
    expect(await control("POST", "/__dashboard/refund", { payment_intent: intent.id, amount: 5_001 })).toMatchObject({ status: 400, body: { error: { code: "amount_too_large" } } });
    expect(await control("POST", "/__dashboard/refund", { payment_intent: "pi_nope" })).toMatchObject({ status: 404, body: { error: { code: "resource_missing" } } });
    expect(await control("POST", "/__dashboard/refund", {})).toMatchObject({ status: 400, body: { error: { code: "parameter_missing" } } });
    expect(await control("POST", "/__dashboard/refund", { payment_intent: intent.id, amount: "ten" })).toMatchObject({ status: 400, body: { error: { type: "invalid_request_error" } } });
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
  });
});

describe("disputes", () => {
  it("open a dispute on a charge with a charge.dispute.created event; the charge is then disputed and cannot be refunded", async () => {
    const { holdId } = newHold();
    const intent = await paidIntent(holdId);
    const opened = await control("POST", "/__dashboard/dispute", { payment_intent: intent.id, reason: "fraudulent" });
    expect(opened.status).toBe(200);
    const dispute = opened.body;
    expect(dispute).toMatchObject({ object: "dispute", amount: 5_000, currency: "eur", charge: intent.latest_charge, payment_intent: intent.id, reason: "fraudulent", status: "needs_response", metadata: {} });
    expect(await stripe().disputes.retrieve((dispute as { id: string }).id)).toMatchObject({ id: (dispute as { id: string }).id, status: "needs_response" });
    expect(await stripe().charges.retrieve(String(intent.latest_charge))).toMatchObject({ disputed: true, refunded: false });

    await gateway.settleWebhooks();
    const [, created] = receiver.eventsFor(intent.id);
    expect(created).toMatchObject({ type: "charge.dispute.created", data: { object: { object: "dispute", charge: intent.latest_charge, payment_intent: intent.id, reason: "fraudulent", status: "needs_response" } } });
    // Inspection and faults find a dispute's deliveries by its charge's metadata (the hold).
    expect(gateway.webhooks({ metadata: { hold_id: holdId } }).map((delivery) => delivery.type)).toEqual(["payment_intent.succeeded", "charge.dispute.created"]);

    expect(await control("POST", "/__dashboard/dispute", { charge: intent.latest_charge })).toMatchObject({ status: 400, body: { error: { code: "charge_disputed" } } });
    expect(await rejectionOf(stripe().refunds.create({ payment_intent: intent.id }))).toMatchObject({ code: "charge_disputed" });
    expect(await control("POST", "/__dashboard/dispute", { charge: intent.latest_charge, reason: "because" })).toMatchObject({ status: 400 });
  });

  it("a dispute's event obeys webhook faults scoped to the hold", async () => {
    const { holdId } = newHold();
    const intent = await paidIntent(holdId);
    gateway.addFault({ mode: "duplicate_webhook", match: { metadata: { hold_id: holdId }, eventType: "charge.dispute.created" } });
    await control("POST", "/__dashboard/dispute", { payment_intent: intent.id });
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded", "charge.dispute.created", "charge.dispute.created"]);
  });

  it("cannot dispute a charge that never succeeded", async () => {
    const { holdId } = newHold();
    const intent = await stripe().paymentIntents.create(createParams(holdId));
    expect(await control("POST", "/__dashboard/dispute", { payment_intent: intent.id })).toMatchObject({ status: 400 });
  });

  it("the merchant answers through the API: winning evidence wins it (updated, then closed), accepting loses it, and a closed dispute takes no more", async () => {
    const won = await openedDispute();
    const answered = await stripe().disputes.update(won.dispute.id, { evidence: { uncategorized_text: "winning_evidence" } });
    expect(answered).toMatchObject({ id: won.dispute.id, status: "won" });
    await gateway.settleWebhooks();
    const events = receiver.eventsFor(won.intent.id).filter((event) => event.type.startsWith("charge.dispute."));
    expect(events.map((event) => [event.type, (event.data.object as Stripe.Dispute).status])).toEqual([
      ["charge.dispute.created", "needs_response"],
      ["charge.dispute.updated", "under_review"],
      ["charge.dispute.closed", "won"],
    ]);
    expect(events[1]?.data.previous_attributes).toEqual({ status: "needs_response" });
    expect(gateway.webhooks({ metadata: { hold_id: won.holdId } }).map((delivery) => delivery.type)).toContain("charge.dispute.closed");
    expect(await rejectionOf(stripe().disputes.close(won.dispute.id))).toMatchObject({ type: "StripeInvalidRequestError" });

    const lost = await openedDispute();
    expect(await stripe().disputes.close(lost.dispute.id)).toMatchObject({ status: "lost" });
    expect(await stripe().disputes.retrieve(lost.dispute.id)).toMatchObject({ status: "lost" });
    // Evidence not submitted changes nothing and sends nothing.
    const pending = await openedDispute();
    expect(await stripe().disputes.update(pending.dispute.id, { evidence: { uncategorized_text: "winning_evidence" }, submit: false })).toMatchObject({ status: "needs_response" });
    expect(await rejectionOf(stripe().disputes.update("dp_missing", {}))).toMatchObject({ statusCode: 404 });
  });
});

/** A paid intent and a dispute the bank opened on it. */
async function openedDispute(): Promise<{ holdId: string; intent: Stripe.PaymentIntent; dispute: { id: string } }> {
  const { holdId } = newHold();
  const intent = await paidIntent(holdId);
  const opened = await control("POST", "/__dashboard/dispute", { payment_intent: intent.id });
  return { holdId, intent, dispute: opened.body as { id: string } };
}
