/**
 * PaymentMethods: Stripe's test PaymentMethod ids (`pm_card_visa`, ...) and
 * raw test card data, each turned into a PaymentMethod of its own, as on
 * Stripe: given with a PaymentIntent, or created on their own with
 * `POST /v1/payment_methods` (what Stripe.js's `createPaymentMethod` calls
 * with the publishable key) and `GET /v1/payment_methods/:id`.
 */
import { z } from "zod";
import { invalid, missing } from "./errors.ts";
import { newId, unixNow } from "./ids.ts";
import { mergeMetadata, type Metadata, type PaymentMethodObject } from "./objects.ts";
import { ok } from "./exchange.ts";
import { formInteger, metadataParam } from "./params.ts";
import { collectionRoute, retrieveRoute, type Route } from "./routes.ts";
import { cardDetails, TEST_PAYMENT_METHODS } from "./test-cards.ts";

const paymentMethodDataParam = z.strictObject({
  type: z.literal("card"),
  card: z.strictObject({ number: z.string().regex(/^\d{12,19}$/, "Your card number is incorrect."), exp_month: formInteger, exp_year: formInteger, cvc: z.string().optional() }),
  metadata: metadataParam.optional(),
});

/** The parameters that name a payment method: an id, or card data. */
export const paymentMethodFields = {
  payment_method: z.string().min(1).optional(),
  payment_method_data: paymentMethodDataParam.optional(),
};

/** What {@link PaymentMethods.resolve} is given. */
export interface PaymentMethodParams {
  payment_method?: string | undefined;
  payment_method_data?: z.output<typeof paymentMethodDataParam> | undefined;
}

/** Every PaymentMethod made, with the card number behind it. */
export class PaymentMethods {
  private readonly byId = new Map<string, { object: PaymentMethodObject; number: string }>();

  routes(): Route[] {
    return [
      collectionRoute("POST", "payment_methods", paymentMethodDataParam, (params) => {
        const { number, exp_month, exp_year } = params.card;
        return ok(this.create(number, exp_month, exp_year, mergeMetadata({}, params.metadata)));
      }),
      retrieveRoute("payment_methods", "payment_method", (id) => this.get(id)),
    ];
  }

  get(id: string): PaymentMethodObject | undefined {
    return this.byId.get(id)?.object;
  }

  /** The card number behind a PaymentMethod ("" for one we did not make). */
  numberOf(id: string): string {
    return this.byId.get(id)?.number ?? "";
  }

  /** A test PaymentMethod id (or card data) becomes a new PaymentMethod, as on Stripe; an id we issued is reused. */
  resolve(params: PaymentMethodParams): PaymentMethodObject | undefined {
    if (params.payment_method !== undefined && params.payment_method_data !== undefined) {
      throw invalid("You cannot pass both payment_method and payment_method_data.", { param: "payment_method_data" });
    }
    if (params.payment_method_data) {
      const { number, exp_month, exp_year } = params.payment_method_data.card;
      return this.create(number, exp_month, exp_year, mergeMetadata({}, params.payment_method_data.metadata));
    }
    if (params.payment_method === undefined) return undefined;
    const known = this.get(params.payment_method);
    if (known) return known;
    const number = TEST_PAYMENT_METHODS[params.payment_method];
    if (number === undefined) throw missing("PaymentMethod", params.payment_method, "payment_method");
    return this.create(number, 12, new Date().getUTCFullYear() + 3, {});
  }

  private create(number: string, expMonth: number, expYear: number, metadata: Metadata): PaymentMethodObject {
    const { brand, funding } = cardDetails(number);
    const object: PaymentMethodObject = {
      id: newId("pm"),
      object: "payment_method",
      type: "card",
      billing_details: { address: null, email: null, name: null, phone: null },
      card: { brand, country: "US", exp_month: expMonth, exp_year: expYear, funding, last4: number.slice(-4) },
      created: unixNow(),
      customer: null,
      livemode: false,
      metadata,
    };
    this.byId.set(object.id, { object, number });
    return object;
  }
}
