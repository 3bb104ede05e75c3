/**
 * The dashboard's side of the gateway: a refund made outside the API and a
 * dispute opened by the cardholder's bank (a chargeback, or an inquiry on
 * Stripe's inquiry test card, which the bank may escalate), each sent as its
 * signed events in Stripe's wire format (Charge with `refunded`,
 * `amount_refunded`, `refunds`; Dispute with `charge`, `payment_intent`,
 * `reason`, `status`, `is_charge_refundable`, `balance_transactions`).
 */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { control, createParams, gateway, newHold, receiver, rejectionOf, stripe, useGateway } from "./fixtures.ts";

useGateway();

async function paidIntent(holdId: string, paymentMethod = "pm_card_visa"): Promise<Stripe.PaymentIntent> {
  return stripe().paymentIntents.create(createParams(holdId, { amount: 5_000, payment_method: paymentMethod, confirm: true }));
}

function statusesOf(events: Stripe.Event[]): [string, string][] {
  return events.filter((event) => event.type.startsWith("charge.dispute.")).map((event) => [event.type, (event.data.object as Stripe.Dispute).status]);
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
  it("open a chargeback on a charge with charge.dispute.created and charge.dispute.funds_withdrawn; the charge is then disputed and cannot be refunded", async () => {
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
    expect(created).toMatchObject({
      type: "charge.dispute.created",
      data: { object: { object: "dispute", charge: intent.latest_charge, payment_intent: intent.id, reason: "fraudulent", status: "needs_response", is_charge_refundable: false } },
    });
    const withdrawn = receiver.eventsFor(intent.id).find((event) => event.type === "charge.dispute.funds_withdrawn");
    expect(withdrawn?.data.object).toMatchObject({ status: "needs_response", balance_transactions: [{ object: "balance_transaction", amount: -5_000, fee: 1_500, net: -6_500, reporting_category: "dispute", type: "adjustment" }] });
    // Inspection and faults find a dispute's deliveries by its charge's metadata (the hold).
    expect(gateway.webhooks({ metadata: { hold_id: holdId } }).map((delivery) => delivery.type)).toEqual(["payment_intent.succeeded", "charge.dispute.created", "charge.dispute.funds_withdrawn"]);

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
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded", "charge.dispute.created", "charge.dispute.created", "charge.dispute.funds_withdrawn"]);
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
    expect(statusesOf(events)).toEqual([
      ["charge.dispute.created", "needs_response"],
      ["charge.dispute.funds_withdrawn", "needs_response"],
      ["charge.dispute.updated", "under_review"],
      ["charge.dispute.closed", "won"],
    ]);
    expect(events[2]?.data.previous_attributes).toEqual({ status: "needs_response" });
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

describe("inquiries", () => {
  it("a charge on pm_card_createDisputeInquiry succeeds, then its bank opens an inquiry: warning_needs_response, nothing withdrawn, the charge still refundable", async () => {
    const { holdId } = newHold();
    const intent = await paidIntent(holdId, "pm_card_createDisputeInquiry");
    expect(intent.status).toBe("succeeded");
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded", "charge.dispute.created"]);
    const [, created] = receiver.eventsFor(intent.id);
    expect(created?.data.object).toMatchObject({
      object: "dispute",
      amount: 5_000,
      charge: intent.latest_charge,
      payment_intent: intent.id,
      reason: "fraudulent",
      status: "warning_needs_response",
      is_charge_refundable: true,
      balance_transactions: [],
    });
    expect(gateway.webhooks({ metadata: { hold_id: holdId } }).map((delivery) => delivery.type)).toEqual(["payment_intent.succeeded", "charge.dispute.created"]);
    expect(await stripe().charges.retrieve(String(intent.latest_charge))).toMatchObject({ disputed: true });
    // An inquiry withdrew nothing: the merchant may still refund the charge; another dispute is refused.
    expect(await stripe().refunds.create({ payment_intent: intent.id })).toMatchObject({ status: "succeeded", amount: 5_000 });
    expect(await control("POST", "/__dashboard/dispute", { payment_intent: intent.id })).toMatchObject({ status: 400, body: { error: { code: "charge_disputed" } } });
  });

  it("a manually captured charge on the inquiry card is disputed once captured", async () => {
    const { holdId } = newHold();
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_createDisputeInquiry", confirm: true, capture_method: "manual" }));
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual([]);
    await stripe().paymentIntents.capture(intent.id);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded", "charge.dispute.created"]);
  });

  it("the bank escalates an inquiry to a chargeback under the same id: charge.dispute.updated (needs_response, the inquiry's attributes as previous), then funds_withdrawn", async () => {
    const { intent, dispute } = await openedInquiry();
    const escalated = await control("POST", "/__dashboard/dispute/escalate", { dispute: dispute.id });
    expect(escalated).toMatchObject({ status: 200, body: { id: dispute.id, status: "needs_response", is_charge_refundable: false } });
    await gateway.settleWebhooks();
    const events = receiver.eventsFor(intent.id);
    expect(statusesOf(events)).toEqual([
      ["charge.dispute.created", "warning_needs_response"],
      ["charge.dispute.updated", "needs_response"],
      ["charge.dispute.funds_withdrawn", "needs_response"],
    ]);
    const [, updated, withdrawn] = events.filter((event) => event.type.startsWith("charge.dispute."));
    expect(updated?.data.object).toMatchObject({ id: dispute.id, is_charge_refundable: false, balance_transactions: [{ amount: -4_500, source: dispute.id }] });
    expect(updated?.data.previous_attributes).toEqual({ status: "warning_needs_response", is_charge_refundable: true, balance_transactions: [] });
    expect(withdrawn?.data.object).toMatchObject({ id: dispute.id, balance_transactions: [{ amount: -4_500, fee: 1_500, net: -6_000, currency: "eur" }] });
    // Now a chargeback: the charge cannot be refunded, and it does not escalate twice.
    expect(await rejectionOf(stripe().refunds.create({ payment_intent: intent.id }))).toMatchObject({ code: "charge_disputed" });
    expect(await control("POST", "/__dashboard/dispute/escalate", { dispute: dispute.id })).toMatchObject({ status: 400 });
    expect(await control("POST", "/__dashboard/dispute/escalate", { dispute: "dp_missing" })).toMatchObject({ status: 404 });
    expect(await control("POST", "/__dashboard/dispute/escalate", {})).toMatchObject({ status: 400 });
    expect(await stripe().disputes.close(dispute.id)).toMatchObject({ status: "lost" });
  });

  it("the merchant answers an inquiry: winning evidence closes it warning_closed, losing evidence escalates it; accepting one is refused", async () => {
    const closed = await openedInquiry();
    expect(await stripe().disputes.update(closed.dispute.id, { evidence: { uncategorized_text: "winning_evidence" } })).toMatchObject({ status: "warning_closed" });
    const escalated = await openedInquiry();
    expect(await stripe().disputes.update(escalated.dispute.id, { evidence: { uncategorized_text: "losing_evidence" } })).toMatchObject({ status: "needs_response" });
    await gateway.settleWebhooks();
    expect(statusesOf(receiver.eventsFor(closed.intent.id))).toEqual([
      ["charge.dispute.created", "warning_needs_response"],
      ["charge.dispute.updated", "warning_under_review"],
      ["charge.dispute.closed", "warning_closed"],
    ]);
    expect(statusesOf(receiver.eventsFor(escalated.intent.id))).toEqual([
      ["charge.dispute.created", "warning_needs_response"],
      ["charge.dispute.updated", "warning_under_review"],
      ["charge.dispute.updated", "needs_response"],
      ["charge.dispute.funds_withdrawn", "needs_response"],
    ]);
    // A closed inquiry takes no more; its charge stays refundable.
    expect(await control("POST", "/__dashboard/dispute/escalate", { dispute: closed.dispute.id })).toMatchObject({ status: 400 });
    expect(await rejectionOf(stripe().disputes.update(closed.dispute.id, { evidence: { uncategorized_text: "losing_evidence" } }))).toMatchObject({ type: "StripeInvalidRequestError" });
    expect(await stripe().refunds.create({ payment_intent: closed.intent.id })).toMatchObject({ status: "succeeded" });
    const open = await openedInquiry();
    expect(await rejectionOf(stripe().disputes.close(open.dispute.id))).toMatchObject({ type: "StripeInvalidRequestError" });
  });
});

/** A paid intent on Stripe's inquiry test card, and the inquiry its bank opened. */
async function openedInquiry(): Promise<{ intent: Stripe.PaymentIntent; dispute: Stripe.Dispute }> {
  const { holdId } = newHold();
  const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_createDisputeInquiry", confirm: true }));
  await gateway.settleWebhooks();
  const created = receiver.eventsFor(intent.id).find((event) => event.type === "charge.dispute.created");
  if (created?.type !== "charge.dispute.created") throw new Error("no inquiry");
  return { intent, dispute: created.data.object };
}

/** A paid intent and a dispute the bank opened on it. */
async function openedDispute(): Promise<{ holdId: string; intent: Stripe.PaymentIntent; dispute: { id: string } }> {
  const { holdId } = newHold();
  const intent = await paidIntent(holdId);
  const opened = await control("POST", "/__dashboard/dispute", { payment_intent: intent.id });
  return { holdId, intent, dispute: opened.body as { id: string } };
}
