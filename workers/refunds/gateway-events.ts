/**
 * Refunds and disputes that reach us from the gateway: `charge.refunded`
 * (a refund made in the Stripe dashboard, or the echo of one our admin API
 * made) and the `charge.dispute.*` events (the cardholder's bank disputing
 * the charge). A refund in full or a chargeback returns the order as an
 * organizer's refund does (tickets void, places back to the inventory, the
 * waitlist served), without asking the gateway for anything. Every dispute
 * event records how the dispute goes (inquiry, under review, won, lost) on
 * the order, for the organizer.
 *
 * - Ours only: the charge's PaymentIntent must be one a payment of ours
 *   stored; any other delivery is acknowledged and changes nothing.
 * - Partial refunds are recorded on the order (`refundedCents`, never
 *   lowered) and leave its tickets valid; the order is returned once the
 *   charge is refunded in full.
 * - An inquiry (Stripe's `warning_*` statuses: Amex, Discover and others ask
 *   before a chargeback; no money is withdrawn) is only recorded: the order
 *   stays confirmed, its tickets valid, its places sold, and the organizer
 *   may still refund it. Closed (`warning_closed`), nothing else changes.
 * - A chargeback (`charge.dispute.created` with any other status, an
 *   inquiry escalated by `charge.dispute.updated` to one, or
 *   `charge.dispute.funds_withdrawn`) voids the tickets at once (the money
 *   is held by the bank while it lasts) and returns the places, once; a
 *   dispute that is later won leaves them void (their places were sold
 *   again). Its status only moves forward (inquiry, chargeback, under
 *   review, closed), whatever order the events come in; an update or
 *   closing whose opening is not recorded yet is refused (503), so the
 *   gateway delivers it again after the opening.
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
export type ChargeEvent =
  | Stripe.ChargeRefundedEvent
  | Stripe.ChargeDisputeCreatedEvent
  | Stripe.ChargeDisputeUpdatedEvent
  | Stripe.ChargeDisputeFundsWithdrawnEvent
  | Stripe.ChargeDisputeClosedEvent;

const CHARGE_EVENTS: ReadonlySet<string> = new Set(["charge.refunded", "charge.dispute.created", "charge.dispute.updated", "charge.dispute.funds_withdrawn", "charge.dispute.closed"]);

/** Whether a verified event is one of those handled here. */
export function isChargeEvent(event: Stripe.Event): event is ChargeEvent {
  return CHARGE_EVENTS.has(event.type);
}

/** Handles a verified charge or dispute event; throws a 503 `ApiError` when it must be delivered again later. */
export async function handleChargeEvent(ctx: WorkContext, event: ChargeEvent): Promise<void> {
  if (event.type === "charge.refunded") await chargeRefunded(ctx, event.data.object);
  // The opening, and the withdrawal of a chargeback's funds (which may come first), each record the dispute.
  else if (event.type === "charge.dispute.created") await disputeEvent(ctx, event.data.object, { opens: true, withdrawn: false });
  else if (event.type === "charge.dispute.funds_withdrawn") await disputeEvent(ctx, event.data.object, { opens: true, withdrawn: true });
  else await disputeEvent(ctx, event.data.object, { opens: false, withdrawn: false });
}

/**
 * How far a dispute has gone, by Stripe's statuses: it only moves forward.
 * An inquiry comes first; one that escalates becomes a chargeback under the
 * same id, and a closed inquiry may still escalate.
 */
const DISPUTE_STAGE: Record<string, number> = {
  warning_needs_response: 0,
  warning_under_review: 1,
  warning_closed: 2,
  needs_response: 3,
  under_review: 4,
  prevented: 5,
  won: 5,
  lost: 5,
};

/** An inquiry: the bank asks before any chargeback, and no money is withdrawn (Stripe's `warning_*` statuses). */
function isInquiry(status: string): boolean {
  return status.startsWith("warning_");
}

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

/**
 * A dispute's event: recorded on its order (the opening once, later news
 * when it moves the dispute forward), and a chargeback returns the order.
 * `opens`: the event may be the first we hear of the dispute; `withdrawn`:
 * the bank took the money, whatever the status says.
 */
async function disputeEvent(ctx: WorkContext, dispute: Stripe.Dispute, event: { opens: boolean; withdrawn: boolean }): Promise<void> {
  const order = await orderOfIntent(ctx, idOf(dispute.payment_intent));
  if (!order) return;
  if (event.opens) {
    await ctx.db
      .update(orders)
      .set({ disputeReason: dispute.reason, disputeStatus: dispute.status, updatedAt: new Date() })
      .where(and(eq(orders.id, order.id), isNull(orders.disputeStatus)));
  }
  const [row] = await ctx.db.select({ disputeStatus: orders.disputeStatus }).from(orders).where(eq(orders.id, order.id));
  const recorded = row?.disputeStatus;
  if (!recorded) throw new ApiError(503, "dispute_not_recorded", "This dispute's opening is not recorded yet; deliver the event again later.");
  if ((event.withdrawn || !isInquiry(dispute.status)) && order.status === "confirmed") {
    // A chargeback: returned once, however many of its events come (each step is conditional on the order's state).
    await returnPlaces(ctx, order, "disputed");
    log.info("order_disputed", { orderId: order.id, disputeId: dispute.id, reason: dispute.reason, status: dispute.status });
    if (order.eventStatus === "published") await serveAfterReturn(ctx, order.eventId);
  }
  await recordProgress(ctx, order.id, dispute, recorded);
}

/** Records the dispute's status (and reason, which an escalation may change) when it moves the recorded one forward. */
async function recordProgress(ctx: WorkContext, orderId: string, dispute: Stripe.Dispute, recorded: string): Promise<void> {
  if ((DISPUTE_STAGE[dispute.status] ?? -1) <= (DISPUTE_STAGE[recorded] ?? 0)) return;
  // Conditional on the status read: of two news racing, the one written second re-reads and checks again at its redelivery.
  const changed = await ctx.db
    .update(orders)
    .set({ disputeReason: dispute.reason, disputeStatus: dispute.status, updatedAt: new Date() })
    .where(and(eq(orders.id, orderId), eq(orders.disputeStatus, recorded)))
    .returning({ id: orders.id });
  if (changed.length === 0) throw new ApiError(503, "dispute_changed", "This dispute changed meanwhile; deliver the event again.");
  log.info("order_dispute_status", { orderId, disputeId: dispute.id, status: dispute.status });
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
