/**
 * Disputes (`GET /v1/disputes/:id`): a cardholder's bank disputing a
 * succeeded charge. Nobody opens one through the API; the bank does, with a
 * `charge.dispute.created` event:
 * - a chargeback (`needs_response`), from the control route
 *   `POST /__dashboard/dispute`: its amount is withdrawn at once (a balance
 *   transaction, and `charge.dispute.funds_withdrawn`);
 * - an inquiry (`warning_needs_response`), as Stripe's test mode opens one
 *   for a charge on `pm_card_createDisputeInquiry` (4000000000001976): a
 *   question, no money withdrawn, the charge still refundable. The control
 *   route `POST /__dashboard/dispute/escalate` makes the bank escalate it to
 *   a chargeback under the same id: `charge.dispute.updated` (status
 *   `needs_response`, `previous_attributes` naming the inquiry's), then
 *   `charge.dispute.funds_withdrawn`.
 *
 * The merchant answers through the API, as in Stripe's test mode:
 * `POST /v1/disputes/:id/close` accepts a chargeback (lost);
 * `POST /v1/disputes/:id` with `evidence[uncategorized_text]` submits
 * evidence (`charge.dispute.updated`: `under_review`, or
 * `warning_under_review` for an inquiry), and the bank decides at once on
 * Stripe's test texts: `winning_evidence` wins a chargeback and closes an
 * inquiry (`warning_closed`), `losing_evidence` loses a chargeback
 * (`charge.dispute.closed`) and escalates an inquiry. A closed dispute takes
 * no more. Accepting an inquiry is refused here: we found no documented
 * outcome for it (a merchant refunds the charge instead).
 */
import type { Charges } from "./charges.ts";
import { invalid, missing } from "./errors.ts";
import { ok, type ApiResult, type EmitEvent, type Exchange } from "./exchange.ts";
import { newId, unixNow } from "./ids.ts";
import { mergeMetadata, type BalanceTransactionObject, type ChargeObject, type DisputeObject, type DisputeReason } from "./objects.ts";
import type { PaymentIntents } from "./payment-intents.ts";
import { z } from "zod";
import { metadataParam, NoParams, parseParams } from "./params.ts";
import { retrieveRoute, type Route } from "./routes.ts";

/** How long a merchant has to answer a dispute (Stripe: about three weeks). */
const RESPONSE_WINDOW_S = 21 * 86_400;
/** Stripe's dispute fee (US pricing), charged with a chargeback's withdrawal. */
const DISPUTE_FEE = 1_500;
/** The reason Stripe's inquiry test card's bank gives. */
const TEST_INQUIRY_REASON: DisputeReason = "fraudulent";

/** What opening a dispute names: the charge, or the PaymentIntent whose latest charge it is. */
export interface DisputeRequest {
  charge?: string | undefined;
  payment_intent?: string | undefined;
  reason?: DisputeReason | undefined;
}

/** What updating a dispute takes (the evidence field our tests and Stripe's test mode use, whether to submit it, metadata). */
const UpdateParams = z.strictObject({
  evidence: z.strictObject({ uncategorized_text: z.string().max(20_000).optional() }).optional(),
  submit: z.enum(["true", "false"]).optional(),
  metadata: metadataParam.optional(),
});

/** Every dispute, one at most per charge. */
export class Disputes {
  private readonly byId = new Map<string, DisputeObject>();

  constructor(
    private readonly paymentIntents: PaymentIntents,
    private readonly charges: Charges,
    private readonly emit: EmitEvent,
  ) {}

  routes(): Route[] {
    return [
      retrieveRoute("disputes", "dispute", (id) => this.byId.get(id)),
      this.disputeRoute("", UpdateParams, (dispute, params, exchange) => this.update(dispute, params, exchange)),
      this.disputeRoute("/close", NoParams, (dispute, _params, exchange) => this.accept(dispute, exchange)),
    ];
  }

  /** `POST /v1/disputes/:id<action>`: `params` checked against `schema`, then the dispute looked up (a 404 when missing). */
  private disputeRoute<T>(action: string, schema: z.ZodType<T>, act: (dispute: DisputeObject, params: T, exchange: Exchange) => ApiResult): Route {
    return {
      method: "POST",
      pattern: new RegExp(`^/v1/disputes/([^/]+)${action}$`),
      intentOf: (id) => (id === undefined ? undefined : this.byId.get(id)?.payment_intent),
      handle: (params, exchange, id) => {
        const parsed = parseParams(schema, params);
        const dispute = this.byId.get(id);
        if (!dispute) throw missing("dispute", id, "id");
        return act(dispute, parsed, exchange);
      },
    };
  }

  /** Evidence (submitted unless `submit=false`) and metadata; Stripe's test texts decide the dispute. */
  private update(dispute: DisputeObject, params: z.output<typeof UpdateParams>, exchange: Exchange): ApiResult {
    this.requireOpen(dispute);
    dispute.metadata = mergeMetadata(dispute.metadata, params.metadata);
    const text = params.evidence?.uncategorized_text;
    if (text === undefined || params.submit === "false") return ok(dispute);
    const inquiry = isInquiry(dispute);
    const previous = dispute.status;
    dispute.status = inquiry ? "warning_under_review" : "under_review";
    this.emit("charge.dispute.updated", dispute, exchange, { status: previous }, this.chargeMetadata(dispute));
    if (text === "winning_evidence") return this.close(dispute, inquiry ? "warning_closed" : "won", exchange);
    if (text === "losing_evidence") return inquiry ? this.escalate(dispute, exchange) : this.close(dispute, "lost", exchange);
    return ok(dispute);
  }

  /** Accepting a chargeback closes it lost. */
  private accept(dispute: DisputeObject, exchange: Exchange): ApiResult {
    if (isInquiry(dispute)) throw invalid(`This dispute is an inquiry (${dispute.status}); refund the charge or submit evidence instead.`, { param: "id" });
    return this.close(dispute, "lost", exchange);
  }

  /** Closes an open dispute as `status`, with `charge.dispute.closed`. */
  private close(dispute: DisputeObject, status: "won" | "lost" | "warning_closed", exchange: Exchange): ApiResult {
    this.requireOpen(dispute);
    dispute.status = status;
    this.emit("charge.dispute.closed", dispute, exchange, undefined, this.chargeMetadata(dispute));
    return ok(dispute);
  }

  /** The bank escalates an open inquiry to a chargeback (the control route's, or losing evidence's): the same dispute, now `needs_response`, its amount withdrawn. */
  escalateById(id: string, exchange: Exchange): ApiResult {
    const dispute = this.byId.get(id);
    if (!dispute) throw missing("dispute", id, "dispute");
    return this.escalate(dispute, exchange);
  }

  private escalate(dispute: DisputeObject, exchange: Exchange): ApiResult {
    this.requireOpen(dispute);
    if (!isInquiry(dispute)) throw invalid(`This dispute is already a chargeback (${dispute.status}).`, { param: "dispute" });
    const previous = { status: dispute.status, is_charge_refundable: dispute.is_charge_refundable, balance_transactions: [...dispute.balance_transactions] };
    Object.assign(dispute, { status: "needs_response", is_charge_refundable: false });
    dispute.balance_transactions.push(withdrawal(dispute));
    this.emit("charge.dispute.updated", dispute, exchange, previous, this.chargeMetadata(dispute));
    this.emit("charge.dispute.funds_withdrawn", dispute, exchange, undefined, this.chargeMetadata(dispute));
    return ok(dispute);
  }

  private requireOpen(dispute: DisputeObject): void {
    if (dispute.status === "won" || dispute.status === "lost" || dispute.status === "warning_closed") throw invalid(`This dispute is already closed (${dispute.status}).`, { param: "id" });
  }

  /** Whether a charge may still be refunded: not once a chargeback took its amount (an inquiry leaves it refundable). */
  isChargeRefundable(charge: ChargeObject): boolean {
    if (!charge.disputed) return true;
    return [...this.byId.values()].some((dispute) => dispute.charge === charge.id && dispute.is_charge_refundable);
  }

  /** A dispute's events are matched by its charge's metadata (the hold's), as the intent's are. */
  private chargeMetadata(dispute: DisputeObject) {
    return this.charges.get(dispute.charge)?.metadata ?? {};
  }

  /** The bank opens a chargeback for the whole captured amount (`needs_response`); throws InvalidRequest when the charge cannot be disputed. */
  open(request: DisputeRequest, exchange: Exchange): ApiResult {
    return this.openOn(this.disputableCharge(request), "chargeback", request.reason ?? "general", exchange);
  }

  /** The bank of one of Stripe's dispute test cards opens its dispute on a charge just captured. */
  openOnCharge(charge: ChargeObject, kind: "inquiry", exchange: Exchange): void {
    this.openOn(charge, kind, TEST_INQUIRY_REASON, exchange);
  }

  private openOn(charge: ChargeObject, kind: "chargeback" | "inquiry", reason: DisputeReason, exchange: Exchange): ApiResult {
    const created = unixNow();
    const inquiry = kind === "inquiry";
    const dispute: DisputeObject = {
      id: newId("dp"),
      object: "dispute",
      amount: charge.amount_captured,
      balance_transactions: [],
      charge: charge.id,
      created,
      currency: charge.currency,
      evidence_details: { due_by: created + RESPONSE_WINDOW_S, has_evidence: false, past_due: false, submission_count: 0 },
      is_charge_refundable: inquiry,
      livemode: false,
      metadata: {},
      payment_intent: charge.payment_intent,
      reason,
      status: inquiry ? "warning_needs_response" : "needs_response",
    };
    if (!inquiry) dispute.balance_transactions.push(withdrawal(dispute));
    this.byId.set(dispute.id, dispute);
    charge.disputed = true;
    // A dispute's own metadata is empty; its events are matched by its charge's (the hold's), as the intent's are.
    this.emit("charge.dispute.created", dispute, exchange, undefined, charge.metadata);
    if (!inquiry) this.emit("charge.dispute.funds_withdrawn", dispute, exchange, undefined, charge.metadata);
    return ok(dispute);
  }

  private disputableCharge(request: DisputeRequest): ChargeObject {
    if ((request.charge === undefined) === (request.payment_intent === undefined)) {
      throw invalid("You must pass either a payment_intent or a charge, but not both.", { code: "parameter_missing", param: "charge" });
    }
    let charge: ChargeObject | undefined;
    if (request.charge !== undefined) {
      charge = this.charges.get(request.charge);
      if (!charge) throw missing("charge", request.charge, "charge");
    } else {
      const id = request.payment_intent ?? "";
      const intent = this.paymentIntents.get(id);
      if (!intent) throw missing("payment_intent", id, "payment_intent");
      charge = intent.latest_charge ? this.charges.get(intent.latest_charge) : undefined;
      if (!charge) throw invalid(`This PaymentIntent (${intent.id}) has no charge to dispute.`, { param: "payment_intent" });
    }
    if (charge.status !== "succeeded" || !charge.captured) throw invalid(`Charge ${charge.id} has no captured amount to dispute.`, { param: "charge" });
    if (charge.disputed) throw invalid(`Charge ${charge.id} is already disputed.`, { code: "charge_disputed", param: "charge" });
    return charge;
  }
}

/** An inquiry: the bank's question before any chargeback (Stripe's `warning_*` statuses). */
function isInquiry(dispute: DisputeObject): boolean {
  return dispute.status.startsWith("warning_");
}

/** A chargeback's withdrawal of the disputed amount and Stripe's fee, as the balance transaction Stripe lists on the dispute. */
function withdrawal(dispute: DisputeObject): BalanceTransactionObject {
  const created = unixNow();
  return {
    id: newId("txn"),
    object: "balance_transaction",
    amount: -dispute.amount,
    available_on: created,
    created,
    currency: dispute.currency,
    description: `Chargeback withdrawal for ${dispute.charge}`,
    fee: DISPUTE_FEE,
    fee_details: [{ amount: DISPUTE_FEE, application: null, currency: dispute.currency, description: "Dispute fee", type: "stripe_fee" }],
    net: -dispute.amount - DISPUTE_FEE,
    reporting_category: "dispute",
    source: dispute.id,
    status: "pending",
    type: "adjustment",
  };
}
