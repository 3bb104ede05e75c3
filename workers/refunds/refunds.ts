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
 */
import { and, eq, ne, sql, type SQL } from "drizzle-orm";
import { refund, stripeClient } from "./checkout/gateway";
import type { Db } from "../core/db/client";
import { events, orders, payments, tickets } from "../core/db/schema";
import { ApiError, invalidRequest, notFound } from "../core/errors";
import { forgetRouting, inventoryFor } from "./inventory";
import { closeWaitlist, serveWaitlist, type ServeReport, type WaitlistContext } from "./waitlist";
import { log } from "../core/logger";

/** Orders returned per cancellation call (call again to continue). */
export const DEFAULT_CANCEL_BATCH = 25;
/** The most orders one cancellation call returns. */
export const MAX_CANCEL_BATCH = 100;
/** Cancelled events whose remaining orders the cron returns per pass, and orders per event. */
const CRON_CANCELLED_EVENTS = 5;
/** The gateway metadata of every organizer refund (one value, so a retry's request is identical). */
const REFUND_REASON = "organizer_refund";

/** An order as the organizer sees it. */
export interface OrderView {
  orderId: string;
  eventId: string;
  holdId: string;
  accountId: string;
  email: string;
  status: "confirmed" | "refunded" | "cancelled";
  totalCents: number;
  currency: string;
  /** Tickets not void. */
  liveTickets: number;
  createdAt: string;
}

/** An order being returned. */
interface OrderToReturn {
  id: string;
  eventId: string;
  holdId: string;
  status: OrderView["status"];
}

/**
 * Refunds one of the organizer's orders in full (404 for anyone else's).
 * Refunding a refunded or cancelled order returns it unchanged.
 */
export async function refundOrder(ctx: WaitlistContext, input: { organizerId: string; orderId: string }): Promise<{ order: OrderView; waitlist: ServeReport | null }> {
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
  return { order: await orderView(ctx.db, row.id), waitlist };
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
export async function cancelEvent(ctx: WaitlistContext, input: { organizerId: string; eventId: string; batchSize?: number }): Promise<CancellationReport> {
  const [event] = await ctx.db
    .select({ id: events.id, status: events.status, demandClass: events.demandClass })
    .from(events)
    .where(and(eq(events.id, input.eventId), eq(events.organizerId, input.organizerId)));
  if (!event) throw notFound("Event");
  if (event.status !== "cancelled") {
    await ctx.db.update(events).set({ status: "cancelled", updatedAt: new Date() }).where(eq(events.id, event.id));
  }
  forgetRouting(event.id);
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
export async function continueCancellations(ctx: WaitlistContext): Promise<{ events: number; returned: number; failed: number }> {
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

async function returnCancelledOrders(ctx: WaitlistContext, eventId: string, batchSize: number): Promise<{ returned: number; failed: number; remaining: number }> {
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
async function returnOrder(ctx: WaitlistContext, order: OrderToReturn, outcome: "refunded" | "cancelled"): Promise<void> {
  await refundPayments(ctx, order);
  await ctx.db
    .update(tickets)
    .set({ status: "void" })
    .where(and(eq(tickets.orderId, order.id), ne(tickets.status, "void")));
  const inventory = await inventoryFor({ env: ctx.env, db: ctx.db, eventId: order.eventId, keepAlive: ctx.keepAlive });
  const unsold = await inventory.unsell({ requestId: `unsell_${order.id}`, holdId: order.holdId });
  if (!unsold.ok) {
    // Nothing sold to return (the inventory never confirmed this hold): the money and tickets are handled; say so and go on.
    log.warn("unsell_refused", { orderId: order.id, holdId: order.holdId, reason: unsold.reason });
  }
  await ctx.db
    .update(orders)
    .set({ status: outcome, updatedAt: new Date() })
    .where(and(eq(orders.id, order.id), eq(orders.status, "confirmed")));
}

/** Refunds every succeeded payment of the order's hold; throws a 502 `ApiError` when the gateway does not. */
async function refundPayments(ctx: WaitlistContext, order: OrderToReturn): Promise<void> {
  const paid = await ctx.db
    .select()
    .from(payments)
    .where(and(eq(payments.holdId, order.holdId), eq(payments.status, "succeeded")));
  for (const payment of paid) {
    if (payment.amountCents > 0) {
      if (!payment.providerPaymentId) throw new Error(`payment ${payment.id} succeeded without a gateway id`);
      const refunded = await refund(stripeClient(ctx.env), payment.providerPaymentId, REFUND_REASON);
      if (!refunded.ok) throw new ApiError(502, "refund_failed", "The payment gateway did not accept the refund; nothing else changed. Try again.");
    }
    await ctx.db
      .update(payments)
      .set({ status: "refunded", lastError: "refunded by the organizer", updatedAt: new Date() })
      .where(and(eq(payments.id, payment.id), eq(payments.status, "succeeded")));
  }
}

/** Offers the returned places to the waitlist; a failure is logged (the cron serves it within a minute). */
async function serveAfterReturn(ctx: WaitlistContext, eventId: string): Promise<ServeReport | null> {
  try {
    return await serveWaitlist(ctx, eventId);
  } catch (error) {
    log.error("waitlist_after_refund_failed", { eventId, error: String(error) });
    return null;
  }
}

// ------------------------------------------------------------------ listing

/** Orders listed per page at most. */
export const MAX_ORDERS_PAGE = 100;

/**
 * One page of an event's orders, newest first (404 for another organizer's
 * event). `cursor` is the `nextCursor` of the previous page.
 */
export async function listOrders(
  db: Db,
  input: { organizerId: string; eventId: string; limit: number; cursor?: string | undefined; status?: OrderView["status"] | undefined },
): Promise<{ orders: OrderView[]; nextCursor: string | null }> {
  const [event] = await db
    .select({ id: events.id })
    .from(events)
    .where(and(eq(events.id, input.eventId), eq(events.organizerId, input.organizerId)));
  if (!event) throw notFound("Event");
  const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
  const conditions = [sql`o.event_id = ${event.id}`];
  if (input.status !== undefined) conditions.push(sql`o.status = ${input.status}`);
  if (after) conditions.push(sql`(${createdMicros}, o.id) < (${after.micros}::bigint, ${after.id}::uuid)`);
  const rows = await selectOrders(db, sql.join(conditions, sql` and `), input.limit + 1);
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return { orders: page.map((r) => r.view), nextCursor: rows.length > input.limit && last ? encodeCursor(last.micros, last.view.orderId) : null };
}

async function orderView(db: Db, orderId: string): Promise<OrderView> {
  const [row] = await selectOrders(db, sql`o.id = ${orderId}`, 1);
  if (!row) throw notFound("Order");
  return row.view;
}

const createdMicros = sql`(extract(epoch from o.created_at) * 1000000)::bigint`;

async function selectOrders(db: Db, where: SQL, limit: number): Promise<{ view: OrderView; micros: string }[]> {
  const rows = await db.execute<{
    id: string;
    event_id: string;
    hold_id: string;
    account_id: string;
    email: string;
    status: OrderView["status"];
    total_cents: number;
    currency: string;
    live_tickets: number;
    created_at: string;
    micros: string;
  }>(sql`
    select o.id, o.event_id, o.hold_id, o.account_id, a.email, o.status, o.total_cents, o.currency,
           (select count(*) from tickets t where t.order_id = o.id and t.status <> 'void')::int as live_tickets,
           o.created_at, ${createdMicros}::text as micros
    from orders o join accounts a on a.id = o.account_id
    where ${where}
    order by o.created_at desc, o.id desc
    limit ${limit}`);
  return rows.rows.map((r) => ({
    micros: r.micros,
    view: {
      orderId: r.id,
      eventId: r.event_id,
      holdId: r.hold_id,
      accountId: r.account_id,
      email: r.email,
      status: r.status,
      totalCents: r.total_cents,
      currency: r.currency,
      liveTickets: r.live_tickets,
      createdAt: new Date(r.created_at).toISOString(),
    },
  }));
}

function encodeCursor(micros: string, orderId: string): string {
  return btoa(`${micros}.${orderId}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string): { micros: string; id: string } {
  let decoded = "";
  try {
    decoded = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    // falls through to the refusal below
  }
  const match = /^(\d{1,20})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(decoded);
  if (!match?.[1] || !match[2]) throw invalidRequest("That cursor is not one this API gave out.");
  return { micros: match[1], id: match[2] };
}

/** Statuses an order list may be filtered by. */
export const ORDER_STATUSES = ["confirmed", "refunded", "cancelled"] as const;
