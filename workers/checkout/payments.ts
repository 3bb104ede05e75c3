/**
 * Paying for a hold, with the seed's four payment scenarios (Component 4):
 * success, decline (release or a retry window), abandonment (hold expiry) and
 * ambiguity (retry with the same idempotency key; reconcile; default to
 * release).
 *
 * No charge can happen that reconciliation will not find: a payment row is
 * written before the gateway is called, its PaymentIntent is created
 * unconfirmed (which moves no money), and the intent's id is stored on the
 * row before anything confirms it. Whatever answers are lost after that, the
 * cron knows which intent to ask about, and cancels it at the gateway before
 * it gives up.
 *
 * A card that needs 3-D Secure answers the confirm with `requires_action`:
 * the payment waits on the fan's challenge (Stripe.js on the checkout page)
 * for as long as its hold lives, neither "unknown" nor cancelled; it settles
 * by webhook or reconciliation. Once the hold has ended the challenge is
 * abandoned: the cron cancels the intent and releases the seats.
 */
import { and, desc, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type Stripe from "stripe";
import type { Db } from "../../core/db/client";
import { events, payments } from "../../core/db/schema";
import { ApiError, conflict, notFound } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { inventoryForEvent } from "../holds/pick-inventory";
import type { WorkContext } from "../work-context";
import type { HoldView } from "../../core/holds/contract";
import { cancelIntent, confirmIntent, createIntent, refund, retrieveOutcome, stripeClient, type ChargeOutcome, type IntentRequest } from "./gateway";
import type { ConfirmedSale } from "./messages";
import { log } from "../../core/logger";

/**
 * Seed: "after 3 retries and 2 minutes you still cannot determine payment
 * status, release the seat". From then on nothing confirms the payment's
 * intent any more: the cron cancels it.
 */
export const MAX_GATEWAY_CALLS = 3;
export const UNDETERMINED_RELEASE_MS = 2 * 60 * 1000;
/** Reconciliation leaves a fresh ambiguous payment alone this long (the client may still be retrying). */
export const RECONCILE_AFTER_MS = 30_000;
/** Attempts per hold (cards tried). */
export const MAX_ATTEMPTS = 5;

type PaymentRow = typeof payments.$inferSelect;

/** A payment as fans see it. */
export interface PaymentView {
  paymentId: string;
  holdId: string;
  attempt: number;
  /** The row's status, except `refunding`: succeeded after its seats were gone, its refund asked for and not yet answered. */
  status: PaymentRow["status"] | "refunding";
  amountCents: number;
  currency: string;
  /** Set after a decline when the event allows another card until then. */
  retryUntil: string | null;
  lastError: string | null;
  /** While `requires_action`: what Stripe.js's handleNextAction needs to run the card's challenge. */
  nextAction: { type: "use_stripe_sdk"; clientSecret: string } | null;
}

function view(payment: PaymentRow, retryUntil: number | null, clientSecret: string | null = null): PaymentView {
  return {
    paymentId: payment.id,
    holdId: payment.holdId,
    attempt: payment.attempt,
    status: payment.status === "succeeded" && payment.refundRequestedAt !== null ? "refunding" : payment.status,
    amountCents: payment.amountCents,
    currency: payment.currency,
    retryUntil: retryUntil === null ? null : new Date(retryUntil).toISOString(),
    lastError: payment.lastError,
    nextAction: payment.status === "requires_action" && clientSecret !== null ? { type: "use_stripe_sdk", clientSecret } : null,
  };
}

/** How a failed payment whose intent the gateway refused to create records why (`refused: amount_too_small`). */
const REFUSED = "refused: ";

/**
 * Until when a declined payment's fan may try another card, if the event
 * gives a window; none after a refused create (its hold was released at once:
 * no card can pay what the gateway will not take).
 */
function retryUntilOf(payment: PaymentRow, declineRetrySeconds: number): number | null {
  if (payment.status !== "failed" || declineRetrySeconds === 0 || payment.lastError?.startsWith(REFUSED)) return null;
  return payment.updatedAt.getTime() + declineRetrySeconds * 1000;
}

async function eventSettings(db: Db, eventId: string) {
  const [event] = await db.select({ status: events.status, currency: events.currency, declineRetrySeconds: events.declineRetrySeconds }).from(events).where(eq(events.id, eventId));
  if (!event) throw new ApiError(404, "not_found", "Event was not found.");
  return event;
}

/**
 * Refuses to start a payment for an event that no longer sells: cancelled
 * (409 `event_cancelled`), or not published (404, as fans see drafts
 * everywhere else). Read from Postgres, not from the routing cache, so a
 * cancellation stops new payments at once instead of charging the fan for
 * the cron's cancellation pass to refund. (A payment started in the instant
 * before the cancellation is still refunded by that pass.) A hold taken
 * before the sale ended stays payable until it lapses, as the inventory's
 * confirm allows.
 */
function assertEventSelling(event: { status: "draft" | "published" | "cancelled" }): void {
  if (event.status === "cancelled") throw conflict("event_cancelled", "This event was cancelled, so its tickets can no longer be bought. Nothing was charged.");
  if (event.status !== "published") throw notFound("Event");
}

/** The sale message for a confirmed hold (no PaymentIntent for a free order). */
export function saleOf(hold: HoldView, payment: { id: string; amountCents: number; currency: string }, paymentIntentId: string | null): ConfirmedSale {
  return {
    kind: "sale",
    holdId: hold.holdId,
    eventId: hold.eventId,
    accountId: hold.accountId,
    paymentId: payment.id,
    providerPaymentId: paymentIntentId,
    amountCents: payment.amountCents,
    currency: payment.currency,
    items: [
      ...hold.seats.map((s) => ({ seatIndex: s.seatIndex, sectionId: null, quantity: 1, priceCents: s.priceCents })),
      ...hold.generalAdmission.map((g) => ({ seatIndex: null, sectionId: g.sectionId, quantity: g.quantity, priceCents: g.priceCents })),
    ],
    confirmedAt: Date.now(),
  };
}

/**
 * Charges the fan's card for a live hold. Success confirms the hold and queues
 * the sale; a decline frees the seats at once or leaves a retry window; an
 * ambiguous outcome answers "processing" and is settled by the webhook or
 * the reconciliation cron. Nothing reaches the gateway once the event is
 * cancelled (see `assertEventSelling`).
 */
export async function payForHold(
  ctx: WorkContext,
  input: { eventId: string; holdId: string; accountId: string; paymentMethod: string | undefined },
): Promise<{ status: 200 | 202 | 402; payment: PaymentView }> {
  const inventory = await inventoryForEvent(ctx, input.eventId);
  const hold = await inventory.getHold(input.holdId, input.accountId);
  if (!hold) throw new ApiError(404, "hold_not_found", "No such hold.");
  if (input.paymentMethod === undefined && hold.totalCents > 0) throw new ApiError(400, "payment_method_required", "This hold costs money: pay with a card (paymentMethod).");
  const previous = await ctx.db.select().from(payments).where(eq(payments.holdId, hold.holdId)).orderBy(desc(payments.attempt));
  const latest = previous[0];
  if (latest?.status === "succeeded" || latest?.status === "refunded") return { status: 200, payment: view(latest, null) };
  if (latest && (latest.status === "pending" || latest.status === "unknown" || latest.status === "requires_action")) {
    throw new ApiError(409, "payment_in_progress", "A payment for this hold is still being processed (or waiting on your bank's check); check its status.");
  }
  const settings = await eventSettings(ctx.db, input.eventId);
  assertEventSelling(settings);
  if (hold.status !== "live") throw new ApiError(409, "hold_expired", "That hold has expired or was released.");
  if (latest?.status === "failed") {
    const retryUntil = latest.updatedAt.getTime() + settings.declineRetrySeconds * 1000;
    if (Date.now() >= retryUntil) throw new ApiError(409, "hold_expired", "The time to try another card has passed.");
  }
  const attempt = (latest?.attempt ?? 0) + 1;
  if (attempt > MAX_ATTEMPTS) throw new ApiError(409, "too_many_attempts", "Too many payment attempts for this hold.");

  // The row's times come from this clock, the one reconciliation measures the 2 minutes with (not the database's).
  const startedAt = new Date();
  const [payment] = await ctx.db
    .insert(payments)
    .values({
      holdId: hold.holdId,
      eventId: hold.eventId,
      accountId: hold.accountId,
      idempotencyKey: `hold_${hold.holdId}_attempt_${attempt}`,
      paymentMethod: hold.totalCents > 0 ? input.paymentMethod : null,
      attempt,
      amountCents: hold.totalCents,
      currency: settings.currency,
      status: "pending",
      gatewayCalls: 1,
      createdAt: startedAt,
      updatedAt: startedAt,
    })
    .onConflictDoNothing()
    .returning();
  if (!payment) throw new ApiError(409, "payment_in_progress", "A payment for this hold was just started.");

  const outcome = await tryCharge(ctx, stripeClient(ctx.env), payment);
  const settled = await applyOutcome(ctx, payment, outcome);
  // A free order the inventory would not confirm (the hold lapsed and its places are gone meanwhile): nothing was charged.
  if (outcome.kind === "free" && settled.status === "canceled") throw new ApiError(409, "hold_expired", "That hold has expired or was released; nothing was charged.");
  const retryUntil = retryUntilOf(settled, settings.declineRetrySeconds);
  const status = settled.status === "failed" ? 402 : settled.status === "succeeded" || settled.status === "refunded" ? 200 : 202;
  return { status, payment: view(settled, retryUntil, outcome.kind === "requires_action" ? outcome.clientSecret : null) };
}

/** The create call for a payment's PaymentIntent, rebuilt identically from the row on every try. */
function intentRequestOf(payment: PaymentRow): IntentRequest {
  return {
    amountCents: payment.amountCents,
    currency: payment.currency,
    paymentMethod: payment.paymentMethod ?? "",
    idempotencyKey: payment.idempotencyKey,
    metadata: { hold_id: payment.holdId, event_id: payment.eventId, account_id: payment.accountId, payment_id: payment.id, attempt: String(payment.attempt) },
  };
}

/** The confirm call's key: the create's key cannot be used again on another endpoint. */
export function confirmKeyOf(payment: Pick<PaymentRow, "idempotencyKey">): string {
  return `${payment.idempotencyKey}_confirm`;
}

/**
 * Stores the id of a payment's PaymentIntent while the payment is open.
 * False when the payment was settled or released meanwhile: then its intent
 * must not be confirmed.
 */
async function recordIntent(db: Db, paymentId: string, paymentIntentId: string): Promise<boolean> {
  const [row] = await db
    .update(payments)
    .set({ providerPaymentId: paymentIntentId })
    .where(
      and(
        eq(payments.id, paymentId),
        inArray(payments.status, ["pending", "unknown"]),
        or(isNull(payments.providerPaymentId), eq(payments.providerPaymentId, paymentIntentId)),
      ),
    )
    .returning({ id: payments.id });
  return row !== undefined;
}

/**
 * One try at charging an open payment, safe to repeat. Without a stored
 * intent: create it unconfirmed (or get it back by its key), store its id,
 * then confirm it. With one: ask about it, and confirm it only if it still
 * awaits confirmation. Confirming always uses the payment's confirm key, so
 * two tries charge at most once. A free payment asks nothing of the gateway
 * (which refuses an intent under its minimum amount).
 */
async function tryCharge(ctx: WorkContext, stripe: Stripe, payment: PaymentRow): Promise<ChargeOutcome> {
  if (payment.amountCents === 0) return { kind: "free" };
  let paymentIntentId = payment.providerPaymentId;
  if (paymentIntentId === null) {
    const created = await createIntent(stripe, intentRequestOf(payment));
    // Lost or refused: nothing was confirmed, so nothing can have been charged.
    if (created.kind !== "unconfirmed") return created;
    if (!(await recordIntent(ctx.db, payment.id, created.paymentIntentId))) {
      return { kind: "unknown", error: `payment ${payment.id} was settled while its intent was being created` };
    }
    paymentIntentId = created.paymentIntentId;
  } else {
    const current = await retrieveOutcome(stripe, paymentIntentId);
    if (current.kind !== "unconfirmed") return current;
  }
  return confirmIntent(stripe, paymentIntentId, confirmKeyOf(payment));
}

/** Records a gateway outcome and acts on it; safe to run for the same outcome twice. */
export async function applyOutcome(ctx: WorkContext, payment: PaymentRow, outcome: ChargeOutcome): Promise<PaymentRow> {
  switch (outcome.kind) {
    case "succeeded":
      return finalizeSucceeded(ctx, payment, outcome.paymentIntentId);
    case "free":
      return finalizeSucceeded(ctx, payment, null);
    case "refused": {
      // Nothing was created, so nothing can be charged, and no other card changes the gateway's answer: release at once.
      const updated = await transition(ctx.db, payment.id, ["pending", "unknown"], { status: "failed", lastError: `${REFUSED}${outcome.code}` });
      if (updated) {
        log.warn("payment_intent_refused", { paymentId: payment.id, code: outcome.code, message: outcome.message });
        await releaseHold(ctx, payment, "declined");
      }
      return updated ?? (await reload(ctx.db, payment.id));
    }
    case "declined": {
      const updated = await transition(ctx.db, payment.id, SETTLEABLE, { status: "failed", providerPaymentId: outcome.paymentIntentId ?? payment.providerPaymentId, lastError: outcome.code });
      const settings = await eventSettings(ctx.db, payment.eventId);
      if (updated && settings.declineRetrySeconds === 0) await releaseHold(ctx, payment, "declined");
      return updated ?? (await reload(ctx.db, payment.id));
    }
    case "canceled": {
      const updated = await transition(ctx.db, payment.id, SETTLEABLE, { status: "canceled", providerPaymentId: outcome.paymentIntentId, lastError: "canceled" });
      if (updated) await releaseHold(ctx, payment, "canceled");
      return updated ?? (await reload(ctx.db, payment.id));
    }
    case "requires_action": {
      const updated = await transition(ctx.db, payment.id, ["pending", "unknown"], { status: "requires_action", providerPaymentId: outcome.paymentIntentId, lastError: null });
      return updated ?? (await reload(ctx.db, payment.id));
    }
    case "unconfirmed": {
      const updated = await transition(ctx.db, payment.id, ["pending", "unknown"], { status: "unknown", providerPaymentId: outcome.paymentIntentId, lastError: "not confirmed yet" });
      return updated ?? (await reload(ctx.db, payment.id));
    }
    case "unknown": {
      const updated = await transition(ctx.db, payment.id, ["pending", "unknown"], { status: "unknown", lastError: outcome.error.slice(0, 500) });
      return updated ?? (await reload(ctx.db, payment.id));
    }
  }
}

/** The states a settling answer (success, decline, cancel) may move a payment from. */
const SETTLEABLE: PaymentRow["status"][] = ["pending", "unknown", "requires_action"];

/** Whether the gateway's answer settles a payment (as opposed to leaving it open). */
function isSettled(outcome: ChargeOutcome): outcome is Extract<ChargeOutcome, { kind: "succeeded" | "declined" | "canceled" | "refused" | "free" }> {
  return outcome.kind === "succeeded" || outcome.kind === "declined" || outcome.kind === "canceled" || outcome.kind === "refused" || outcome.kind === "free";
}

async function reload(db: Db, paymentId: string): Promise<PaymentRow> {
  const [row] = await db.select().from(payments).where(eq(payments.id, paymentId));
  if (!row) throw new Error(`payment ${paymentId} vanished`);
  return row;
}

/** Moves a payment from one of `from` to new values; undefined if it was no longer in those states. */
async function transition(db: Db, paymentId: string, from: PaymentRow["status"][], values: Partial<PaymentRow>): Promise<PaymentRow | undefined> {
  const [row] = await db
    .update(payments)
    .set({ ...values, updatedAt: new Date() })
    .where(and(eq(payments.id, paymentId), inArray(payments.status, from)))
    .returning();
  return row;
}

/**
 * The money arrived. Confirm the hold (even a lapsed one, if its seats are
 * still free) and queue the sale; if the seats are gone, refund automatically.
 * Runs from the checkout request, the webhook and the cron: every step is
 * idempotent, and the sale is queued again on every run (the consumer
 * ignores duplicates), so a crash between steps loses nothing. Once the
 * sale's order is written there is nothing left to do: what became of the
 * order since (a refund, a dispute that returned its places) is the order's,
 * and a success delivered again must not take returned places for a reason
 * to refund (a disputed charge is the bank's to settle).
 *
 * A free order (`paymentIntentId` null) takes the same steps without the
 * gateway: nothing was paid, so one the inventory refuses is canceled, not
 * refunded.
 */
export async function finalizeSucceeded(ctx: WorkContext, payment: PaymentRow, paymentIntentId: string | null): Promise<PaymentRow> {
  const from: PaymentRow["status"][] = paymentIntentId === null ? ["pending", "unknown"] : ["pending", "unknown", "requires_action", "failed", "canceled"];
  const current = (await transition(ctx.db, payment.id, from, { status: "succeeded", providerPaymentId: paymentIntentId, lastError: null })) ?? (await reload(ctx.db, payment.id));
  if (current.status !== "succeeded") return current; // already refunded (or a free order already canceled)
  if (current.orderId !== null) return current; // the sale is recorded
  // A refund was asked for: the money may be on its way back, so the payment is never confirmed now, even into seats freed since.
  if (current.refundRequestedAt !== null && paymentIntentId !== null) return refundLatePayment(ctx, current, paymentIntentId);
  const inventory = await inventoryForEvent(ctx, payment.eventId);
  const confirmed = await inventory.confirm({ requestId: `confirm_${payment.id}`, holdId: payment.holdId, allowLapsed: true });
  if (confirmed.ok) {
    await ctx.env.SALES_QUEUE.send(saleOf(confirmed.hold, current, paymentIntentId));
    return current;
  }
  if (paymentIntentId === null) {
    return (await transition(ctx.db, payment.id, ["succeeded"], { status: "canceled", lastError: `not confirmed: ${confirmed.reason}` })) ?? (await reload(ctx.db, payment.id));
  }
  // Paid after the hold lapsed and someone else has the seats: give the money back. Recorded before the gateway is
  // asked, as the refund may be carried out with its answer lost: a later pass must not confirm the payment then.
  await ctx.db
    .update(payments)
    .set({ refundRequestedAt: new Date(), lastError: `${REFUNDING}${confirmed.reason}` })
    .where(and(eq(payments.id, payment.id), eq(payments.status, "succeeded"), isNull(payments.orderId), isNull(payments.refundRequestedAt)));
  return refundLatePayment(ctx, await reload(ctx.db, payment.id), paymentIntentId);
}

/** Why a late payment is being refunded, on its row while the gateway has not answered (`refunding: hold_expired`). */
const REFUNDING = "refunding: ";

/**
 * Refunds a payment that succeeded after its seats were gone, whose refund
 * was recorded as asked for: the same key every time, so asking again
 * refunds once whatever answers were lost.
 */
async function refundLatePayment(ctx: WorkContext, payment: PaymentRow, paymentIntentId: string): Promise<PaymentRow> {
  // Only a refund recorded as asked for, of a payment no order was written for (one confirmed meanwhile is the order's).
  if (payment.status !== "succeeded" || payment.refundRequestedAt === null || payment.orderId !== null) return payment;
  const refunded = await refund(stripeClient(ctx.env), paymentIntentId, "seats_unavailable");
  // Not ours to fix and not final: the webhook's redelivery, the cron or the fan's next poll runs this again (the refund has its key).
  if (!refunded.ok) throw new ApiError(503, "gateway_unavailable", `The payment gateway did not take the refund of ${paymentIntentId} just now (${refunded.error}); it is tried again.`);
  const reason = payment.lastError?.startsWith(REFUNDING) ? payment.lastError.slice(REFUNDING.length) : "seats_unavailable";
  return (await transition(ctx.db, payment.id, ["succeeded"], { status: "refunded", lastError: `refunded: ${reason}` })) ?? (await reload(ctx.db, payment.id));
}

async function releaseHold(ctx: WorkContext, payment: PaymentRow, why: string): Promise<void> {
  const inventory = await inventoryForEvent(ctx, payment.eventId);
  const released = await inventory.release({ accountId: payment.accountId, requestId: `release_${payment.id}_${why}`, holdId: payment.holdId });
  if (!released.ok && released.reason !== "hold_confirmed" && released.reason !== "hold_not_found") {
    throw new Error(`could not release hold ${payment.holdId}: ${released.reason}`);
  }
}

/** The latest payment of a hold, for its owner. */
export async function latestPayment(db: Db, env: Pick<Env, "STRIPE_SECRET_KEY" | "STRIPE_API_BASE">, holdId: string, accountId: string): Promise<PaymentView | undefined> {
  const [row] = await db
    .select()
    .from(payments)
    .where(and(eq(payments.holdId, holdId), eq(payments.accountId, accountId)))
    .orderBy(desc(payments.attempt))
    .limit(1);
  if (!row) return undefined;
  const settings = await eventSettings(db, row.eventId);
  return view(row, retryUntilOf(row, settings.declineRetrySeconds), await clientSecretOf(env, row));
}

/**
 * Client secrets of intents waiting on a challenge, per isolate (memory only;
 * an intent's secret never changes). The checkout polls every 2 s while the
 * fan is at the bank's page, and Stripe limits API reads per account: one
 * retrieve per intent and isolate, not one per poll.
 */
const challengeSecrets = new IsolateCache<string, string>(10_000);

/** The client secret a payment waiting on its challenge hands to Stripe.js (asked of the gateway once; null if it does not answer). */
async function clientSecretOf(env: Pick<Env, "STRIPE_SECRET_KEY" | "STRIPE_API_BASE">, payment: PaymentRow): Promise<string | null> {
  if (payment.status !== "requires_action" || payment.providerPaymentId === null) return null;
  const known = challengeSecrets.get(payment.providerPaymentId);
  if (known !== undefined) return known;
  const current = await retrieveOutcome(stripeClient(env), payment.providerPaymentId);
  if (current.kind !== "requires_action") return null;
  challengeSecrets.set(payment.providerPaymentId, current.clientSecret);
  return current.clientSecret;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The payment a webhook's PaymentIntent belongs to, or undefined when it is
 * none of ours. The intent's id is authoritative once stored; before that,
 * the payment its metadata names must not know another intent, and the
 * intent must carry that payment's hold and attempt (issue 13 finding 7: an
 * intent naming one payment while being another's is not acted on).
 */
async function paymentOfIntent(db: Db, intent: Stripe.PaymentIntent): Promise<PaymentRow | undefined> {
  const [byIntent] = await db.select().from(payments).where(eq(payments.providerPaymentId, intent.id));
  if (byIntent) return byIntent;
  const named = intent.metadata?.payment_id;
  if (!named || !UUID.test(named)) return undefined;
  const [payment] = await db.select().from(payments).where(eq(payments.id, named));
  if (!payment || payment.providerPaymentId !== null) return undefined;
  const sameAttempt = intent.metadata.hold_id === payment.holdId && intent.metadata.attempt === String(payment.attempt);
  return sameAttempt ? payment : undefined;
}

/** Handles a verified gateway webhook; duplicates and out-of-order deliveries change nothing. */
export async function handleWebhookEvent(ctx: WorkContext, event: Stripe.Event): Promise<void> {
  if (event.type !== "payment_intent.succeeded" && event.type !== "payment_intent.payment_failed" && event.type !== "payment_intent.canceled") return;
  const intent = event.data.object;
  const payment = await paymentOfIntent(ctx.db, intent);
  if (!payment) return; // not ours to act on: acknowledged, so the gateway stops sending it
  // Ask the gateway for the current truth instead of trusting the event's order.
  const outcome = await retrieveOutcome(stripeClient(ctx.env), intent.id);
  if (outcome.kind === "unknown") {
    // Keep what the event told us (a payment started before intents were created unconfirmed may not
    // know its intent), so reconciliation asks about this intent (and can cancel it), and refuse the
    // delivery so the gateway sends it again: acknowledging it would lose the news.
    await ctx.db
      .update(payments)
      .set({ providerPaymentId: intent.id })
      .where(and(eq(payments.id, payment.id), isNull(payments.providerPaymentId)));
    throw new ApiError(503, "gateway_unavailable", "The payment gateway could not confirm this event; deliver it again later.");
  }
  await applyOutcome(ctx, payment, outcome);
}

/** What one reconciliation pass did. */
export interface ReconcileReport {
  checked: number;
  succeeded: number;
  failed: number;
  released: number;
  stillUnknown: number;
  declineWindowsClosed: number;
  /** Payments left waiting on the fan's 3-D Secure challenge (their holds live). */
  awaitingChallenge: number;
  /** Challenges abandoned: the hold ended, so the intent was canceled and the seats released. */
  challengesAbandoned: number;
  /** Paid payments whose sale had not reached Postgres, finalized (and queued) again. */
  requeued: number;
  /** Payments whose reconciliation threw; they are retried on the next pass. */
  errors: number;
}

/**
 * The cron's pass over payments (seed: "A background job queries Stripe for
 * the status of pending payments every 60 seconds"): ambiguous payments are
 * tried again (see `tryCharge`: the same keys replay the first result, or
 * perform it once); undetermined after 3 tries or 2 minutes, the payment's
 * intent is canceled and the hold released. Declined payments whose retry
 * window closed release their hold.
 */
export async function reconcilePayments(ctx: WorkContext, now = Date.now()): Promise<ReconcileReport> {
  const report: ReconcileReport = { checked: 0, succeeded: 0, failed: 0, released: 0, stillUnknown: 0, declineWindowsClosed: 0, awaitingChallenge: 0, challengesAbandoned: 0, requeued: 0, errors: 0 };
  const stripe = stripeClient(ctx.env);
  const open = await ctx.db
    .select()
    .from(payments)
    .where(and(inArray(payments.status, ["pending", "unknown"]), lt(payments.updatedAt, new Date(now - RECONCILE_AFTER_MS))))
    .orderBy(payments.updatedAt)
    .limit(200);
  for (const payment of open) {
    report.checked++;
    // One payment that cannot be reconciled (its event gone, its inventory down) must not stall the others.
    try {
      await reconcileOne(ctx, stripe, payment, now, report);
    } catch (error) {
      report.errors++;
      logFailure("reconcile_payment_failed", payment.id, error);
    }
  }
  await settleChallenges(ctx, stripe, now, report);
  report.requeued = await finalizeUnwrittenSales(ctx, now, report);
  report.declineWindowsClosed = await closeDeclineWindows(ctx, now, report);
  return report;
}

function logFailure(event: string, paymentId: string, error: unknown): void {
  log.error(event, { paymentId, error: String(error) });
}

/** Why a hold was released while its payment's intent could not be canceled yet (the payment stays open). */
const RELEASED_UNCANCELED = "undetermined: hold released, intent not canceled yet";

/** One open payment: try it again, or once undetermined (or its event cancelled), cancel its intent and release the hold. */
async function reconcileOne(ctx: WorkContext, stripe: Stripe, payment: PaymentRow, now: number, report: ReconcileReport): Promise<void> {
  const [bumped] = await ctx.db
    .update(payments)
    .set({ gatewayCalls: sql`${payments.gatewayCalls} + 1`, updatedAt: new Date(now) })
    .where(and(eq(payments.id, payment.id), inArray(payments.status, ["pending", "unknown"])))
    .returning();
  if (!bumped) return;
  // Nothing is charged once the event is cancelled (as `payForHold` refuses a new payment): settle it as undetermined, cancelling its intent.
  // A free payment asks nothing of the gateway, so only that makes it undetermined: every pass confirms it again until the inventory answers.
  const gatewayGaveUp = bumped.amountCents > 0 && (bumped.gatewayCalls >= MAX_GATEWAY_CALLS || now - payment.createdAt.getTime() >= UNDETERMINED_RELEASE_MS);
  const undetermined = gatewayGaveUp || (await eventCancelled(ctx.db, payment.eventId));
  if (!undetermined) {
    const outcome = await tryCharge(ctx, stripe, bumped);
    if (isSettled(outcome)) await settle(ctx, bumped, outcome, report);
    else if (outcome.kind === "requires_action") await awaitChallenge(ctx, bumped, outcome, report);
    else report.stillUnknown++;
    return;
  }
  if (bumped.providerPaymentId === null) {
    // No intent id was ever stored, so no intent was ever confirmed: nothing can have been charged.
    // The condition on the id loses to a try that stored one meanwhile (it stores before it confirms).
    const [released] = await ctx.db
      .update(payments)
      .set({ status: "canceled", lastError: "undetermined: released", updatedAt: new Date() })
      .where(and(eq(payments.id, payment.id), inArray(payments.status, ["pending", "unknown"]), isNull(payments.providerPaymentId)))
      .returning();
    if (released) {
      await releaseHold(ctx, released, "undetermined");
      report.released++;
    } else report.stillUnknown++;
    return;
  }
  // Default to release, but never while a charge could still land unnoticed: ask, and cancel what has not settled.
  const current = await retrieveOutcome(stripe, bumped.providerPaymentId);
  // Known at last to wait on the fan's challenge: not undetermined, so it waits while its hold lives (settleChallenges).
  if (current.kind === "requires_action") return awaitChallenge(ctx, bumped, current, report);
  const outcome = isSettled(current) ? current : await cancelIntent(stripe, bumped.providerPaymentId);
  if (isSettled(outcome)) {
    await settle(ctx, bumped, outcome, report);
    return;
  }
  // The gateway answers nothing: release the seats anyway (seed), and keep the payment open so the
  // next passes go on cancelling its intent; a charge that lands meanwhile becomes an order or a refund.
  const marked = await transition(ctx.db, payment.id, ["pending", "unknown"], { lastError: RELEASED_UNCANCELED });
  if (marked) await releaseHold(ctx, marked, "undetermined");
  if (marked && payment.lastError !== RELEASED_UNCANCELED) report.released++;
  else report.stillUnknown++;
}

async function eventCancelled(db: Db, eventId: string): Promise<boolean> {
  const [event] = await db.select({ status: events.status }).from(events).where(eq(events.id, eventId));
  return event?.status === "cancelled";
}

/** Records that a payment waits on its challenge, and counts it. */
async function awaitChallenge(ctx: WorkContext, payment: PaymentRow, outcome: ChargeOutcome, report: ReconcileReport): Promise<void> {
  await applyOutcome(ctx, payment, outcome);
  report.awaitingChallenge++;
}

/**
 * Payments waiting on the fan's 3-D Secure challenge: settled if the
 * gateway has the answer (a webhook lost, say); left alone while the hold
 * lives; once the hold has ended, the challenge is abandoned: the intent is
 * canceled (which loses to a challenge passed meanwhile: then the payment
 * succeeded, and is finalized like every late payment) and the seats released.
 */
async function settleChallenges(ctx: WorkContext, stripe: Stripe, now: number, report: ReconcileReport): Promise<void> {
  const waiting = await ctx.db
    .select()
    .from(payments)
    .where(and(eq(payments.status, "requires_action"), lt(payments.updatedAt, new Date(now - RECONCILE_AFTER_MS))))
    .orderBy(payments.updatedAt)
    .limit(200);
  for (const payment of waiting) {
    report.checked++;
    try {
      if (payment.providerPaymentId === null) throw new Error("a payment waiting on its challenge has no intent");
      const current = await retrieveOutcome(stripe, payment.providerPaymentId);
      if (isSettled(current)) {
        await settle(ctx, payment, current, report);
        continue;
      }
      const hold = await (await inventoryForEvent(ctx, payment.eventId)).getHold(payment.holdId, payment.accountId);
      if (hold && hold.status === "live" && hold.expiresAt > now) {
        report.awaitingChallenge++;
        continue;
      }
      const outcome = await cancelIntent(stripe, payment.providerPaymentId);
      if (!isSettled(outcome)) {
        report.stillUnknown++;
        continue;
      }
      await settle(ctx, payment, outcome, report);
      if (outcome.kind === "canceled") report.challengesAbandoned++;
    } catch (error) {
      report.errors++;
      logFailure("settle_challenge_failed", payment.id, error);
    }
  }
}

/** Applies a settling answer and counts it. */
async function settle(ctx: WorkContext, payment: PaymentRow, outcome: ChargeOutcome, report: ReconcileReport): Promise<void> {
  const settled = await applyOutcome(ctx, payment, outcome);
  if (settled.status === "succeeded") report.succeeded++;
  else if (settled.status === "canceled") report.released++;
  else report.failed++;
}

/**
 * Paid payments without an order: the Worker recorded the success, then died
 * before the sale reached the queue (or before a refund was recorded), and
 * no webhook is coming to finish the job. Finalizing again is idempotent;
 * a sale that was only still on its way is queued twice, which the consumer
 * ignores.
 */
async function finalizeUnwrittenSales(ctx: WorkContext, now: number, report: ReconcileReport): Promise<number> {
  const unwritten = await ctx.db
    .select()
    .from(payments)
    .where(and(eq(payments.status, "succeeded"), isNull(payments.orderId), lt(payments.updatedAt, new Date(now - RECONCILE_AFTER_MS))))
    .orderBy(payments.updatedAt)
    .limit(200);
  let finalized = 0;
  for (const payment of unwritten) {
    // A paid payment knows its intent; a free one has none.
    if (payment.providerPaymentId === null && payment.amountCents > 0) continue;
    try {
      // Looked at again a grace period later at the earliest, however the sale fares meanwhile.
      await ctx.db.update(payments).set({ updatedAt: new Date(now) }).where(eq(payments.id, payment.id));
      await finalizeSucceeded(ctx, payment, payment.providerPaymentId);
      finalized++;
    } catch (error) {
      report.errors++;
      logFailure("finalize_unwritten_sale_failed", payment.id, error);
    }
  }
  return finalized;
}

/** Releases holds whose last payment was declined and whose retry window has closed. */
async function closeDeclineWindows(ctx: WorkContext, now: number, report: ReconcileReport): Promise<number> {
  const expired = await ctx.db.execute<{ id: string }>(sql`
    select p.id from payments p join events e on e.id = p.event_id
    where p.status = 'failed' and p.updated_at + make_interval(secs => e.decline_retry_seconds) < ${new Date(now).toISOString()}
      and p.last_error <> 'window_closed' and p.last_error not like ${`${REFUSED}%`}
      and not exists (select 1 from payments q where q.hold_id = p.hold_id and q.attempt > p.attempt)
    limit 200`);
  let closed = 0;
  for (const { id } of expired.rows) {
    const [payment] = await ctx.db
      .update(payments)
      .set({ lastError: "window_closed" })
      .where(and(eq(payments.id, id), eq(payments.status, "failed")))
      .returning();
    if (!payment) continue;
    try {
      await releaseHold(ctx, payment, "declined");
      closed++;
    } catch (error) {
      report.errors++;
      logFailure("close_decline_window_failed", payment.id, error);
    }
  }
  return closed;
}
