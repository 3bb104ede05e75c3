/**
 * Stripe's objects as its API shows them (the fields we fill), and the events
 * they cause.
 */

export type PaymentIntentStatus = "requires_payment_method" | "requires_confirmation" | "requires_action" | "processing" | "requires_capture" | "canceled" | "succeeded";
export type CaptureMethod = "automatic" | "automatic_async" | "manual";
export type Metadata = Record<string, string>;

/** A PaymentIntent as Stripe's API returns it. */
export interface PaymentIntentObject {
  id: string;
  object: "payment_intent";
  amount: number;
  amount_capturable: number;
  amount_received: number;
  automatic_payment_methods: { enabled: boolean; allow_redirects?: string } | null;
  canceled_at: number | null;
  cancellation_reason: string | null;
  capture_method: CaptureMethod;
  client_secret: string;
  confirmation_method: "automatic";
  created: number;
  currency: string;
  customer: null;
  description: string | null;
  last_payment_error: CardError | AuthenticationError | null;
  latest_charge: string | null;
  livemode: false;
  metadata: Metadata;
  next_action: NextAction | null;
  payment_method: string | null;
  payment_method_types: string[];
  receipt_email: string | null;
  status: PaymentIntentStatus;
}

/** What the customer must do before a `requires_action` intent can go on: Stripe.js runs the 3-D Secure challenge at `stripe_js`. */
export interface NextAction {
  type: "use_stripe_sdk";
  use_stripe_sdk: { type: "three_d_secure_redirect"; stripe_js: string; source: string };
}

/** The error a failed 3-D Secure challenge leaves on its intent. */
export interface AuthenticationError {
  type: "invalid_request_error";
  code: "payment_intent_authentication_failure";
  message: string;
  doc_url: string;
  payment_method: PaymentMethodObject;
}

export interface PaymentMethodObject {
  id: string;
  object: "payment_method";
  type: "card";
  billing_details: { address: null; email: null; name: null; phone: null };
  card: { brand: string; country: string; exp_month: number; exp_year: number; funding: string; last4: string };
  created: number;
  customer: null;
  livemode: false;
  metadata: Metadata;
}

export interface CardError {
  type: "card_error";
  code: string;
  decline_code: string;
  message: string;
  charge: string;
  doc_url: string;
  payment_method: PaymentMethodObject;
}

export interface ChargeObject {
  id: string;
  object: "charge";
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  balance_transaction: null;
  captured: boolean;
  created: number;
  currency: string;
  description: string | null;
  failure_code: string | null;
  failure_message: string | null;
  livemode: false;
  metadata: Metadata;
  outcome: { network_status: string; reason: string | null; seller_message: string; type: string };
  paid: boolean;
  payment_intent: string;
  payment_method: string;
  refunded: boolean;
  /** The charge's refunds, newest first (the list Stripe shows on a charge). */
  refunds: RefundList;
  /** Whether the cardholder has disputed the charge. */
  disputed: boolean;
  status: "succeeded" | "failed";
}

/** A charge's refunds as Stripe lists them. */
export interface RefundList {
  object: "list";
  data: RefundObject[];
  has_more: false;
  total_count: number;
  url: string;
}

/** Stripe's dispute reasons. */
export const DISPUTE_REASONS = [
  "bank_cannot_process",
  "check_returned",
  "credit_not_processed",
  "customer_initiated",
  "debit_not_authorized",
  "duplicate",
  "fraudulent",
  "general",
  "incorrect_account_details",
  "insufficient_funds",
  "product_not_received",
  "product_unacceptable",
  "subscription_canceled",
  "unrecognized",
] as const;
export type DisputeReason = (typeof DISPUTE_REASONS)[number];

/**
 * A dispute as Stripe's API returns it. A chargeback opens as
 * `needs_response`, its amount withdrawn at once (one balance transaction);
 * an inquiry (a question from the bank, no money withdrawn, the charge still
 * refundable) opens as `warning_needs_response` and either closes as
 * `warning_closed` or escalates to a chargeback under the same id.
 */
export interface DisputeObject {
  id: string;
  object: "dispute";
  amount: number;
  /** The withdrawal of a chargeback; none for an inquiry. */
  balance_transactions: BalanceTransactionObject[];
  charge: string;
  created: number;
  currency: string;
  evidence_details: { due_by: number; has_evidence: false; past_due: false; submission_count: 0 };
  /** True for an inquiry: the merchant may still refund the charge. */
  is_charge_refundable: boolean;
  livemode: false;
  metadata: Metadata;
  payment_intent: string;
  reason: DisputeReason;
  /** An inquiry: warning_needs_response, warning_under_review, warning_closed. A chargeback: needs_response, then under_review once evidence is submitted; closed: won or lost. */
  status: "warning_needs_response" | "warning_under_review" | "warning_closed" | "needs_response" | "under_review" | "won" | "lost";
}

/** A dispute's movement of funds, as Stripe lists it on the dispute (the fields our stand-in fills). */
export interface BalanceTransactionObject {
  id: string;
  object: "balance_transaction";
  amount: number;
  available_on: number;
  created: number;
  currency: string;
  description: string;
  fee: number;
  fee_details: { amount: number; application: null; currency: string; description: string; type: "stripe_fee" }[];
  net: number;
  reporting_category: "dispute";
  source: string;
  status: "pending";
  type: "adjustment";
}

export interface RefundObject {
  id: string;
  object: "refund";
  amount: number;
  balance_transaction: null;
  charge: string;
  created: number;
  currency: string;
  metadata: Metadata;
  payment_intent: string;
  reason: string | null;
  status: "succeeded";
}

export type EventType = "payment_intent.succeeded" | "payment_intent.payment_failed" | "payment_intent.canceled" | "payment_intent.requires_action" | "charge.refunded" | "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.funds_withdrawn" | "charge.dispute.closed";

export interface StripeEvent {
  id: string;
  object: "event";
  api_version: string;
  created: number;
  data: { object: PaymentIntentObject | ChargeObject | DisputeObject; previous_attributes?: Record<string, unknown> };
  livemode: false;
  pending_webhooks: number;
  request: { id: string; idempotency_key: string | null };
  type: EventType;
}

/** `metadata=""` clears it; `metadata[key]=""` removes one key; other keys are set. */
export function mergeMetadata(current: Metadata, update: Metadata | "" | undefined): Metadata {
  if (update === undefined) return current;
  if (update === "") return {};
  const merged = { ...current };
  for (const [key, value] of Object.entries(update)) {
    if (value === "") delete merged[key];
    else merged[key] = value;
  }
  return merged;
}
