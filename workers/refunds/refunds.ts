/**
 * Refunds and cancellations by the organizer. Returning an order runs these
 * steps, each idempotent, and the order's status changes last, so an
 * interrupted return is finished by running it again (the organizer's retry,
 * or the cron for a cancelled event):
 *   1. the payment is refunded through the gateway (one idempotency key per
 *      PaymentIntent, so a retry never refunds twice);
 *   2. the order's tickets are voided (before the seats are free again, so a
 *      new sale of the same seat never meets a live ticket);
 *   3. the places go back to the inventory (`unsell`), and the waitlist is served;
 *   4. the order becomes `refunded` (or `cancelled` with its event).
 * Refunds and disputes made at the gateway (gateway-events.ts) run steps 2-4
 * the same way, step 1 being done already.
 */
import { and, eq, ne, sql } from "drizzle-orm";
import { events, orders, payments, tickets } from "../../core/db/schema";
import { ApiError, notFound } from "../../core/errors";
import { log } from "../../core/logger";
import { refund, stripeClient } from "../checkout/gateway";
import { forgetRouting } from "../events/routing";
import { inventoryForEvent } from "../holds/pick-inventory";
import { emitEventCancelled, emitOrderRefunded } from "../organizers/webhooks/sources";
import { closeWaitlist, serveWaitlist, type ServeReport } from "../waitlist/serve";
import type { WorkContext } from "../work-context";
import { orderView, type OrderView } from "./orders";

/** Orders returned per cancellation call (call again to continue). */
export const DEFAULT_CANCEL_BATCH = 25;
/** The most orders one cancellation call returns. */
export const MAX_CANCEL_BATCH = 100;
/** Cancelled events whose remaining orders the cron returns per pass, and orders per event. */
const CRON_CANCELLED_EVENTS = 5;
/** The gateway metadata of every organizer refund (one value, so a retry's request is identical). */
const REFUND_REASON = "organizer_refund";

/** An order being returned. */
export interface OrderToReturn {
  id: string;
  eventId: string;
  holdId: string;
  status: OrderView["status"];
}

/**
 * Refunds one of the organizer's orders in full (404 for anyone else's).
 * Refunding a refunded or cancelled order returns it unchanged.
 */
export async function refundOrder(ctx: WorkContext, input: { organizerId: string; orderId: string }): Promise<{ order: OrderView; waitlist: ServeReport | null }> {
  const [row] = await ctx.db
    .select({ id: orders.id, eventId: orders.eventId, holdId: orders.holdId, status: orders.status, eventStatus: events.status })
    .from(orders)
    .innerJoin(events, eq(events.id, orders.eventId))
    .where(and(eq(orders.id, input.orderId), eq(events.organizerId, input.organizerId)));
  if (!row) throw notFound("Order");
  let waitlist: ServeReport | null = null;
  if (row.status === "confirmed") {
    await returnOrder(ctx, row, "refunded");
    if (row.eventStatus === "published") waitlist = await serveAfterReturn(ctx, row.eventId);
  }
  const order = await orderView(ctx.db, row.id);
  // Also when an earlier call refunded it: that call's emit may have failed (the webhook is sent once).
  if (order.status === "refunded") await emitOrderRefunded(ctx, order);
  return { order, waitlist };
}

/** What one cancellation call did. */
export interface CancellationReport {
  eventId: string;
  status: "cancelled";
  /** Orders returned by this call. */
  ordersCancelled: number;
  /** Orders this call could not return (the gateway refused or failed); they stay confirmed for the next call. */
  ordersFailed: number;
  /** Confirmed orders left: call again while this is above 0. */
  ordersRemaining: number;
  waitlistClosed: number;
}

/**
 * Cancels one of the organizer's events (404 for anyone else's): no more
 * holds (the inventory refuses anything not published), the waitlist closes,
 * and up to `batchSize` confirmed orders are refunded and cancelled. Safe to
 * call again: each call continues with the orders still confirmed.
 */
export async function cancelEvent(ctx: WorkContext, input: { organizerId: string; eventId: string; batchSize?: number }): Promise<CancellationReport> {
  const [event] = await ctx.db
    .select({ id: events.id, status: events.status, demandClass: events.demandClass })
    .from(events)
    .where(and(eq(events.id, input.eventId), eq(events.organizerId, input.organizerId)));
  if (!event) throw notFound("Event");
  if (event.status !== "cancelled") {
    await ctx.db.update(events).set({ status: "cancelled", updatedAt: new Date() }).where(eq(events.id, event.id));
  }
  await emitEventCancelled(ctx, event.id);
  await forgetRouting(event.id);
  // A prepared hot inventory keeps its own copy of the status: it must stop holding now.
  if (event.demandClass === "hot") {
    const stub = ctx.env.EVENT_INVENTORY.getByName(event.id);
    if (await stub.isPrepared()) await stub.refreshConfig();
  }
  const waitlistClosed = event.status === "draft" ? 0 : await closeWaitlist(ctx, event.id);
  const batch = await returnCancelledOrders(ctx, event.id, Math.min(input.batchSize ?? DEFAULT_CANCEL_BATCH, MAX_CANCEL_BATCH));
  return { eventId: event.id, status: "cancelled", ordersCancelled: batch.returned, ordersFailed: batch.failed, ordersRemaining: batch.remaining, waitlistClosed };
}

/**
 * The cron's pass: continues cancellations the organizer did not finish, a
 * batch per cancelled event that still has confirmed orders.
 */
export async function continueCancellations(ctx: WorkContext): Promise<{ events: number; returned: number; failed: number }> {
  const due = await ctx.db.execute<{ id: string }>(sql`
    select e.id from events e
    where e.status = 'cancelled' and exists (select 1 from orders o where o.event_id = e.id and o.status = 'confirmed')
    limit ${CRON_CANCELLED_EVENTS}`);
  const total = { events: due.rows.length, returned: 0, failed: 0 };
  for (const { id } of due.rows) {
    const batch = await returnCancelledOrders(ctx, id, DEFAULT_CANCEL_BATCH);
    total.returned += batch.returned;
    total.failed += batch.failed;
  }
  return total;
}

async function returnCancelledOrders(ctx: WorkContext, eventId: string, batchSize: number): Promise<{ returned: number; failed: number; remaining: number }> {
  const batch = await ctx.db
    .select({ id: orders.id, eventId: orders.eventId, holdId: orders.holdId, status: orders.status })
    .from(orders)
    .where(and(eq(orders.eventId, eventId), eq(orders.status, "confirmed")))
    .orderBy(orders.createdAt, orders.id)
    .limit(batchSize);
  let returned = 0;
  let failed = 0;
  for (const order of batch) {
    try {
      await returnOrder(ctx, order, "cancelled");
      returned++;
    } catch (error) {
      failed++;
      log.error("cancellation_refund_failed", { orderId: order.id, error: String(error) });
    }
  }
  const remaining = await ctx.db.$count(orders, and(eq(orders.eventId, eventId), eq(orders.status, "confirmed")));
  return { returned, failed, remaining };
}

/** Returns an order (see the steps above); throws, changing the order's status not at all, when a step fails. */
async function returnOrder(ctx: WorkContext, order: OrderToReturn, outcome: "refunded" | "cancelled"): Promise<void> {
  await refundPayments(ctx, order, "gateway");
  await returnPlaces(ctx, order, outcome);
}

/**
 * Steps 2-4: voids the order's tickets, returns its places to the inventory
 * and sets its status, if it is still `confirmed` (a refund or cancellation
 * refunded it in full; a dispute refunded nothing). Each step is idempotent,
 * so a refund our API started and its `charge.refunded` webhook arriving
 * meanwhile end as one return.
 */
export async function returnPlaces(ctx: WorkContext, order: OrderToReturn, outcome: "refunded" | "cancelled" | "disputed"): Promise<void> {
  await ctx.db
    .update(tickets)
    .set({ status: "void" })
    .where(and(eq(tickets.orderId, order.id), ne(tickets.status, "void")));
  const inventory = await inventoryForEvent(ctx, order.eventId);
  const unsold = await inventory.unsell({ requestId: `unsell_${order.id}`, holdId: order.holdId });
  if (!unsold.ok) {
    // Nothing sold to return (the inventory never confirmed this hold): the money and tickets are handled; say so and go on.
    log.warn("unsell_refused", { orderId: order.id, holdId: order.holdId, reason: unsold.reason });
  }
  await ctx.db
    .update(orders)
    .set({ status: outcome, refundedCents: outcome === "disputed" ? orders.refundedCents : orders.totalCents, updatedAt: new Date() })
    .where(and(eq(orders.id, order.id), eq(orders.status, "confirmed")));
}

/**
 * Marks every succeeded payment of the order's hold refunded, refunding it
 * through the gateway first unless the gateway refunded it already (a refund
 * made in its dashboard); throws a 502 `ApiError` when the gateway does not
 * refund.
 */
export async function refundPayments(ctx: WorkContext, order: OrderToReturn, by: "gateway" | "already_refunded"): Promise<void> {
  const paid = await ctx.db
    .select()
    .from(payments)
    .where(and(eq(payments.holdId, order.holdId), eq(payments.status, "succeeded")));
  for (const payment of paid) {
    if (payment.amountCents > 0 && by === "gateway") {
      if (!payment.providerPaymentId) throw new Error(`payment ${payment.id} succeeded without a gateway id`);
      const refunded = await refund(stripeClient(ctx.env), payment.providerPaymentId, REFUND_REASON);
      if (!refunded.ok) throw new ApiError(502, "refund_failed", "The payment gateway did not accept the refund; nothing else changed. Try again.");
    }
    await ctx.db
      .update(payments)
      .set({ status: "refunded", lastError: by === "gateway" ? "refunded by the organizer" : "refunded at the gateway", updatedAt: new Date() })
      .where(and(eq(payments.id, payment.id), eq(payments.status, "succeeded")));
  }
}

/** Offers the returned places to the waitlist; a failure is logged (the cron serves it within a minute). */
export async function serveAfterReturn(ctx: WorkContext, eventId: string): Promise<ServeReport | null> {
  try {
    return await serveWaitlist(ctx, eventId);
  } catch (error) {
    log.error("waitlist_after_refund_failed", { eventId, error: String(error) });
    return null;
  }
}
