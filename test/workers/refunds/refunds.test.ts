/**
 * Refunds and cancellations by the organizer: the gateway refunds once, the
 * tickets are void, the seats are on sale again and the waitlist is offered
 * them; a cancellation refunds every order (in batches, continued by calling
 * again), stops all holds and closes the waitlist; another organizer sees
 * nothing; orders are listed a page at a time.
 */
import { eq, inArray } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { events, orders, payments, tickets } from "../../../core/db/schema";
import { cancelReportSchema } from "../../../workers/routes/organizers/refunds";
import { withDb } from "../../fixtures/db";
import { chargesOfIntent, refundRequestsOf } from "../../fixtures/gateway";
import { callApp, errorCode } from "../../fixtures/http";
import { inventoryOf, withInventory } from "../../fixtures/objects";
import { fanOf, newOrganizer, type Sale } from "../../fixtures/seeding";
import { clock, closeEntries, entries, freeSeats, holdOf, holdSeats, join, offerEmails, openWaitlistSale, paidOrder, statuses } from "../../fixtures/waitlist";

beforeEach(() => clock.start());
afterEach(async () => {
  clock.stop();
  await closeEntries();
});

const orderSchema = z.strictObject({
  orderId: z.uuid(),
  eventId: z.uuid(),
  holdId: z.uuid(),
  accountId: z.uuid(),
  email: z.string(),
  status: z.enum(["confirmed", "refunded", "cancelled", "disputed"]),
  totalCents: z.number(),
  currency: z.string(),
  refundedCents: z.number(),
  dispute: z.strictObject({ reason: z.string(), status: z.string() }).nullable(),
  liveTickets: z.number(),
  createdAt: z.iso.datetime(),
});
const refundAnswer = z.strictObject({ order: orderSchema, waitlistOffers: z.number() });
const cancelAnswer = cancelReportSchema.strict();
const pageAnswer = z.strictObject({ orders: z.array(orderSchema), nextCursor: z.string().nullable() });

function refund(sale: Sale, orderId: string, apiKey = sale.apiKey) {
  return callApp("POST", `/admin/orders/${orderId}/refund`, { bearer: apiKey });
}

async function ticketStatuses(orderId: string): Promise<string[]> {
  return withDb(async (db) => (await db.select({ status: tickets.status }).from(tickets).where(eq(tickets.orderId, orderId))).map((t) => t.status));
}

async function paymentStatus(holdId: string): Promise<string | undefined> {
  return withDb(async (db) => (await db.select({ status: payments.status }).from(payments).where(eq(payments.holdId, holdId)))[0]?.status);
}

/** Every charge of a PaymentIntent is refunded in full, exactly once. */
async function expectRefunded(paymentIntentId: string): Promise<void> {
  const charges = await chargesOfIntent(paymentIntentId);
  expect(charges).toHaveLength(1);
  expect(charges[0]?.amountRefunded).toBe(charges[0]?.amount);
  expect((await refundRequestsOf(paymentIntentId)).filter((r) => !r.replayed)).toHaveLength(1);
}

describe("refunding an order", () => {
  it.each(["calm", "hot"] as const)("refunds the payment once, voids the tickets and offers the seats to the waitlist (%s)", async (demandClass) => {
    const sale = await openWaitlistSale({ demandClass, fans: 3 });
    const [buyer, waiter, blocker] = [fanOf(sale, 0), fanOf(sale, 1), fanOf(sale, 2)];
    const order = await paidOrder(sale, buyer, [0, 1]);
    await holdSeats(sale, blocker.accountId, [2, 3, 4, 5]);
    expect(await ticketStatuses(order.orderId)).toEqual(["valid", "valid"]);
    await join(sale, waiter, { quantity: 2, priceTier: "A" });

    const answer = await refund(sale, order.orderId);
    expect(answer.status, answer.text).toBe(200);
    const body = refundAnswer.parse(answer.json);
    expect(body.order).toMatchObject({ orderId: order.orderId, status: "refunded", liveTickets: 0, totalCents: order.amountCents, refundedCents: order.amountCents, dispute: null });
    expect(body.waitlistOffers).toBe(1);
    await expectRefunded(order.paymentIntentId);
    expect(await ticketStatuses(order.orderId)).toEqual(["void", "void"]);
    expect(await paymentStatus(order.holdId)).toBe("refunded");
    expect((await holdOf(sale, order.holdId))?.status).toBe("refunded");

    // The seats went straight to the fan waiting for them.
    expect(await statuses(sale)).toEqual([undefined, "offered", undefined]);
    const offered = (await entries(sale))[0]?.offerHoldId ?? "";
    expect((await holdOf(sale, offered))?.seats.map((s) => s.seatIndex)).toEqual([0, 1]);
    expect(await offerEmails(waiter)).toHaveLength(1);

    // Again: the same answer, and nothing more reaches the gateway.
    const again = await refund(sale, order.orderId);
    expect(again.status, again.text).toBe(200);
    expect(refundAnswer.parse(again.json)).toMatchObject({ order: { status: "refunded" }, waitlistOffers: 0 });
    await expectRefunded(order.paymentIntentId);
  });

  it("puts the seats back on sale when nobody is waiting, and frees the buyer's purchase limit", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 1, purchaseLimit: 2 });
    const buyer = fanOf(sale, 0);
    const order = await paidOrder(sale, buyer, [0, 1]);
    expect(await freeSeats(sale)).toEqual([2, 3, 4, 5]);
    const over = await withInventory(sale.eventId, (inventory) =>
      inventory.hold({ kind: "seats", accountId: buyer.accountId, attemptKey: crypto.randomUUID(), requestId: crypto.randomUUID(), seatIndexes: [2] }),
    );
    expect(over.ok || over.reason).toBe("over_limit");
    expect(refundAnswer.parse((await refund(sale, order.orderId)).json).waitlistOffers).toBe(0);
    expect(await freeSeats(sale)).toEqual([0, 1, 2, 3, 4, 5]);
    await holdSeats(sale, buyer.accountId, [0, 1]);
  });
});

describe("cancelling an event", () => {
  it("refunds every order in batches, voids every ticket, stops holds and closes the waitlist; calling again is harmless", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 5 });
    const bought = [await paidOrder(sale, fanOf(sale, 0), [0]), await paidOrder(sale, fanOf(sale, 1), [1, 2]), await paidOrder(sale, fanOf(sale, 2), [4])];
    await holdSeats(sale, fanOf(sale, 4).accountId, [3, 5]);
    await join(sale, fanOf(sale, 3), { quantity: 1 });

    const first = await callApp("POST", `/admin/events/${sale.eventId}/cancel?batchSize=2`, { bearer: sale.apiKey });
    expect(first.status, first.text).toBe(200);
    const report = cancelAnswer.parse(first.json);
    expect(report).toMatchObject({ eventId: sale.eventId, status: "cancelled", ordersCancelled: 2, ordersFailed: 0 });
    expect(report.ordersRemaining).toBeLessThanOrEqual(1);
    for (let calls = 0; calls < 3; calls++) {
      const next = cancelAnswer.parse((await callApp("POST", `/admin/events/${sale.eventId}/cancel?batchSize=2`, { bearer: sale.apiKey })).json);
      expect(next.ordersFailed).toBe(0);
      if (next.ordersRemaining === 0) break;
    }

    const rows = await withDb((db) => db.select({ id: orders.id, status: orders.status }).from(orders).where(inArray(orders.id, bought.map((o) => o.orderId))));
    expect(rows.map((r) => r.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    for (const order of bought) {
      await expectRefunded(order.paymentIntentId);
      expect(new Set(await ticketStatuses(order.orderId))).toEqual(new Set(["void"]));
      expect((await holdOf(sale, order.holdId))?.status).toBe("refunded");
    }
    expect(await freeSeats(sale)).toEqual([0, 1, 2, 4]);
    expect(await statuses(sale)).toEqual([undefined, undefined, undefined, "cancelled", undefined]);
    const [event] = await withDb((db) => db.select({ status: events.status }).from(events).where(eq(events.id, sale.eventId)));
    expect(event?.status).toBe("cancelled");

    // No more holds, and no more waiting.
    const refused = await withInventory(sale.eventId, (inventory) =>
      inventory.hold({ kind: "seats", accountId: fanOf(sale, 3).accountId, attemptKey: crypto.randomUUID(), requestId: crypto.randomUUID(), seatIndexes: [0] }),
    );
    expect(refused.ok || refused.reason).toBe("not_on_sale");
    expect(errorCode(await callApp("POST", `/api/events/${sale.eventId}/waitlist`, { bearer: fanOf(sale, 3).session, body: { quantity: 1 } }), 409)).toBe("not_on_sale");

    const last = cancelAnswer.parse((await callApp("POST", `/admin/events/${sale.eventId}/cancel`, { bearer: sale.apiKey })).json);
    expect(last).toMatchObject({ ordersCancelled: 0, ordersRemaining: 0, waitlistClosed: 0 });
  });

  it("stops a hot event's inventory at once and refunds its orders", async () => {
    const sale = await openWaitlistSale({ demandClass: "hot", fans: 2 });
    const order = await paidOrder(sale, fanOf(sale, 0), [0, 1]);
    const answer = await callApp("POST", `/admin/events/${sale.eventId}/cancel`, { bearer: sale.apiKey });
    expect(answer.status, answer.text).toBe(200);
    expect(cancelAnswer.parse(answer.json).ordersRemaining).toBe(0);
    await expectRefunded(order.paymentIntentId);
    expect(new Set(await ticketStatuses(order.orderId))).toEqual(new Set(["void"]));
    const refused = await inventoryOf(sale.eventId).hold({
      kind: "seats",
      accountId: fanOf(sale, 1).accountId,
      attemptKey: crypto.randomUUID(),
      requestId: crypto.randomUUID(),
      seatIndexes: [2],
    });
    expect(refused.ok || refused.reason).toBe("not_on_sale");
  });
});

describe("organizer scope", () => {
  it("answers 404 for another organizer's orders and events, and changes nothing", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 1 });
    const order = await paidOrder(sale, fanOf(sale, 0), [0]);
    const { apiKey: stranger } = await newOrganizer("Stranger");

    expect(errorCode(await refund(sale, order.orderId, stranger), 404)).toBe("not_found");
    expect(errorCode(await callApp("POST", `/admin/events/${sale.eventId}/cancel`, { bearer: stranger }), 404)).toBe("not_found");
    expect(errorCode(await callApp("GET", `/admin/events/${sale.eventId}/orders`, { bearer: stranger }), 404)).toBe("not_found");
    expect(errorCode(await refund(sale, crypto.randomUUID()), 404)).toBe("not_found");
    expect(errorCode(await callApp("POST", `/admin/orders/${order.orderId}/refund`), 401)).toBe("unauthorized");
    expect(errorCode(await callApp("POST", `/admin/orders/not-a-uuid/refund`, { bearer: sale.apiKey }), 400)).toBe("invalid_request");

    const [row] = await withDb((db) => db.select({ status: orders.status }).from(orders).where(eq(orders.id, order.orderId)));
    expect(row?.status).toBe("confirmed");
    const [event] = await withDb((db) => db.select({ status: events.status }).from(events).where(eq(events.id, sale.eventId)));
    expect(event?.status).toBe("published");
    expect((await chargesOfIntent(order.paymentIntentId))[0]?.amountRefunded).toBe(0);
    expect(await ticketStatuses(order.orderId)).toEqual(["valid"]);
  });
});

describe("listing orders", () => {
  it("pages through an event's orders, newest first, filtered by status", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 3 });
    const bought = [await paidOrder(sale, fanOf(sale, 0), [0]), await paidOrder(sale, fanOf(sale, 1), [1]), await paidOrder(sale, fanOf(sale, 2), [4])];
    const path = `/admin/events/${sale.eventId}/orders`;

    const first = pageAnswer.parse((await callApp("GET", `${path}?limit=2`, { bearer: sale.apiKey })).json);
    expect(first.orders).toHaveLength(2);
    expect(first.nextCursor).not.toBeNull();
    const second = pageAnswer.parse((await callApp("GET", `${path}?limit=2&cursor=${first.nextCursor}`, { bearer: sale.apiKey })).json);
    expect(second.orders).toHaveLength(1);
    expect(second.nextCursor).toBeNull();
    const listed = [...first.orders, ...second.orders];
    expect(listed.map((o) => o.orderId)).toEqual([...bought].reverse().map((o) => o.orderId));
    expect(listed.every((o) => o.status === "confirmed" && o.liveTickets === 1 && o.email === fanOf(sale, bought.findIndex((b) => b.orderId === o.orderId)).email)).toBe(true);

    await refund(sale, bought[1]?.orderId ?? "");
    const refunded = pageAnswer.parse((await callApp("GET", `${path}?status=refunded`, { bearer: sale.apiKey })).json);
    expect(refunded.orders.map((o) => [o.orderId, o.liveTickets])).toEqual([[bought[1]?.orderId, 0]]);
    expect(errorCode(await callApp("GET", `${path}?cursor=bm9wZQ`, { bearer: sale.apiKey }), 400)).toBe("invalid_request");
    expect(errorCode(await callApp("GET", `${path}?limit=1000`, { bearer: sale.apiKey }), 400)).toBe("invalid_request");
  });

  it("searches an event's orders by the buyer's email, any case, or by an order id prefix", async () => {
    const sale = await openWaitlistSale({ demandClass: "calm", fans: 2 });
    const bought = [await paidOrder(sale, fanOf(sale, 0), [0]), await paidOrder(sale, fanOf(sale, 1), [1])];
    const path = `/admin/events/${sale.eventId}/orders`;
    const search = async (q: string) => pageAnswer.parse((await callApp("GET", `${path}?q=${encodeURIComponent(q)}`, { bearer: sale.apiKey })).json).orders.map((o) => o.orderId);

    expect(await search(fanOf(sale, 1).email.toUpperCase())).toEqual([bought[1]?.orderId]);
    expect(await search(` ${fanOf(sale, 0).email} `)).toEqual([bought[0]?.orderId]);
    expect(await search((bought[0]?.orderId ?? "").slice(0, 13).toUpperCase())).toEqual([bought[0]?.orderId]);
    expect(await search("stranger@example.com")).toEqual([]);
    for (const bad of ["", "%", "robert'); drop table orders;--", "x".repeat(255)]) {
      expect(errorCode(await callApp("GET", `${path}?q=${encodeURIComponent(bad)}`, { bearer: sale.apiKey }), 400)).toBe("invalid_request");
    }
  });
});
