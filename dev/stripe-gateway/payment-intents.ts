/**
 * PaymentIntents (`/v1/payment_intents`): create, update, confirm (which
 * charges the payment method), cancel, capture, retrieve and list, with the
 * status transitions and `payment_intent.*` events Stripe has.
 */
import { z } from "zod";
import type { Charges } from "./charges.ts";
import { invalid, missing, unexpectedState } from "./errors.ts";
import { ok, type ApiResult, type EmitEvent, type Exchange } from "./exchange.ts";
import { requestSubject, type FaultBook } from "./faults.ts";
import { newId, randomToken, unixNow } from "./ids.ts";
import { CHALLENGE_PATH } from "./stripe-js.ts";
import { mergeMetadata, type CardError, type ChargeObject, type PaymentIntentObject, type PaymentMethodObject } from "./objects.ts";
import { currencyParam, formBoolean, formInteger, metadataParam, parseParams } from "./params.ts";
import { paymentMethodFields, type PaymentMethods } from "./payment-methods.ts";
import { collectionRoute, intentFromPath, type Route } from "./routes.ts";
import { DECLINES, declineOf, disputeOf, needsChallenge, type DeclineCode, type TestDispute } from "./test-cards.ts";

/** Called once a charge is captured on a dispute test card, after the intent's `payment_intent.succeeded`: the bank opens its dispute. */
export type OnDisputedCapture = (charge: ChargeObject, kind: TestDispute, exchange: Exchange) => void;

const MIN_AMOUNT = 50;
const MAX_AMOUNT = 99_999_999;

const captureMethodParam = z.enum(["automatic", "automatic_async", "manual"]);
const CreateParams = z.strictObject({
  amount: formInteger,
  currency: currencyParam,
  metadata: metadataParam.optional(),
  ...paymentMethodFields,
  payment_method_types: z.record(z.string(), z.literal("card")).optional(),
  automatic_payment_methods: z.strictObject({ enabled: formBoolean, allow_redirects: z.enum(["always", "never"]).optional() }).optional(),
  confirm: formBoolean.optional(),
  capture_method: captureMethodParam.optional(),
  description: z.string().optional(),
  receipt_email: z.string().optional(),
  return_url: z.string().optional(),
});
const UpdateParams = z.strictObject({
  amount: formInteger.optional(),
  currency: currencyParam.optional(),
  metadata: metadataParam.optional(),
  payment_method: z.string().min(1).optional(),
  capture_method: captureMethodParam.optional(),
  description: z.string().optional(),
  receipt_email: z.string().optional(),
});
const RetrieveParams = z.strictObject({ client_secret: z.string().optional() });
const ConfirmParams = z.strictObject({ ...paymentMethodFields, capture_method: captureMethodParam.optional(), receipt_email: z.string().optional(), return_url: z.string().optional() });
const CancelParams = z.strictObject({ cancellation_reason: z.enum(["duplicate", "fraudulent", "requested_by_customer", "abandoned"]).optional() });
const CaptureParams = z.strictObject({ amount_to_capture: formInteger.optional(), metadata: metadataParam.optional() });
const ListParams = z.strictObject({ limit: formInteger.optional(), starting_after: z.string().optional(), ending_before: z.string().optional() });

const MISSING_PAYMENT_METHOD =
  "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.";

/** Every PaymentIntent, in creation order. */
export class PaymentIntents {
  private readonly byId = new Map<string, PaymentIntentObject>();

  constructor(
    private readonly paymentMethods: PaymentMethods,
    private readonly charges: Charges,
    private readonly faults: FaultBook,
    private readonly emit: EmitEvent,
    private readonly onDisputedCapture: OnDisputedCapture,
  ) {}

  get(id: string): PaymentIntentObject | undefined {
    return this.byId.get(id);
  }

  /** Every PaymentIntent as the API shows it, newest first, for inspection. */
  list(): PaymentIntentObject[] {
    return [...this.byId.values()].reverse().map((intent) => structuredClone(intent));
  }

  routes(): Route[] {
    return [
      collectionRoute("POST", "payment_intents", CreateParams, (params, exchange) => this.create(params, exchange)),
      collectionRoute("GET", "payment_intents", ListParams, (params) => this.listPage(params)),
      this.intentRoute("POST", "", UpdateParams, (intent, params) => this.update(intent, params)),
      this.intentRoute("GET", "", RetrieveParams, (intent) => ok(intent)),
      this.intentRoute("POST", "/confirm", ConfirmParams, (intent, params, exchange) => this.confirmIntent(intent, params, exchange)),
      this.intentRoute("POST", "/cancel", CancelParams, (intent, params, exchange) => this.cancel(intent, params, exchange)),
      this.intentRoute("POST", "/capture", CaptureParams, (intent, params, exchange) => this.capture(intent, params, exchange)),
    ];
  }

  /** `/v1/payment_intents/:id<action>`: `params` checked against `schema`, then the intent looked up (a 404 when missing). */
  private intentRoute<T>(method: Route["method"], action: string, schema: z.ZodType<T>, act: (intent: PaymentIntentObject, params: T, exchange: Exchange) => ApiResult): Route {
    return {
      method,
      pattern: new RegExp(`^/v1/payment_intents/([^/]+)${action}$`),
      intentOf: intentFromPath,
      handle: (params, exchange, id) => {
        const parsed = parseParams(schema, params);
        return act(this.require(id), parsed, exchange);
      },
    };
  }

  /** The PaymentIntent a request names, or a 404. */
  private require(id: string): PaymentIntentObject {
    const intent = this.byId.get(id);
    if (!intent) throw missing("payment_intent", id, "intent");
    return intent;
  }

  private create(params: z.output<typeof CreateParams>, exchange: Exchange): ApiResult {
    checkAmount(params.amount, "amount");
    const paymentMethod = this.paymentMethods.resolve(params);
    if (params.confirm && !paymentMethod) {
      throw invalid("You cannot confirm this PaymentIntent because it's missing a payment method. Pass payment_method or payment_method_data with confirm=true.", {
        code: "parameter_missing",
        param: "payment_method",
      });
    }
    const id = newId("pi");
    const intent: PaymentIntentObject = {
      id,
      object: "payment_intent",
      amount: params.amount,
      amount_capturable: 0,
      amount_received: 0,
      automatic_payment_methods: params.automatic_payment_methods ?? (params.payment_method_types ? null : { enabled: true, allow_redirects: "always" }),
      canceled_at: null,
      cancellation_reason: null,
      capture_method: params.capture_method ?? "automatic_async",
      client_secret: `${id}_secret_${randomToken()}`,
      confirmation_method: "automatic",
      created: unixNow(),
      currency: params.currency,
      customer: null,
      description: params.description ?? null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata: mergeMetadata({}, params.metadata),
      next_action: null,
      payment_method: paymentMethod?.id ?? null,
      payment_method_types: ["card"],
      receipt_email: params.receipt_email ?? null,
      status: paymentMethod ? "requires_confirmation" : "requires_payment_method",
    };
    this.byId.set(id, intent);
    if (params.confirm) return this.confirm(intent, paymentMethod, exchange);
    return ok(intent);
  }

  private update(intent: PaymentIntentObject, params: z.output<typeof UpdateParams>): ApiResult {
    const changesPayment = params.amount !== undefined || params.currency !== undefined || params.payment_method !== undefined || params.capture_method !== undefined;
    if (changesPayment && !["requires_payment_method", "requires_confirmation", "requires_action"].includes(intent.status)) {
      throw unexpectedState(
        `This PaymentIntent could not be updated because it has a status of ${intent.status}. You may only update the amount, currency, payment method or capture method of a PaymentIntent with one of the following statuses: requires_payment_method, requires_confirmation, requires_action.`,
        intent,
      );
    }
    if (params.amount !== undefined) checkAmount(params.amount, "amount");
    const paymentMethod = params.payment_method === undefined ? undefined : this.paymentMethods.resolve({ payment_method: params.payment_method });
    if (params.amount !== undefined) intent.amount = params.amount;
    if (params.currency !== undefined) intent.currency = params.currency;
    if (params.capture_method !== undefined) intent.capture_method = params.capture_method;
    if (params.description !== undefined) intent.description = params.description || null;
    if (params.receipt_email !== undefined) intent.receipt_email = params.receipt_email || null;
    intent.metadata = mergeMetadata(intent.metadata, params.metadata);
    if (paymentMethod) {
      intent.payment_method = paymentMethod.id;
      intent.status = "requires_confirmation";
    }
    return ok(intent);
  }

  private confirmIntent(intent: PaymentIntentObject, params: z.output<typeof ConfirmParams>, exchange: Exchange): ApiResult {
    if (intent.status !== "requires_payment_method" && intent.status !== "requires_confirmation") {
      throw unexpectedState(
        `You cannot confirm this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_action, requires_payment_method.`,
        intent,
      );
    }
    const given = this.paymentMethods.resolve(params);
    const paymentMethod = given ?? (intent.payment_method ? this.paymentMethods.get(intent.payment_method) : undefined);
    if (!paymentMethod) throw unexpectedState(MISSING_PAYMENT_METHOD, intent);
    if (params.capture_method !== undefined) intent.capture_method = params.capture_method;
    if (params.receipt_email !== undefined) intent.receipt_email = params.receipt_email || null;
    return this.confirm(intent, paymentMethod, exchange);
  }

  private cancel(intent: PaymentIntentObject, params: z.output<typeof CancelParams>, exchange: Exchange): ApiResult {
    if (intent.status === "succeeded" || intent.status === "canceled") {
      throw unexpectedState(
        `You cannot cancel this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.`,
        intent,
      );
    }
    if (intent.status === "requires_capture" && intent.latest_charge) {
      // The uncaptured authorization is released.
      const charge = this.charges.get(intent.latest_charge);
      if (charge) Object.assign(charge, { amount_refunded: charge.amount, refunded: true });
    }
    Object.assign(intent, { status: "canceled", canceled_at: unixNow(), cancellation_reason: params.cancellation_reason ?? null, amount_capturable: 0 });
    this.emit("payment_intent.canceled", intent, exchange);
    return ok(intent);
  }

  private capture(intent: PaymentIntentObject, params: z.output<typeof CaptureParams>, exchange: Exchange): ApiResult {
    const charge = intent.latest_charge ? this.charges.get(intent.latest_charge) : undefined;
    if (intent.status !== "requires_capture" || !charge) {
      throw unexpectedState(
        `This PaymentIntent could not be captured because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`,
        intent,
      );
    }
    const amount = params.amount_to_capture ?? intent.amount_capturable;
    if (amount < 1 || amount > intent.amount_capturable) {
      throw invalid(`The amount_to_capture (${amount}) must be between 1 and the amount capturable (${intent.amount_capturable}).`, { param: "amount_to_capture" });
    }
    Object.assign(charge, { captured: true, amount_captured: amount });
    intent.metadata = mergeMetadata(intent.metadata, params.metadata);
    Object.assign(intent, { status: "succeeded", amount_received: amount, amount_capturable: 0 });
    this.emit("payment_intent.succeeded", intent, exchange);
    this.disputeIfTestCard(charge, exchange);
    return ok(intent);
  }

  private listPage(params: z.output<typeof ListParams>): ApiResult {
    const limit = params.limit ?? 10;
    if (limit < 1 || limit > 100) throw invalid("Invalid limit: must be between 1 and 100", { param: "limit" });
    let newestFirst = [...this.byId.values()].reverse();
    if (params.starting_after !== undefined) newestFirst = newestFirst.slice(cursorIndex(newestFirst, params.starting_after, "starting_after") + 1);
    if (params.ending_before !== undefined) {
      const newer = newestFirst.slice(0, cursorIndex(newestFirst, params.ending_before, "ending_before"));
      return ok({ object: "list", data: newer.slice(-limit), has_more: newer.length > limit, url: "/v1/payment_intents" });
    }
    return ok({ object: "list", data: newestFirst.slice(0, limit), has_more: newestFirst.length > limit, url: "/v1/payment_intents" });
  }

  /**
   * The end of a 3-D Secure challenge (the challenge page's buttons): passed,
   * the card is charged as on any confirm; failed, the intent waits for
   * another payment method with `payment_intent_authentication_failure`, as
   * on Stripe. Only an intent waiting on its challenge can end one.
   */
  completeChallenge(id: string, passed: boolean, exchange: Exchange): ApiResult {
    const intent = this.require(id);
    const paymentMethod = intent.payment_method ? this.paymentMethods.get(intent.payment_method) : undefined;
    if (intent.status !== "requires_action" || !paymentMethod) {
      throw unexpectedState(`This PaymentIntent has a status of ${intent.status}; only one with status requires_action has a challenge to complete.`, intent);
    }
    intent.next_action = null;
    if (passed) return this.confirm(intent, paymentMethod, exchange, true);
    Object.assign(intent, {
      status: "requires_payment_method",
      payment_method: null,
      last_payment_error: {
        type: "invalid_request_error",
        code: "payment_intent_authentication_failure",
        message: "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
        doc_url: "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        payment_method: structuredClone(paymentMethod),
      },
    });
    this.emit("payment_intent.payment_failed", intent, exchange);
    return ok(intent);
  }

  /** One charge attempt; a decline leaves the intent waiting for another payment method, as on Stripe. A card that needs 3-D Secure waits on its challenge first. */
  private confirm(intent: PaymentIntentObject, paymentMethod: PaymentMethodObject | undefined, exchange: Exchange, authenticated = false): ApiResult {
    if (!paymentMethod) throw unexpectedState(MISSING_PAYMENT_METHOD, intent);
    if (!authenticated && needsChallenge(this.paymentMethods.numberOf(paymentMethod.id))) {
      const source = newId("payatt");
      Object.assign(intent, {
        status: "requires_action",
        payment_method: paymentMethod.id,
        last_payment_error: null,
        next_action: { type: "use_stripe_sdk", use_stripe_sdk: { type: "three_d_secure_redirect", stripe_js: `${exchange.origin ?? ""}${CHALLENGE_PATH}/${intent.id}?source=${source}`, source } },
      });
      this.emit("payment_intent.requires_action", intent, exchange);
      return ok(intent);
    }
    const fault = this.faults.take(["decline"], { ...requestSubject(exchange), paymentIntent: intent.id, metadata: intent.metadata });
    const declineCode: DeclineCode | undefined = fault ? (fault.declineCode ?? "generic_decline") : declineOf(this.paymentMethods.numberOf(paymentMethod.id));
    const charge = this.charges.attempt(intent, paymentMethod, declineCode, exchange);
    intent.latest_charge = charge.id;

    if (declineCode) {
      const decline = DECLINES[declineCode];
      const error: CardError = {
        type: "card_error",
        code: decline.code,
        decline_code: declineCode,
        message: decline.message,
        charge: charge.id,
        doc_url: `https://stripe.com/docs/error-codes/${decline.code.replaceAll("_", "-")}`,
        payment_method: structuredClone(paymentMethod),
      };
      Object.assign(intent, { status: "requires_payment_method", payment_method: null, last_payment_error: error });
      this.emit("payment_intent.payment_failed", intent, exchange);
      return { status: 402, body: { error: { ...error, payment_intent: intent, request_log_url: `https://dashboard.stripe.com/test/logs/${exchange.requestId}` } }, saved: true };
    }
    Object.assign(intent, { payment_method: paymentMethod.id, last_payment_error: null });
    if (intent.capture_method === "manual") {
      Object.assign(intent, { status: "requires_capture", amount_capturable: intent.amount });
    } else {
      Object.assign(intent, { status: "succeeded", amount_received: intent.amount });
      this.emit("payment_intent.succeeded", intent, exchange);
      this.disputeIfTestCard(charge, exchange);
    }
    return ok(intent);
  }

  /** A captured charge on one of Stripe's dispute test cards is disputed at once, as in test mode. */
  private disputeIfTestCard(charge: ChargeObject, exchange: Exchange): void {
    const kind = disputeOf(this.paymentMethods.numberOf(charge.payment_method));
    if (kind) this.onDisputedCapture(charge, kind, exchange);
  }
}

function cursorIndex(intents: PaymentIntentObject[], id: string, param: string): number {
  const index = intents.findIndex((intent) => intent.id === id);
  if (index === -1) throw missing("payment_intent", id, param);
  return index;
}

function checkAmount(amount: number, param: string): void {
  if (amount < MIN_AMOUNT) throw invalid(`Amount must be at least ${MIN_AMOUNT} in the currency's smallest unit.`, { code: "amount_too_small", param });
  if (amount > MAX_AMOUNT) throw invalid(`Amount must be no more than ${MAX_AMOUNT}.`, { code: "amount_too_large", param });
}
