/**
 * Refunds (`/v1/refunds`): of a PaymentIntent's charge or of a charge, in
 * full or in part, with a `charge.refunded` event. The dashboard's refunds
 * (`POST /__dashboard/refund`) take the same path without an API request.
 * A charged-back charge is refused; one under an inquiry is refundable.
 */
import { z } from "zod";
import type { Charges } from "./charges.ts";
import type { Disputes } from "./disputes.ts";
import { invalid, missing } from "./errors.ts";
import { ok, type ApiResult, type EmitEvent, type Exchange, type FormObject } from "./exchange.ts";
import { newId, unixNow } from "./ids.ts";
import { mergeMetadata, type ChargeObject, type RefundObject } from "./objects.ts";
import { formInteger, metadataParam } from "./params.ts";
import type { PaymentIntents } from "./payment-intents.ts";
import { collectionRoute, retrieveRoute, type Route } from "./routes.ts";

/** What a refund is asked with, through the API or the dashboard. */
export type RefundRequest = z.output<typeof CreateParams>;

const CreateParams = z.strictObject({
  payment_intent: z.string().optional(),
  charge: z.string().optional(),
  amount: formInteger.optional(),
  reason: z.enum(["duplicate", "fraudulent", "requested_by_customer"]).optional(),
  metadata: metadataParam.optional(),
});

/** Every refund. */
export class Refunds {
  private readonly byId = new Map<string, RefundObject>();

  constructor(
    private readonly paymentIntents: PaymentIntents,
    private readonly charges: Charges,
    private readonly disputes: Disputes,
    private readonly emit: EmitEvent,
  ) {}

  routes(): Route[] {
    const intentOf = (_id: string | undefined, params: FormObject) => (typeof params.payment_intent === "string" ? params.payment_intent : undefined);
    return [collectionRoute("POST", "refunds", CreateParams, (params, exchange) => this.create(params, exchange), intentOf), retrieveRoute("refunds", "refund", (id) => this.byId.get(id))];
  }

  /** Refunds as `POST /v1/refunds` does (the dashboard's refunds too); throws InvalidRequest for a refund Stripe would refuse. */
  create(params: RefundRequest, exchange: Exchange): ApiResult {
    if ((params.payment_intent === undefined) === (params.charge === undefined)) {
      throw invalid("You must pass either a payment_intent or a charge, but not both.", { code: "parameter_missing", param: "payment_intent" });
    }
    const charge = this.refundableCharge(params);
    if (!this.disputes.isChargeRefundable(charge)) throw invalid(`Charge ${charge.id} has been charged back; it cannot be refunded.`, { code: "charge_disputed" });
    if (charge.amount_refunded >= charge.amount_captured) {
      throw invalid(`Charge ${charge.id} has already been refunded.`, { code: "charge_already_refunded" });
    }
    const remaining = charge.amount_captured - charge.amount_refunded;
    const amount = params.amount ?? remaining;
    if (amount < 1) throw invalid("Refund amount must be at least 1.", { code: "parameter_invalid_integer", param: "amount" });
    if (amount > remaining) {
      throw invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`, { code: "amount_too_large", param: "amount" });
    }
    const previous = { amount_refunded: charge.amount_refunded, refunded: charge.refunded };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount_captured;
    const refund: RefundObject = {
      id: newId("re"),
      object: "refund",
      amount,
      balance_transaction: null,
      charge: charge.id,
      created: unixNow(),
      currency: charge.currency,
      metadata: mergeMetadata({}, params.metadata),
      payment_intent: charge.payment_intent,
      reason: params.reason ?? null,
      status: "succeeded",
    };
    this.byId.set(refund.id, refund);
    charge.refunds.data.unshift(refund);
    charge.refunds.total_count += 1;
    this.emit("charge.refunded", charge, exchange, previous);
    return ok(refund);
  }

  private refundableCharge(params: RefundRequest): ChargeObject {
    if (params.charge !== undefined) {
      const charge = this.charges.get(params.charge);
      if (!charge) throw missing("charge", params.charge, "charge");
      if (charge.status !== "succeeded" || !charge.captured) throw invalid(`Charge ${charge.id} has no captured amount to refund.`, { param: "charge" });
      return charge;
    }
    const id = params.payment_intent ?? "";
    const intent = this.paymentIntents.get(id);
    if (!intent) throw missing("payment_intent", id, "payment_intent");
    const charge = intent.latest_charge ? this.charges.get(intent.latest_charge) : undefined;
    if (intent.status !== "succeeded" || !charge) {
      throw invalid(`This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, { param: "payment_intent" });
    }
    return charge;
  }
}
