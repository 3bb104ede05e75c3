/**
 * Charges: one per attempt to charge a PaymentIntent's payment method,
 * succeeded or failed (`GET /v1/charges/:id`). They are made by confirming a
 * PaymentIntent; refunds and cancels change them.
 */
import type { Exchange } from "./exchange.ts";
import { newId, unixNow } from "./ids.ts";
import type { ChargeObject, PaymentIntentObject, PaymentMethodObject } from "./objects.ts";
import type { ChargeAttempt } from "./records.ts";
import { retrieveRoute, type Route } from "./routes.ts";
import { DECLINES, type DeclineCode } from "./test-cards.ts";

/** Every charge, with the request that attempted it. */
export class Charges {
  private readonly byId = new Map<string, ChargeObject>();
  private readonly origins = new Map<string, { exchange: Exchange; declineCode: DeclineCode | null }>();

  get(id: string): ChargeObject | undefined {
    return this.byId.get(id);
  }

  /** Charges `paymentMethod` for `intent` (declined with `declineCode` when given): a captured charge, an authorization (manual capture) or a failed one. */
  attempt(intent: PaymentIntentObject, paymentMethod: PaymentMethodObject, declineCode: DeclineCode | undefined, exchange: Exchange): ChargeObject {
    const manual = intent.capture_method === "manual";
    const decline = declineCode ? DECLINES[declineCode] : undefined;
    const charge: ChargeObject = {
      id: newId("ch"),
      object: "charge",
      amount: intent.amount,
      amount_captured: decline || manual ? 0 : intent.amount,
      amount_refunded: 0,
      balance_transaction: null,
      captured: !decline && !manual,
      created: unixNow(),
      currency: intent.currency,
      description: intent.description,
      failure_code: decline?.code ?? null,
      failure_message: decline?.message ?? null,
      livemode: false,
      metadata: { ...intent.metadata },
      outcome: decline
        ? { network_status: "declined_by_network", reason: declineCode ?? null, seller_message: "The bank did not return any further details with this decline.", type: "issuer_declined" }
        : { network_status: "approved_by_network", reason: null, seller_message: "Payment complete.", type: "authorized" },
      paid: !decline,
      payment_intent: intent.id,
      payment_method: paymentMethod.id,
      refunded: false,
      refunds: { object: "list", data: [], has_more: false, total_count: 0, url: "" },
      disputed: false,
      status: decline ? "failed" : "succeeded",
    };
    charge.refunds.url = `/v1/charges/${charge.id}/refunds`;
    this.byId.set(charge.id, charge);
    this.origins.set(charge.id, { exchange, declineCode: declineCode ?? null });
    return charge;
  }

  /** Every charge attempt, oldest first, for inspection. */
  attempts(): ChargeAttempt[] {
    return [...this.byId.values()].map((charge) => {
      const origin = this.origins.get(charge.id);
      return {
        id: charge.id,
        paymentIntent: charge.payment_intent,
        amount: charge.amount,
        currency: charge.currency,
        status: charge.status,
        captured: charge.captured,
        amountRefunded: charge.amount_refunded,
        declineCode: origin?.declineCode ?? null,
        idempotencyKey: origin?.exchange.idempotencyKey ?? null,
        requestId: origin?.exchange.requestId ?? "",
        metadata: { ...charge.metadata },
        created: charge.created,
      };
    });
  }

  routes(): Route[] {
    return [retrieveRoute("charges", "charge", (id) => this.byId.get(id))];
  }
}
