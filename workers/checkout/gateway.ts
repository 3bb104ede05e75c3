/**
 * The payment gateway: the real `stripe` package, pointed at Stripe in
 * production and at our local Stripe-compatible gateway (dev/stripe-gateway.ts)
 * in development and tests.
 */
import Stripe from "stripe";
import { ConfigError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";

/** How long one gateway call may take before we call its outcome unknown. */
export const GATEWAY_TIMEOUT_MS = 8_000;

/** Clients by API base and key (one per isolate for each). */
const clients = new IsolateCache<string, Stripe>(8);

/** A Stripe client for this Worker's configuration (one per isolate). */
export function stripeClient(env: Pick<Env, "STRIPE_SECRET_KEY" | "STRIPE_API_BASE">): Stripe {
  if (!env.STRIPE_SECRET_KEY) throw new ConfigError(["STRIPE_SECRET_KEY"]);
  const cacheKey = `${env.STRIPE_API_BASE ?? ""}|${env.STRIPE_SECRET_KEY}`;
  let client = clients.get(cacheKey);
  if (!client) {
    const base = env.STRIPE_API_BASE ? new URL(env.STRIPE_API_BASE) : undefined;
    client = new Stripe(env.STRIPE_SECRET_KEY, {
      httpClient: Stripe.createFetchHttpClient(),
      timeout: GATEWAY_TIMEOUT_MS,
      // Network errors and 409/5xx are retried by the client with the same idempotency key.
      maxNetworkRetries: 1,
      // No request-latency telemetry to Stripe: its buffer fills under load and logs a warning a request (1,475 in one sellout run).
      telemetry: false,
      ...(base
        ? { host: base.hostname, port: Number(base.port || (base.protocol === "https:" ? 443 : 80)), protocol: base.protocol === "https:" ? "https" : "http" }
        : {}),
    });
    clients.set(cacheKey, client);
  }
  return client;
}

const cryptoProvider = Stripe.createSubtleCryptoProvider();

/** Verifies a webhook's `Stripe-Signature` over the raw body; throws when it does not match. */
export async function verifyWebhook(env: Pick<Env, "STRIPE_SECRET_KEY" | "STRIPE_API_BASE" | "STRIPE_WEBHOOK_SECRET">, rawBody: string, signature: string): Promise<Stripe.Event> {
  if (!env.STRIPE_WEBHOOK_SECRET) throw new ConfigError(["STRIPE_WEBHOOK_SECRET"]);
  return stripeClient(env).webhooks.constructEventAsync(rawBody, signature, env.STRIPE_WEBHOOK_SECRET, undefined, cryptoProvider);
}

/** The gateway's verdict on a charge attempt. */
export type ChargeOutcome =
  | { kind: "succeeded"; paymentIntentId: string }
  | { kind: "declined"; paymentIntentId: string | undefined; code: string; message: string }
  | { kind: "canceled"; paymentIntentId: string }
  /** Confirmed, and waiting on the fan's 3-D Secure challenge (Stripe.js completes it with the client secret): no money has moved yet. */
  | { kind: "requires_action"; paymentIntentId: string; clientSecret: string }
  /** Created and not confirmed: no money has moved, and none will until someone confirms it. */
  | { kind: "unconfirmed"; paymentIntentId: string }
  /**
   * The gateway refused to create the intent for its amount (under its minimum, say): nothing exists that could
   * be charged, and the same request is refused again, so the payment has failed.
   */
  | { kind: "refused"; code: string; message: string }
  /** Nothing to charge (a free order): the gateway is not asked at all. */
  | { kind: "free" }
  /** No answer we can trust (timeout, connection lost, 5xx): reconcile later with the same key. */
  | { kind: "unknown"; error: string };

/** What creating an attempt's PaymentIntent sends: the same on every try, as its idempotency key requires. */
export interface IntentRequest {
  amountCents: number;
  currency: string;
  paymentMethod: string;
  idempotencyKey: string;
  metadata: { hold_id: string; event_id: string; account_id: string; payment_id: string; attempt: string };
}

function outcomeOf(intent: Stripe.PaymentIntent): ChargeOutcome {
  if (intent.status === "succeeded") return { kind: "succeeded", paymentIntentId: intent.id };
  if (intent.status === "canceled") return { kind: "canceled", paymentIntentId: intent.id };
  if (intent.status === "requires_confirmation") return { kind: "unconfirmed", paymentIntentId: intent.id };
  if (intent.status === "requires_action" && intent.client_secret) return { kind: "requires_action", paymentIntentId: intent.id, clientSecret: intent.client_secret };
  if (intent.status === "requires_payment_method" && intent.last_payment_error) {
    return {
      kind: "declined",
      paymentIntentId: intent.id,
      code: intent.last_payment_error.decline_code ?? intent.last_payment_error.code ?? "card_declined",
      message: intent.last_payment_error.message ?? "The card was declined.",
    };
  }
  return { kind: "unknown", error: `payment intent ${intent.id} is ${intent.status}` };
}

function failureOf(error: unknown): ChargeOutcome {
  if (error instanceof Stripe.errors.StripeCardError) {
    const intent = error.payment_intent;
    return { kind: "declined", paymentIntentId: intent?.id, code: error.decline_code ?? error.code ?? "card_declined", message: error.message };
  }
  // Anything else (timeouts, lost connections, 5xx, idempotency lock): we do not know what happened.
  return { kind: "unknown", error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
}

/**
 * Creates an attempt's PaymentIntent without confirming it. Creating moves no
 * money, so this answer may be lost any number of times; a retry with the same
 * idempotency key (hold + attempt) gets the same intent back.
 */
export async function createIntent(stripe: Stripe, request: IntentRequest): Promise<ChargeOutcome> {
  try {
    const intent = await stripe.paymentIntents.create(
      {
        amount: request.amountCents,
        currency: request.currency.toLowerCase(),
        payment_method: request.paymentMethod,
        metadata: request.metadata,
      },
      { idempotencyKey: request.idempotencyKey },
    );
    return outcomeOf(intent);
  } catch (error) {
    return refusalOf(error) ?? failureOf(error);
  }
}

/**
 * Codes with which the gateway refuses to create an intent for its amount:
 * the same request is refused again, so the payment has failed.
 */
const AMOUNT_REFUSALS: ReadonlySet<string> = new Set(["amount_too_small", "amount_too_large"]);

/**
 * A create the gateway answered with a definite refusal of the amount
 * (`amount_too_small`: under its minimum charge). Nothing else counts: a
 * 401/403 (a rotated or mistyped key), a 404 or another invalid request says
 * something is wrong on our side, not that the fan's payment cannot be made,
 * so it stays ambiguous and is tried again, the hold kept.
 */
function refusalOf(error: unknown): ChargeOutcome | undefined {
  if (!(error instanceof Stripe.errors.StripeInvalidRequestError) || error.statusCode !== 400 || !error.code || !AMOUNT_REFUSALS.has(error.code)) return undefined;
  return { kind: "refused", code: error.code, message: error.message };
}

/**
 * Confirms (charges) a created PaymentIntent. Its own idempotency key makes a
 * retry of an ambiguous call safe: the gateway replays the first result
 * instead of charging again.
 */
export async function confirmIntent(stripe: Stripe, paymentIntentId: string, idempotencyKey: string): Promise<ChargeOutcome> {
  try {
    return outcomeOf(await stripe.paymentIntents.confirm(paymentIntentId, {}, { idempotencyKey }));
  } catch (error) {
    // No longer confirmable (canceled meanwhile, say): what it is now is the answer.
    if (error instanceof Stripe.errors.StripeInvalidRequestError && error.code === "payment_intent_unexpected_state") return retrieveOutcome(stripe, paymentIntentId);
    return failureOf(error);
  }
}

/** Asks the gateway what became of a PaymentIntent. */
export async function retrieveOutcome(stripe: Stripe, paymentIntentId: string): Promise<ChargeOutcome> {
  try {
    return outcomeOf(await stripe.paymentIntents.retrieve(paymentIntentId));
  } catch (error) {
    return failureOf(error);
  }
}

/** Refunds a PaymentIntent in full, once (the key is derived from the intent). */
export async function refund(stripe: Stripe, paymentIntentId: string, reason: string): Promise<{ ok: true; refundId: string } | { ok: false; error: string }> {
  try {
    const created = await stripe.refunds.create({ payment_intent: paymentIntentId, metadata: { reason } }, { idempotencyKey: `refund_${paymentIntentId}` });
    return { ok: true, refundId: created.id };
  } catch (error) {
    if (error instanceof Stripe.errors.StripeInvalidRequestError && error.code === "charge_already_refunded") return { ok: true, refundId: "already_refunded" };
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Cancels a PaymentIntent that has not succeeded (default-to-release): once the
 * gateway confirms the cancel, nothing can charge it. An intent that is
 * already final (succeeded, canceled) cannot be canceled; then its state is
 * the answer.
 */
export async function cancelIntent(stripe: Stripe, paymentIntentId: string): Promise<ChargeOutcome> {
  try {
    return outcomeOf(await stripe.paymentIntents.cancel(paymentIntentId));
  } catch (error) {
    if (error instanceof Stripe.errors.StripeInvalidRequestError) return retrieveOutcome(stripe, paymentIntentId);
    return failureOf(error);
  }
}
