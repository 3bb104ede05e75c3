/**
 * Disputes (`GET /v1/disputes/:id`): a cardholder's bank disputing a
 * succeeded charge. Nobody opens one through the API; the gateway's control
 * route `POST /__dashboard/dispute` does, as a bank would, with a
 * `charge.dispute.created` event.
 */
import type { Charges } from "./charges.ts";
import { invalid, missing } from "./errors.ts";
import { ok, type ApiResult, type EmitEvent, type Exchange } from "./exchange.ts";
import { newId, unixNow } from "./ids.ts";
import type { ChargeObject, DisputeObject, DisputeReason } from "./objects.ts";
import type { PaymentIntents } from "./payment-intents.ts";
import { retrieveRoute, type Route } from "./routes.ts";

/** How long a merchant has to answer a dispute (Stripe: about three weeks). */
const RESPONSE_WINDOW_S = 21 * 86_400;

/** What opening a dispute names: the charge, or the PaymentIntent whose latest charge it is. */
export interface DisputeRequest {
  charge?: string | undefined;
  payment_intent?: string | undefined;
  reason?: DisputeReason | undefined;
}

/** Every dispute, one at most per charge. */
export class Disputes {
  private readonly byId = new Map<string, DisputeObject>();

  constructor(
    private readonly paymentIntents: PaymentIntents,
    private readonly charges: Charges,
    private readonly emit: EmitEvent,
  ) {}

  routes(): Route[] {
    return [retrieveRoute("disputes", "dispute", (id) => this.byId.get(id))];
  }

  /** Opens a dispute for the whole captured amount (`needs_response`); throws InvalidRequest when the charge cannot be disputed. */
  open(request: DisputeRequest, exchange: Exchange): ApiResult {
    const charge = this.disputableCharge(request);
    const created = unixNow();
    const dispute: DisputeObject = {
      id: newId("dp"),
      object: "dispute",
      amount: charge.amount_captured,
      balance_transactions: [],
      charge: charge.id,
      created,
      currency: charge.currency,
      evidence_details: { due_by: created + RESPONSE_WINDOW_S, has_evidence: false, past_due: false, submission_count: 0 },
      is_charge_refundable: false,
      livemode: false,
      metadata: {},
      payment_intent: charge.payment_intent,
      reason: request.reason ?? "general",
      status: "needs_response",
    };
    this.byId.set(dispute.id, dispute);
    charge.disputed = true;
    // A dispute's own metadata is empty; its events are matched by its charge's (the hold's), as the intent's are.
    this.emit("charge.dispute.created", dispute, exchange, undefined, charge.metadata);
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
