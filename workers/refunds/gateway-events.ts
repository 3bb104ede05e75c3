/**
 * Refunds and disputes that reach us from the gateway: `charge.refunded`
 * (a refund made in the Stripe dashboard, or the echo of one our admin API
 * made) and `charge.dispute.created` (the cardholder's bank disputing the
 * charge). Either returns the order as an organizer's refund does (tickets
 * void, places back to the inventory, the waitlist served), without asking
 * the gateway for anything. `charge.dispute.updated` and
 * `charge.dispute.closed` record how the dispute goes (under review, won,
 * lost) on the order, for the organizer.
 *
 * - Ours only: the charge's PaymentIntent must be one a payment of ours
 *   stored; any other delivery is acknowledged and changes nothing.
 * - Partial refunds are recorded on the order (`refundedCents`, never
 *   lowered) and leave its tickets valid; the order is returned once the
 *   charge is refunded in full.
 * - A dispute voids the tickets at once (the money is held by the bank while
 *   it lasts) and records its reason and status; a dispute that is later won
 *   leaves them void (their places were sold again). Its status only moves
 *   forward (open, under review, closed), whatever order the events come
 *   in; a change to a dispute whose opening is not recorded yet is refused
 *   (503), so the gateway delivers it again after the opening.
 * - Idempotent: each change is conditional on the order's state, so a
 *   replayed or duplicated event, or the `charge.refunded` of a refund our
 *   API made, changes nothing more.
 * - An event for a payment whose order the sales queue has not written yet
 *   is refused (503), so the gateway delivers it again once the order exists.
 */
import { and, eq, isNull, lt } from "drizzle-orm";
import type Stripe from "stripe";
import { events, orders, payments } from "../../core/db/schema";
import { ApiError } from "../../core/errors";
import { log } from "../../core/logger";
import type { WorkContext } from "../work-context";
import { emitOrderRefunded } from "../organizers/webhooks/sources";
import { orderView } from "./orders";
import { refundPayments, returnPlaces, serveAfterReturn, type OrderToReturn } from "./refunds";

/** The gateway events handled here. */
export type ChargeEvent = Stripe.ChargeRefundedEvent | Stripe.ChargeDisputeCreatedEvent | Stripe.ChargeDisputeUpdatedEvent | Stripe.ChargeDisputeClosedEvent;

const CHARGE_EVENTS: ReadonlySet<string> = new Set(["charge.refunded", "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"]);

/** Whether a verified event is one of those handled here. */
export function isChargeEvent(event: Stripe.Event): event is ChargeEvent {
  return CHARGE_EVENTS.has(event.type);
}

/** Handles a verified charge or dispute event; throws a 503 `ApiError` when it must be delivered again later. */
export async function handleChargeEvent(ctx: WorkContext, event: ChargeEvent): Promise<void> {
  if (event.type === "charge.refunded") await chargeRefunded(ctx, event.data.object);
  else if (event.type === "charge.dispute.created") await disputeCreated(ctx, event.data.object);
  else await disputeChanged(ctx, event.data.object);
}

/** How far a dispute has gone, by Stripe's statuses: it only moves forward. */
const DISPUTE_STAGE: Record<string, number> = {
  warning_needs_response: 0,
  needs_response: 0,
  warning_under_review: 1,
  under_review: 1,
  warning_closed: 2,
  prevented: 2,
  won: 2,
  lost: 2,
};

async function chargeRefunded(ctx: WorkContext, charge: Stripe.Charge): Promise<void> {
  const order = await orderOfIntent(ctx, idOf(charge.payment_intent));
  if (!order) return;
  await ctx.db
    .update(orders)
    .set({ refundedCents: charge.amount_refunded, updatedAt: new Date() })
    .where(and(eq(orders.id, order.id), lt(orders.refundedCents, charge.amount_refunded)));
  const inFull = charge.refunded || charge.amount_refunded >= charge.amount_captured;
  if (!inFull) return;
  // The payment says refunded even when a dispute returned the order first.
  await refundPayments(ctx, order, "already_refunded");
  if (order.status === "confirmed") {
    await returnPlaces(ctx, order, "refunded");
    log.info("order_refunded_at_gateway", { orderId: order.id, chargeId: charge.id });
    if (order.eventStatus === "published") await serveAfterReturn(ctx, order.eventId);
  }
  // The organizer's order.refunded, keyed by the order: sent once, whichever refund (ours or the
  // dashboard's) and however often its event comes; a replay makes good an emit that failed.
  const view = await orderView(ctx.db, order.id);
  if (view.status === "refunded") await emitOrderRefunded(ctx, view);
}

async function disputeCreated(ctx: WorkContext, dispute: Stripe.Dispute): Promise<void> {
  const order = await orderOfIntent(ctx, idOf(dispute.payment_intent));
  if (!order) return;
  await ctx.db
    .update(orders)
    .set({ disputeReason: dispute.reason, disputeStatus: dispute.status, updatedAt: new Date() })
    .where(and(eq(orders.id, order.id), isNull(orders.disputeStatus)));
  if (order.status !== "confirmed") return;
  await returnPlaces(ctx, order, "disputed");
  log.info("order_disputed", { orderId: order.id, disputeId: dispute.id, reason: dispute.reason });
  if (order.eventStatus === "published") await serveAfterReturn(ctx, order.eventId);
}

/** A dispute's later news (under review, won, lost): recorded on its order when it moves the dispute forward. */
async function disputeChanged(ctx: WorkContext, dispute: Stripe.Dispute): Promise<void> {
  const order = await orderOfIntent(ctx, idOf(dispute.payment_intent));
  if (!order) return;
  const [row] = await ctx.db.select({ disputeStatus: orders.disputeStatus }).from(orders).where(eq(orders.id, order.id));
  const recorded = row?.disputeStatus;
  if (!recorded) throw new ApiError(503, "dispute_not_recorded", "This dispute's opening is not recorded yet; deliver the event again later.");
  if ((DISPUTE_STAGE[dispute.status] ?? -1) <= (DISPUTE_STAGE[recorded] ?? 0)) return;
  // Conditional on the status read: of two news racing, the one written second re-reads and checks again at its redelivery.
  const changed = await ctx.db
    .update(orders)
    .set({ disputeStatus: dispute.status, updatedAt: new Date() })
    .where(and(eq(orders.id, order.id), eq(orders.disputeStatus, recorded)))
    .returning({ id: orders.id });
  if (changed.length === 0) throw new ApiError(503, "dispute_changed", "This dispute changed meanwhile; deliver the event again.");
  log.info("order_dispute_status", { orderId: order.id, disputeId: dispute.id, status: dispute.status });
}

/**
 * The order paid through this PaymentIntent; undefined when the intent is
 * none of ours, or its payment was refunded without an order (paid after its
 * seats were gone). Throws a 503 when the order is not written yet.
 */
async function orderOfIntent(ctx: WorkContext, paymentIntentId: string | undefined): Promise<(OrderToReturn & { eventStatus: string }) | undefined> {
  if (paymentIntentId === undefined) return undefined;
  const [payment] = await ctx.db
    .select({ holdId: payments.holdId, status: payments.status })
    .from(payments)
    .where(eq(payments.providerPaymentId, paymentIntentId));
  if (!payment) return undefined;
  const [order] = await ctx.db
    .select({ id: orders.id, eventId: orders.eventId, holdId: orders.holdId, status: orders.status, eventStatus: events.status })
    .from(orders)
    .innerJoin(events, eq(events.id, orders.eventId))
    .where(eq(orders.holdId, payment.holdId));
  if (order) return order;
  if (payment.status === "refunded") return undefined;
  throw new ApiError(503, "order_not_written", "This payment's order is not written yet; deliver the event again later.");
}

function idOf(reference: string | { id: string } | null): string | undefined {
  if (reference === null) return undefined;
  return typeof reference === "string" ? reference : reference.id;
}
