/**
 * Disputes (`GET /v1/disputes/:id`): a cardholder's bank disputing a
 * succeeded charge. Nobody opens one through the API; the gateway's control
 * route `POST /__dashboard/dispute` does, as a bank would, with a
 * `charge.dispute.created` event.
 *
 * The merchant answers through the API, as in Stripe's test mode:
 * `POST /v1/disputes/:id/close` accepts the dispute (lost);
 * `POST /v1/disputes/:id` with `evidence[uncategorized_text]` submits
 * evidence (`charge.dispute.updated`, under review), and the bank decides at
 * once on Stripe's test texts: `winning_evidence` wins it, `losing_evidence`
 * loses it (`charge.dispute.closed`). A closed dispute takes no more.
 */
import type { Charges } from "./charges.ts";
import { invalid, missing } from "./errors.ts";
import { ok, type ApiResult, type EmitEvent, type Exchange } from "./exchange.ts";
import { newId, unixNow } from "./ids.ts";
import { mergeMetadata, type ChargeObject, type DisputeObject, type DisputeReason } from "./objects.ts";
import type { PaymentIntents } from "./payment-intents.ts";
import { z } from "zod";
import { metadataParam, NoParams, parseParams } from "./params.ts";
import { retrieveRoute, type Route } from "./routes.ts";

/** How long a merchant has to answer a dispute (Stripe: about three weeks). */
const RESPONSE_WINDOW_S = 21 * 86_400;

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
      this.disputeRoute("/close", NoParams, (dispute, _params, exchange) => this.close(dispute, "lost", exchange)),
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
    const previous = dispute.status;
    dispute.status = "under_review";
    this.emit("charge.dispute.updated", dispute, exchange, { status: previous }, this.chargeMetadata(dispute));
    if (text === "winning_evidence") return this.close(dispute, "won", exchange);
    if (text === "losing_evidence") return this.close(dispute, "lost", exchange);
    return ok(dispute);
  }

  /** Closes an open dispute as `status` (accepting it closes it lost), with `charge.dispute.closed`. */
  private close(dispute: DisputeObject, status: "won" | "lost", exchange: Exchange): ApiResult {
    this.requireOpen(dispute);
    dispute.status = status;
    this.emit("charge.dispute.closed", dispute, exchange, undefined, this.chargeMetadata(dispute));
    return ok(dispute);
  }

  private requireOpen(dispute: DisputeObject): void {
    if (dispute.status === "won" || dispute.status === "lost") throw invalid(`This dispute is already closed (${dispute.status}).`, { param: "id" });
  }

  /** A dispute's events are matched by its charge's metadata (the hold's), as the intent's are. */
  private chargeMetadata(dispute: DisputeObject) {
    return this.charges.get(dispute.charge)?.metadata ?? {};
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
