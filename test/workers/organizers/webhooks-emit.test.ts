/**
 * Where organizer events come from: each emit point produces exactly one
 * delivery per subscribed endpoint, even when its source runs again (a
 * redelivered sales batch, a refund or cancellation called twice, a ticket
 * scanned twice), and none for endpoints that did not subscribe.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { ConfirmedSale } from "../../../workers/checkout/messages";
import worker from "../../../workers/index";
import { clubChart } from "../../fixtures/charts";
import { RecordingQueue } from "../../fixtures/queues";
import { openEvent } from "../../fixtures/seeding";
import { myTickets, tokenOf } from "../../fixtures/tickets";
import { adminCall, createEndpoint, deliveriesOf, receiver, webhookEnv } from "../../fixtures/webhooks";

const ALL_TYPES = ["order.created", "order.refunded", "ticket.checked_in", "event.sold_out", "event.cancelled"];

/** A sale of these seats of the event, as checkout queues it. */
function saleOf(eventId: string, accountId: string, seatIndexes: number[]): ConfirmedSale {
  const holdId = crypto.randomUUID();
  return {
    kind: "sale",
    holdId,
    eventId,
    accountId,
    paymentId: crypto.randomUUID(),
    providerPaymentId: `pi_test_${holdId.replaceAll("-", "")}`,
    amountCents: seatIndexes.length * 1_000,
    currency: "USD",
    items: seatIndexes.map((seatIndex) => ({ seatIndex, sectionId: null, quantity: 1, priceCents: 1_000 })),
    confirmedAt: Date.now(),
  };
}

/** Runs sales through the Worker's `ticket-sales` consumer; every message must be acknowledged. */
async function consumeSales(testEnv: Env, sales: ConfirmedSale[]): Promise<void> {
  const batch = createMessageBatch(
    "ticket-sales",
    sales.map((body) => ({ id: `sale-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...testEnv, DELIVERY_QUEUE: new RecordingQueue(), DEAD_LETTERS: new RecordingQueue() });
  const result = await getQueueResult(batch, ctx);
  expect(result.retryMessages).toEqual([]);
  expect(result.explicitAcks).toHaveLength(sales.length);
}

/** How many deliveries of each type an endpoint has. */
async function countsOf(endpointId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const delivery of await deliveriesOf(endpointId)) counts[delivery.eventType] = (counts[delivery.eventType] ?? 0) + 1;
  return counts;
}

const orderIdsSchema = z.object({ orders: z.array(z.object({ orderId: z.uuid(), holdId: z.uuid() })) });

describe("organizer events", () => {
  it("are emitted once per source at every emit point, however often the source runs", async () => {
    const { apiKey, event, accounts } = await openEvent({ demandClass: "calm", chart: clubChart(), accounts: 2 });
    const [fan = "", otherFan = ""] = accounts;
    const hooks = webhookEnv();
    const everything = await createEndpoint(hooks.env, apiKey, { url: receiver().url, eventTypes: ALL_TYPES });
    const ordersOfThisEvent = await createEndpoint(hooks.env, apiKey, { url: receiver().url, eventTypes: ["order.created"], eventId: event.id });
    const outsider = await openEvent({ demandClass: "calm", accounts: 0 });
    const otherOrganizers = await createEndpoint(hooks.env, outsider.apiKey, { url: receiver().url, eventTypes: ALL_TYPES });

    // Sales: four seats, then the last two (sold out); the batch is delivered again.
    const first = saleOf(event.id, fan, [0, 1, 2, 3]);
    const last = saleOf(event.id, otherFan, [4, 5]);
    await consumeSales(hooks.env, [first]);
    expect(await countsOf(everything.id)).toEqual({ "order.created": 1 });
    await consumeSales(hooks.env, [first, last]);
    await consumeSales(hooks.env, [last, first]);
    expect(await countsOf(everything.id)).toEqual({ "order.created": 2, "event.sold_out": 1 });
    expect(await countsOf(ordersOfThisEvent.id)).toEqual({ "order.created": 2 });

    // A refund, asked twice; the places return.
    const listed = orderIdsSchema.parse((await adminCall(hooks.env, apiKey, "GET", `/events/${event.id}/orders`)).json).orders;
    const firstOrder = listed.find((o) => o.holdId === first.holdId)?.orderId ?? "";
    for (let i = 0; i < 2; i++) expect((await adminCall(hooks.env, apiKey, "POST", `/orders/${firstOrder}/refund`)).status).toBe(200);
    expect(await countsOf(everything.id)).toEqual({ "order.created": 2, "event.sold_out": 1, "order.refunded": 1 });

    // Sold out again with the returned seats: a second sell-out, once however often its batch comes.
    const again = saleOf(event.id, fan, [0, 1, 2, 3]);
    await consumeSales(hooks.env, [again]);
    await consumeSales(hooks.env, [again]);
    expect(await countsOf(everything.id)).toEqual({ "order.created": 3, "event.sold_out": 2, "order.refunded": 1 });

    // A ticket scanned twice at the door.
    const ticket = (await deliveriesOf(everything.id)).find((d) => d.eventType === "order.created" && JSON.stringify(d.payload).includes(last.holdId));
    const lastOrder = z.object({ data: z.object({ orderId: z.uuid() }) }).parse(ticket?.payload).data.orderId;
    const scanned = (await myTickets(otherFan)).find((t) => t.orderId === lastOrder);
    if (!scanned) throw new Error("the last sale's ticket is not listed");
    const token = await tokenOf(otherFan, scanned.id);
    const verdicts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const response = await adminCall(hooks.env, apiKey, "POST", `/events/${event.id}/check-in`, { token });
      verdicts.push(z.object({ result: z.string() }).parse(response.json).result);
    }
    expect(verdicts).toEqual(["valid", "already_scanned"]);
    expect(await countsOf(everything.id)).toMatchObject({ "ticket.checked_in": 1 });

    // The event is cancelled, and the call repeated.
    for (let i = 0; i < 2; i++) expect((await adminCall(hooks.env, apiKey, "POST", `/events/${event.id}/cancel`)).status).toBe(200);
    expect(await countsOf(everything.id)).toEqual({ "order.created": 3, "event.sold_out": 2, "order.refunded": 1, "ticket.checked_in": 1, "event.cancelled": 1 });
    expect(await countsOf(ordersOfThisEvent.id)).toEqual({ "order.created": 3 });
    expect(await countsOf(otherOrganizers.id)).toEqual({});

    // Each delivery was queued exactly once.
    const all = [...(await deliveriesOf(everything.id)), ...(await deliveriesOf(ordersOfThisEvent.id))];
    expect(hooks.queuedDeliveries().sort()).toEqual(all.map((d) => d.id).sort());
  });

  it("a failed queue send leaves the delivery to be queued by the source's next run", async () => {
    const { apiKey, event, accounts } = await openEvent({ demandClass: "calm", chart: clubChart(), accounts: 1 });
    const hooks = webhookEnv();
    const endpoint = await createEndpoint(hooks.env, apiKey, { url: receiver().url, eventTypes: ["order.created"] });
    const sale = saleOf(event.id, accounts[0] ?? "", [0]);
    hooks.queue.failure = new Error("queue unavailable");
    const batch = createMessageBatch("ticket-sales", [{ id: `sale-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body: sale }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...hooks.env, DELIVERY_QUEUE: new RecordingQueue(), DEAD_LETTERS: new RecordingQueue() });
    expect((await getQueueResult(batch, ctx)).retryMessages).toHaveLength(1);
    expect(hooks.queuedDeliveries()).toEqual([]);
    const [unsent] = await deliveriesOf(endpoint.id);
    expect(unsent?.queuedAt).toBeNull();

    hooks.queue.failure = undefined;
    await consumeSales(hooks.env, [sale]);
    expect(hooks.queuedDeliveries()).toEqual([unsent?.id]);
    expect(await countsOf(endpoint.id)).toEqual({ "order.created": 1 });
  });
});
