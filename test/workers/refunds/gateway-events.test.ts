/**
 * Refunds and disputes made at the gateway (`charge.refunded` from the
 * Stripe dashboard, `charge.dispute.created` from the cardholder's bank):
 * each voids the order's tickets and returns its places to the waitlist, as
 * an organizer's refund does; a partial refund is recorded and voids
 * nothing; a dispute inquiry (no money withdrawn) is recorded and voids
 * nothing until it escalates to a chargeback; a replayed event, or the event of a refund our admin API made,
 * changes nothing more; an event about a charge that is not ours changes
 * nothing at all.
 */
import { eq } from "drizzle-orm";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { orders, payments, tickets } from "../../../core/db/schema";
import { withDb } from "../../fixtures/db";
import { answerDispute, chargesOfIntent, dashboardRefund, deliver, deliveriesOf, disputeCharge, escalateDispute, refundRequestsOf, sent, sign, webhooksOf, type WebhookDelivery } from "../../fixtures/gateway";
import { callApp } from "../../fixtures/http";
import { deliveriesOf as webhookDeliveriesOf } from "../../fixtures/webhooks";
import { fanOf, type Fan, type Sale } from "../../fixtures/seeding";
import { clock, closeEntries, freeSeats, holdOf, holdSeats, join, offerEmails, openWaitlistSale, paidOrder, statuses } from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(async () => {
  clock.stop();
  await closeEntries();
});

async function orderRow(orderId: string) {
  const [row] = await withDb((db) => db.select().from(orders).where(eq(orders.id, orderId)));
  if (!row) throw new Error("no order");
  return row;
}

async function ticketStatuses(orderId: string): Promise<string[]> {
  return withDb(async (db) => (await db.select({ status: tickets.status }).from(tickets).where(eq(tickets.orderId, orderId))).map((t) => t.status));
}

/** Posts every delivery of `type` for the hold, each expected to be accepted; returns how many. */
async function deliverEach(holdId: string, type: string): Promise<number> {
  const deliveries = await deliveriesOf(holdId, type);
  for (const delivery of deliveries) {
    const answer = await deliver(delivery);
    expect(answer.status, answer.body).toBe(200);
  }
  return deliveries.length;
}

/** A paid order of two seats (paid with `paymentMethod`, Stripe's test card by default), and a second fan waiting for two seats (the other four are held, so the event is sold out). */
async function soldOutWithWaiter(demandClass: "calm" | "hot", paymentMethod?: string): Promise<{ sale: Sale; waiter: Fan; order: Awaited<ReturnType<typeof paidOrder>> }> {
  const sale = await openWaitlistSale({ demandClass, fans: 3 });
  const order = await paidOrder(sale, fanOf(sale, 0), [0, 1], paymentMethod);
  await holdSeats(sale, fanOf(sale, 2).accountId, [2, 3, 4, 5]);
  const waiter = fanOf(sale, 1);
  await join(sale, waiter, { quantity: 2 });
  return { sale, waiter, order };
}

async function expectOfferedTo(sale: Sale, waiter: Fan): Promise<void> {
  expect(await statuses(sale)).toEqual([undefined, "offered", undefined]);
  expect(await offerEmails(waiter)).toHaveLength(1);
}

/** The order is still sold: confirmed, its tickets valid, the waiter still waiting, no place free. */
async function expectStillSold(sale: Sale, waiter: Fan, orderId: string): Promise<void> {
  expect((await orderRow(orderId)).status).toBe("confirmed");
  expect(await ticketStatuses(orderId)).toEqual(["valid", "valid"]);
  expect(await statuses(sale)).toEqual([undefined, "waiting", undefined]);
  expect(await offerEmails(waiter)).toHaveLength(0);
  expect(await freeSeats(sale)).toEqual([]);
}

/** The id of the dispute opened on a hold's payment (from its charge.dispute.created). */
async function disputeIdOf(holdId: string): Promise<string> {
  const [created] = await deliveriesOf(holdId, "charge.dispute.created");
  if (!created) throw new Error("no charge.dispute.created");
  return z.object({ data: z.object({ object: z.object({ id: z.string() }) }) }).parse(JSON.parse(created.payload)).data.object.id;
}

/** Stripe's test PaymentMethod whose charge its bank questions with an inquiry (`warning_needs_response`). */
const INQUIRY_CARD = "pm_card_createDisputeInquiry";

describe.each(["calm", "hot"] as const)("gateway events for a %s event", (demandClass) => {
  it("a refund made in the Stripe dashboard voids the tickets and offers the places to the waitlist; replays change nothing", async () => {
    const { sale, waiter, order } = await soldOutWithWaiter(demandClass);
    // The organizer listens for refunds (a public https URL: nothing is sent in this test).
    const endpoint = await callApp("POST", "/admin/webhooks/endpoints", { bearer: sale.apiKey, body: { url: "https://hooks.example.com/refunds", eventTypes: ["order.refunded"] } });
    expect(endpoint.status, endpoint.text).toBe(201);
    const endpointId = z.object({ endpoint: z.object({ id: z.uuid() }) }).parse(endpoint.json).endpoint.id;
    await dashboardRefund(order.paymentIntentId);
    expect(await deliverEach(order.holdId, "charge.refunded")).toBe(1);

    expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
    const refunded = await orderRow(order.orderId);
    expect(refunded).toMatchObject({ status: "refunded", refundedCents: order.amountCents, disputeStatus: null });
    const [payment] = await withDb((db) => db.select().from(payments).where(eq(payments.holdId, order.holdId)));
    expect(payment?.status).toBe("refunded");
    expect((await holdOf(sale, order.holdId))?.status).toBe("refunded");
    await expectOfferedTo(sale, waiter);

    // The same event again, twice, later: nothing more changes (not even the order's updatedAt), nothing reaches the gateway.
    clock.advance(1_000);
    await deliverEach(order.holdId, "charge.refunded");
    await deliverEach(order.holdId, "charge.refunded");
    expect(await orderRow(order.orderId)).toEqual(refunded);
    await expectOfferedTo(sale, waiter);
    expect((await webhookDeliveriesOf(endpointId)).map((d) => d.eventType)).toEqual(["order.refunded"]);
    expect(await refundRequestsOf(order.paymentIntentId)).toEqual([]);
  });

  it("a dispute voids the tickets, marks the order disputed with its reason, and offers the places; replays change nothing", async () => {
    const { sale, waiter, order } = await soldOutWithWaiter(demandClass);
    await disputeCharge(order.paymentIntentId, "fraudulent");
    expect(await deliverEach(order.holdId, "charge.dispute.created")).toBe(1);

    expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
    const disputed = await orderRow(order.orderId);
    expect(disputed).toMatchObject({ status: "disputed", refundedCents: 0, disputeReason: "fraudulent", disputeStatus: "needs_response" });
    await expectOfferedTo(sale, waiter);

    clock.advance(1_000);
    await deliverEach(order.holdId, "charge.dispute.created");
    expect(await orderRow(order.orderId)).toEqual(disputed);
    await expectOfferedTo(sale, waiter);

    // The payment's own success, delivered again after the dispute (the gateway redelivers), changes nothing: the sale
    // is recorded, so its returned places are no reason to refund (a disputed charge is not ours to refund).
    expect(await deliverEach(order.holdId, "payment_intent.succeeded")).toBeGreaterThan(0);
    expect(await orderRow(order.orderId)).toEqual(disputed);
    expect(await refundRequestsOf(order.paymentIntentId)).toEqual([]);

    // The organizer's view says so; refunding it now changes nothing (the bank holds the money).
    const listed = await callApp("GET", `/admin/events/${sale.eventId}/orders?status=disputed`, { bearer: sale.apiKey });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.json).toMatchObject({ orders: [{ orderId: order.orderId, status: "disputed", liveTickets: 0, refundedCents: 0, dispute: { reason: "fraudulent", status: "needs_response" } }] });
    const refund = await callApp("POST", `/admin/orders/${order.orderId}/refund`, { bearer: sale.apiKey });
    expect(refund.status, refund.text).toBe(200);
    expect(refund.json).toMatchObject({ order: { status: "disputed" }, waitlistOffers: 0 });
    expect(await refundRequestsOf(order.paymentIntentId)).toEqual([]);
  });

  it("an inquiry (no money withdrawn) is recorded on the order for the organizer; the order stays sold, its tickets valid; closed, nothing changes", async () => {
    const { sale, waiter, order } = await soldOutWithWaiter(demandClass, INQUIRY_CARD);
    expect(await deliverEach(order.holdId, "charge.dispute.created")).toBe(1);
    expect(await orderRow(order.orderId)).toMatchObject({ status: "confirmed", refundedCents: 0, disputeReason: "fraudulent", disputeStatus: "warning_needs_response" });
    await expectStillSold(sale, waiter, order.orderId);
    const listed = await callApp("GET", `/admin/events/${sale.eventId}/orders?status=confirmed`, { bearer: sale.apiKey });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.json).toMatchObject({ orders: [{ orderId: order.orderId, status: "confirmed", liveTickets: 2, dispute: { reason: "fraudulent", status: "warning_needs_response" } }] });

    // The merchant answers and the bank closes the inquiry: recorded, nothing else changes.
    await answerDispute(await disputeIdOf(order.holdId), "winning_evidence");
    expect(await deliverEach(order.holdId, "charge.dispute.updated")).toBe(1);
    expect(await deliverEach(order.holdId, "charge.dispute.closed")).toBe(1);
    expect(await orderRow(order.orderId)).toMatchObject({ status: "confirmed", disputeStatus: "warning_closed" });
    await expectStillSold(sale, waiter, order.orderId);

    // The organizer may still refund it (an inquiry leaves the charge refundable).
    const refund = await callApp("POST", `/admin/orders/${order.orderId}/refund`, { bearer: sale.apiKey });
    expect(refund.status, refund.text).toBe(200);
    expect(refund.json).toMatchObject({ order: { status: "refunded" }, waitlistOffers: 1 });
    expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
  });

  it.each(["charge.dispute.updated", "charge.dispute.funds_withdrawn"])(
    "an inquiry escalated to a chargeback (%s first) voids the tickets and offers the places once; redeliveries change nothing",
    async (first) => {
      const { sale, waiter, order } = await soldOutWithWaiter(demandClass, INQUIRY_CARD);
      await deliverEach(order.holdId, "charge.dispute.created");
      await expectStillSold(sale, waiter, order.orderId);

      await escalateDispute(await disputeIdOf(order.holdId));
      expect(await deliverEach(order.holdId, first)).toBe(1);
      expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
      const disputed = await orderRow(order.orderId);
      expect(disputed).toMatchObject({ status: "disputed", refundedCents: 0, disputeReason: "fraudulent", disputeStatus: "needs_response" });
      await expectOfferedTo(sale, waiter);

      // The other escalation event, then every dispute event again, later: nothing more changes.
      clock.advance(1_000);
      for (const type of ["charge.dispute.updated", "charge.dispute.funds_withdrawn", "charge.dispute.created", "charge.dispute.updated"]) await deliverEach(order.holdId, type);
      expect(await orderRow(order.orderId)).toEqual(disputed);
      await expectOfferedTo(sale, waiter);
      expect(await freeSeats(sale)).toEqual([]);
      expect(await refundRequestsOf(order.paymentIntentId)).toEqual([]);
    },
  );

  it("a dispute's news is recorded as it moves forward, whatever order it arrives in: refused before the opening, never moved back; the tickets stay void", async () => {
    const { sale, order } = await soldOutWithWaiter(demandClass);
    await disputeCharge(order.paymentIntentId, "fraudulent");
    const [created] = await deliveriesOf(order.holdId, "charge.dispute.created");
    if (!created) throw new Error("no charge.dispute.created");
    const disputeId = z.object({ data: z.object({ object: z.object({ id: z.string() }) }) }).parse(JSON.parse(created.payload)).data.object.id;
    await answerDispute(disputeId, "winning_evidence");
    const [updated] = await deliveriesOf(order.holdId, "charge.dispute.updated");
    const [closed] = await deliveriesOf(order.holdId, "charge.dispute.closed");
    if (!updated || !closed) throw new Error("no dispute news");

    const early = await deliver(closed);
    expect(early.status, early.body).toBe(503);
    expect(JSON.parse(early.body)).toMatchObject({ error: { code: "dispute_not_recorded" } });
    expect((await orderRow(order.orderId)).disputeStatus).toBeNull();
    expect((await deliver(created)).status).toBe(200);
    expect((await deliver(closed)).status).toBe(200);
    expect(await orderRow(order.orderId)).toMatchObject({ status: "disputed", disputeReason: "fraudulent", disputeStatus: "won" });
    // The older news, late, and the closing again, change nothing.
    expect((await deliver(updated)).status).toBe(200);
    expect((await deliver(closed)).status).toBe(200);
    expect((await orderRow(order.orderId)).disputeStatus).toBe("won");
    expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
    const listed = await callApp("GET", `/admin/events/${sale.eventId}/orders?status=disputed`, { bearer: sale.apiKey });
    expect(listed.json).toMatchObject({ orders: [{ orderId: order.orderId, dispute: { reason: "fraudulent", status: "won" } }] });
  });
});

describe("gateway events", () => {
  it("a refund our admin API made, and its charge.refunded webhook, are one refund", async () => {
    const { sale, waiter, order } = await soldOutWithWaiter("calm");
    const answer = await callApp("POST", `/admin/orders/${order.orderId}/refund`, { bearer: sale.apiKey });
    expect(answer.status, answer.text).toBe(200);
    const refunded = await orderRow(order.orderId);
    expect(refunded).toMatchObject({ status: "refunded", refundedCents: order.amountCents });
    await expectOfferedTo(sale, waiter);

    clock.advance(1_000);
    expect(await deliverEach(order.holdId, "charge.refunded")).toBe(1);
    expect(await orderRow(order.orderId)).toEqual(refunded);
    await expectOfferedTo(sale, waiter);
    expect((await refundRequestsOf(order.paymentIntentId)).filter((r) => !r.replayed)).toHaveLength(1);
    expect((await chargesOfIntent(order.paymentIntentId))[0]?.amountRefunded).toBe(order.amountCents);
  });

  it("a partial refund is recorded and leaves the tickets valid; the rest refunded, the order is returned", async () => {
    const { sale, waiter, order } = await soldOutWithWaiter("calm");
    await dashboardRefund(order.paymentIntentId, 500);
    await deliverEach(order.holdId, "charge.refunded");
    expect(await orderRow(order.orderId)).toMatchObject({ status: "confirmed", refundedCents: 500 });
    expect(await ticketStatuses(order.orderId)).toEqual(["valid", "valid"]);
    expect(await statuses(sale)).toEqual([undefined, "waiting", undefined]);

    await dashboardRefund(order.paymentIntentId);
    const [partial, rest] = await deliveriesOf(order.holdId, "charge.refunded");
    if (!partial || !rest) throw new Error("two refund events expected");
    // Out of order: the full refund first, then the partial one late; the amount is never lowered.
    for (const delivery of [rest, partial]) expect((await deliver(delivery)).status).toBe(200);
    expect(await orderRow(order.orderId)).toMatchObject({ status: "refunded", refundedCents: order.amountCents });
    expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
    await expectOfferedTo(sale, waiter);
  });

  it("a full refund arriving after a dispute returned the order is still recorded, on the order and the payment", async () => {
    const { sale, waiter, order } = await soldOutWithWaiter("calm");
    await dashboardRefund(order.paymentIntentId);
    await disputeCharge(order.paymentIntentId, "duplicate");
    await deliverEach(order.holdId, "charge.dispute.created");
    await deliverEach(order.holdId, "charge.refunded");
    expect(await orderRow(order.orderId)).toMatchObject({ status: "disputed", refundedCents: order.amountCents, disputeReason: "duplicate" });
    const [payment] = await withDb((db) => db.select().from(payments).where(eq(payments.holdId, order.holdId)));
    expect(payment?.status).toBe("refunded");
    await expectOfferedTo(sale, waiter);
  });

  it("acknowledges an event about a charge that is not ours and changes nothing", async () => {
    const { sale, order } = await soldOutWithWaiter("calm");
    await dashboardRefund(order.paymentIntentId);
    const [refundEvent] = await deliveriesOf(order.holdId, "charge.refunded");
    if (!refundEvent) throw new Error("no refund event");
    const answer = await deliverAbout(refundEvent, order.paymentIntentId, newIntentId());
    expect(answer.status, answer.body).toBe(200);
    expect(await orderRow(order.orderId)).toMatchObject({ status: "confirmed", refundedCents: 0 });
    expect(await ticketStatuses(order.orderId)).toEqual(["valid", "valid"]);
    expect(await statuses(sale)).toEqual([undefined, "waiting", undefined]);
    expect(await freeSeats(sale)).toEqual([]);
  });

  it("refuses (503) an event whose paid payment has no order yet, so the gateway sends it again; none is needed after an automatic refund", async () => {
    const { sale, order } = await soldOutWithWaiter("calm");
    await dashboardRefund(order.paymentIntentId);
    const [refundEvent] = await deliveriesOf(order.holdId, "charge.refunded");
    if (!refundEvent) throw new Error("no refund event");
    // A paid payment whose sale is still in the queue: no order yet.
    const intentId = newIntentId();
    const paymentId = crypto.randomUUID();
    await withDb((db) =>
      db.insert(payments).values({
        id: paymentId,
        holdId: crypto.randomUUID(),
        eventId: sale.eventId,
        accountId: fanOf(sale, 0).accountId,
        providerPaymentId: intentId,
        idempotencyKey: `test_${paymentId}`,
        amountCents: order.amountCents,
        currency: "USD",
        status: "succeeded",
      }),
    );
    const refused = await deliverAbout(refundEvent, order.paymentIntentId, intentId);
    expect(refused.status, refused.body).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "order_not_written" } });
    // Refunded by us already (paid after its seats were gone): nothing to do.
    await withDb((db) => db.update(payments).set({ status: "refunded" }).where(eq(payments.id, paymentId)));
    expect((await deliverAbout(refundEvent, order.paymentIntentId, intentId)).status).toBe(200);
    expect(await orderRow(order.orderId)).toMatchObject({ status: "confirmed", refundedCents: 0 });
  });
});

function newIntentId(): string {
  return `pi_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** Posts a delivery rewritten to be about another PaymentIntent, signed anew. */
async function deliverAbout(delivery: WebhookDelivery, intentId: string, otherIntentId: string): Promise<{ status: number; body: string }> {
  const payload = delivery.payload.replaceAll(intentId, otherIntentId);
  expect(payload).not.toBe(delivery.payload);
  return deliver({ ...delivery, payload }, await sign(payload, Math.floor(Date.now() / 1000)));
}

describe("concurrent deliveries", () => {
  it("whatever mix of partial and full refunds and a dispute arrives, duplicated, reordered and at once, the order is returned once", async () => {
    const scenario = fc.record({
      demandClass: fc.constantFrom("calm" as const, "hot" as const),
      /** Share of the total refunded first, in per mille (null: one full refund). */
      partial: fc.option(fc.integer({ min: 1, max: 999 }), { nil: null }),
      dispute: fc.boolean(),
      /** Copies of each delivery, and how they are shuffled into groups posted at once. */
      copies: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
      order: fc.array(fc.nat(), { minLength: 9, maxLength: 9 }),
      groups: fc.integer({ min: 1, max: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ demandClass, partial, dispute, copies, order: shuffle, groups }) => {
        const { sale, waiter, order } = await soldOutWithWaiter(demandClass);
        if (partial !== null) await dashboardRefund(order.paymentIntentId, Math.max(1, Math.floor((order.amountCents * partial) / 1000)));
        await dashboardRefund(order.paymentIntentId);
        if (dispute) await disputeCharge(order.paymentIntentId);
        const events = sent(await webhooksOf({ hold_id: order.holdId })).filter((d) => d.type !== "payment_intent.succeeded");
        const posts = events.flatMap((delivery, i) => Array.from({ length: copies[i] ?? 1 }, () => delivery));
        const keyed = posts.map((delivery, i) => ({ delivery, key: shuffle[i] ?? 0 })).sort((a, b) => a.key - b.key);
        const size = Math.ceil(keyed.length / groups);
        for (let start = 0; start < keyed.length; start += size) {
          const answers = await Promise.all(keyed.slice(start, start + size).map(({ delivery }) => deliver(delivery)));
          for (const answer of answers) expect(answer.status, answer.body).toBe(200);
        }

        const row = await orderRow(order.orderId);
        // With a dispute, whichever event returns the order first names it.
        expect(row.status).toMatch(dispute ? /^(refunded|disputed)$/ : /^refunded$/);
        expect(row.refundedCents).toBe(order.amountCents);
        expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
        const [payment] = await withDb((db) => db.select().from(payments).where(eq(payments.holdId, order.holdId)));
        expect(payment?.status).toBe("refunded");
        await expectOfferedTo(sale, waiter);
        expect(await freeSeats(sale)).toEqual([]);
        expect(await refundRequestsOf(order.paymentIntentId)).toEqual([]);
        await closeEntries();
      }),
      { numRuns: 6 },
    );
  }, 180_000);
});
