/**
 * The local stand-in for Stripe's API, for the local stack and the tests, where
 * Stripe cannot be reached. It speaks Stripe's HTTP API for the calls we make
 * (PaymentIntents, refunds, charges): form-encoded requests, Stripe-shaped JSON
 * objects and errors, Stripe's status codes, Stripe's documented test payment
 * methods and card numbers, and `Idempotency-Key` semantics as Stripe documents
 * them for API v1. Events are POSTed to `webhookUrl`, signed exactly as Stripe
 * signs them, so `stripe.webhooks.constructEvent(Async)` accepts them.
 *
 * Tests (also the Worker's, inside workerd, over HTTP) can inject faults
 * (`POST /__faults`) and inspect what happened (`GET /__charges`,
 * `/__payment_intents`, `/__webhooks`, `/__requests`). The control routes
 * need no API key: the gateway listens on loopback only.
 */
import { createHmac, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { text } from "node:stream/consumers";
import Stripe from "stripe";
import { z } from "zod";

/** How to start the gateway. */
export interface StripeGatewayOptions {
  /** 0 picks an ephemeral port. */
  port: number;
  /** Where events are POSTed. Without it they are only recorded; `GET /__webhooks` has each payload and a signature. */
  webhookUrl?: string;
  /** The endpoint's signing secret (`whsec_...`), as `constructEvent` is given it. */
  webhookSecret: string;
  /** The one secret key accepted. Default: any test-mode key (`sk_test_...`, `rk_test_...`). */
  apiKey?: string;
  /** The waits before each retry of a failed delivery; its length bounds the retries. Default 250 ms, 1 s, 4 s (Stripe's own span days). */
  webhookRetryDelaysMs?: number[];
}

/** A running gateway: where the `stripe` client should point, its fault control and inspection. */
export interface StripeGateway {
  url: string;
  port: number;
  /** Applies `spec` to the next `count` matching requests, charge attempts or events (see {@link FaultSpec}). */
  addFault(spec: FaultSpec): Fault;
  /** Removes one fault, or all of them; returns how many were removed. */
  clearFaults(id?: string): number;
  faults(): Fault[];
  /** Every charge attempt, succeeded or failed, oldest first. */
  charges(filter?: RecordFilter): ChargeAttempt[];
  /** Every PaymentIntent as the API shows it, newest first. */
  paymentIntents(filter?: RecordFilter): PaymentIntentObject[];
  /** Every webhook delivery (a duplicated event has two), oldest first. */
  webhooks(filter?: RecordFilter): WebhookDelivery[];
  /** Every API request, oldest first, with its outcome. */
  requests(filter?: RecordFilter): RequestRecord[];
  /** Sends every held event now (delayed ones in order, a reorder group reversed), then {@link settleWebhooks}. */
  flushWebhooks(): Promise<number>;
  /** Resolves once no delivery is in flight or waiting on a retry or a `delayMs` timer. Held-until-flush events stay held. */
  settleWebhooks(): Promise<void>;
  close(): Promise<void>;
}

export const FAULT_MODES = [
  "decline",
  "hang",
  "error500",
  "lose_response",
  "duplicate_webhook",
  "delay_webhook",
  "reorder_webhooks",
  "drop_webhook",
] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** Faults applied to an API request as it arrives. */
const REQUEST_MODES = ["hang", "error500", "lose_response"] as const satisfies readonly FaultMode[];
/** Faults applied to an event as it is created. */
const WEBHOOK_MODES = ["duplicate_webhook", "delay_webhook", "reorder_webhooks", "drop_webhook"] as const satisfies readonly FaultMode[];

const DECLINE_CODES = [
  "generic_decline",
  "insufficient_funds",
  "lost_card",
  "stolen_card",
  "expired_card",
  "incorrect_cvc",
  "processing_error",
  "test_mode_live_card",
] as const;
type DeclineCode = (typeof DECLINE_CODES)[number];

/** For each decline code we honour, the error code and message Stripe returns with it. */
const DECLINES: Record<DeclineCode, { code: string; message: string }> = {
  generic_decline: { code: "card_declined", message: "Your card was declined." },
  insufficient_funds: { code: "card_declined", message: "Your card has insufficient funds." },
  lost_card: { code: "card_declined", message: "Your card was declined." },
  stolen_card: { code: "card_declined", message: "Your card was declined." },
  expired_card: { code: "expired_card", message: "Your card has expired." },
  incorrect_cvc: { code: "incorrect_cvc", message: "Your card's security code is incorrect." },
  processing_error: { code: "processing_error", message: "An error occurred while processing your card. Try again in a little bit." },
  test_mode_live_card: {
    code: "card_declined",
    message: "Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
  },
};

const FaultSpecSchema = z
  .strictObject({
    mode: z.enum(FAULT_MODES),
    /** How many matching requests, charge attempts or events it applies to. */
    count: z.number().int().min(1).max(1_000).default(1),
    match: z
      .strictObject({
        method: z.enum(["GET", "POST"]).optional(),
        /** The request path, or the path of the request that caused the event; `*` stands for one segment. */
        path: z.string().startsWith("/").optional(),
        /** The request's key, or the key of the request that caused the event. */
        idempotencyKey: z.string().optional(),
        paymentIntent: z.string().optional(),
        /** Every pair must be in the PaymentIntent's metadata (or the request's `metadata[...]`). */
        metadata: z.record(z.string(), z.string()).optional(),
        /** Events only. */
        eventType: z.string().optional(),
      })
      .default({}),
    /** hang: how long to hold the request at most (default 60 s). lose_response: hold this long before dropping. delay_webhook: send after this long instead of at flush. */
    delayMs: z.number().int().min(0).max(600_000).optional(),
    /** decline only: the decline (default generic_decline). */
    declineCode: z.enum(DECLINE_CODES).optional(),
  })
  .refine((spec) => spec.declineCode === undefined || spec.mode === "decline", { message: "declineCode goes with mode decline", path: ["declineCode"] })
  .refine((spec) => spec.mode !== "reorder_webhooks" || spec.count >= 2, { message: "reorder_webhooks needs count >= 2", path: ["count"] });

/**
 * A fault to inject. Request faults apply to the next `count` matching API
 * requests (retries included): `error500` answers a Stripe 500 `api_error`
 * without performing the action (it failed before the endpoint began, so
 * nothing is saved for the idempotency key); `hang` takes the idempotency
 * lock, then holds the request without performing it until the client gives
 * up (or `delayMs`), then closes the connection unanswered; `lose_response`
 * performs the action (state changes, events sent, result saved for the key)
 * and then closes the connection unanswered. `decline` applies to the next
 * `count` matching charge attempts, whatever the card. Webhook faults apply
 * to the next `count` matching events: `drop_webhook` never sends it,
 * `duplicate_webhook` sends it twice, `delay_webhook` holds it until flush (or
 * `delayMs`), `reorder_webhooks` holds `count` events and sends them in reverse.
 */
export type FaultSpec = z.input<typeof FaultSpecSchema>;
/** An injected fault; `remaining` counts down as it applies. */
export type Fault = z.output<typeof FaultSpecSchema> & { id: string; remaining: number };

/** Narrows an inspection list. Every given field must match; `metadata` pairs must all be present. */
export interface RecordFilter {
  paymentIntent?: string;
  idempotencyKey?: string;
  /** Webhooks: the event type. */
  type?: string;
  metadata?: Record<string, string>;
}

/** One charge attempt. `idempotencyKey` is the key of the request that attempted it. */
export interface ChargeAttempt {
  id: string;
  paymentIntent: string;
  amount: number;
  currency: string;
  status: "succeeded" | "failed";
  captured: boolean;
  amountRefunded: number;
  declineCode: string | null;
  idempotencyKey: string | null;
  requestId: string;
  metadata: Record<string, string>;
  created: number;
}

/** One delivery of an event. `payload` is the exact body signed; `signature` the header of the last attempt. */
export interface WebhookDelivery {
  id: string;
  eventId: string;
  type: string;
  paymentIntent: string | null;
  metadata: Record<string, string>;
  idempotencyKey: string | null;
  status: "held" | "pending" | "delivered" | "failed" | "dropped" | "no_endpoint";
  duplicate: boolean;
  attempts: { at: number; status?: number; error?: string }[];
  payload: string;
  signature: string;
}

/** One API request and what became of it. */
export interface RequestRecord {
  requestId: string;
  method: string;
  path: string;
  idempotencyKey: string | null;
  paymentIntent: string | null;
  metadata: Record<string, string>;
  /** The HTTP status sent, or what happened instead. */
  outcome: number | "in_progress" | "hanging" | "hung" | "lost";
  replayed: boolean;
  fault: FaultMode | null;
}

const DEFAULT_HANG_MS = 60_000;
const DEFAULT_WEBHOOK_RETRY_DELAYS_MS = [250, 1_000, 4_000];
const WEBHOOK_TIMEOUT_MS = 10_000;
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
const MIN_AMOUNT = 50;
const MAX_AMOUNT = 99_999_999;

/**
 * Starts the gateway on 127.0.0.1:port (0 = ephemeral). Point the client at it
 * with `new Stripe(key, { host: "127.0.0.1", port, protocol: "http" })` (in a
 * Worker, add `httpClient: Stripe.createFetchHttpClient()`). State lives in
 * memory and ends with `close()`.
 */
export async function startStripeGateway(options: StripeGatewayOptions): Promise<StripeGateway> {
  if (options.webhookSecret === "") throw new Error("stripe gateway: webhookSecret is required");
  const gateway = new Gateway(options);
  const server = createServer((request, response) => {
    gateway.serve(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, { error: { type: "api_error", message: `stripe gateway: ${String(error)}` } });
    });
  });
  server.listen(options.port, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("stripe gateway: server has no TCP address");

  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    addFault: (spec) => gateway.faults.add(FaultSpecSchema.parse(spec)),
    clearFaults: (id) => gateway.faults.clear(id),
    faults: () => gateway.faults.list(),
    charges: (filter = {}) => gateway.charges(filter),
    paymentIntents: (filter = {}) => gateway.paymentIntents(filter),
    webhooks: (filter = {}) => gateway.webhookDeliveries(filter),
    requests: (filter = {}) => gateway.requests(filter),
    flushWebhooks: () => gateway.webhooks.flush(),
    settleWebhooks: () => gateway.webhooks.settle(),
    async close() {
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      gateway.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------
// Stripe's objects, as the API shows them (the fields we fill).

type PaymentIntentStatus = "requires_payment_method" | "requires_confirmation" | "requires_action" | "processing" | "requires_capture" | "canceled" | "succeeded";
type CaptureMethod = "automatic" | "automatic_async" | "manual";
type Metadata = Record<string, string>;

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
  last_payment_error: CardError | null;
  latest_charge: string | null;
  livemode: false;
  metadata: Metadata;
  next_action: null;
  payment_method: string | null;
  payment_method_types: string[];
  receipt_email: string | null;
  status: PaymentIntentStatus;
}

interface PaymentMethodObject {
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

interface CardError {
  type: "card_error";
  code: string;
  decline_code: string;
  message: string;
  charge: string;
  doc_url: string;
  payment_method: PaymentMethodObject;
}

interface ChargeObject {
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
  status: "succeeded" | "failed";
}

interface RefundObject {
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

type EventType = "payment_intent.succeeded" | "payment_intent.payment_failed" | "payment_intent.canceled" | "charge.refunded";

interface StripeEvent {
  id: string;
  object: "event";
  api_version: string;
  created: number;
  data: { object: PaymentIntentObject | ChargeObject; previous_attributes?: Record<string, unknown> };
  livemode: false;
  pending_webhooks: number;
  request: { id: string; idempotency_key: string | null };
  type: EventType;
}

// ---------------------------------------------------------------------------
// Errors and results.

/** Stripe's error body: `{ error: { type, code?, decline_code?, message, param?, ... } }`. */
type ErrorBody = { type: string; message: string; code?: string; param?: string; [field: string]: unknown };

/** A response an endpoint produced. Like Stripe, only responses of endpoints that began executing are saved for a key. */
interface ApiResult {
  status: number;
  body: unknown;
  saved: boolean;
}

/** An invalid request, answered before (or instead of) executing: never saved for an idempotency key. */
class InvalidRequest extends Error {
  constructor(
    readonly status: number,
    readonly error: ErrorBody,
  ) {
    super(error.message);
  }
}

function invalid(message: string, extra: Omit<ErrorBody, "type" | "message"> = {}): InvalidRequest {
  return new InvalidRequest(400, { type: "invalid_request_error", message, ...extra });
}

function missing(kind: string, id: string, param: string): InvalidRequest {
  return new InvalidRequest(404, { type: "invalid_request_error", code: "resource_missing", param, message: `No such ${kind}: '${id}'` });
}

function errorResult(status: number, error: ErrorBody): ApiResult {
  return { status, body: { error }, saved: false };
}

// ---------------------------------------------------------------------------
// Test cards and payment methods (https://docs.stripe.com/testing).

interface TestCard {
  brand: string;
  funding: string;
  decline?: DeclineCode;
}

const TEST_CARDS: Record<string, TestCard> = {
  "4242424242424242": { brand: "visa", funding: "credit" },
  "4000056655665556": { brand: "visa", funding: "debit" },
  "5555555555554444": { brand: "mastercard", funding: "credit" },
  "378282246310005": { brand: "amex", funding: "credit" },
  "4000000000000002": { brand: "visa", funding: "credit", decline: "generic_decline" },
  "4000000000009995": { brand: "visa", funding: "credit", decline: "insufficient_funds" },
  "4000000000009987": { brand: "visa", funding: "credit", decline: "lost_card" },
  "4000000000009979": { brand: "visa", funding: "credit", decline: "stolen_card" },
  "4000000000000069": { brand: "visa", funding: "credit", decline: "expired_card" },
  "4000000000000127": { brand: "visa", funding: "credit", decline: "incorrect_cvc" },
  "4000000000000119": { brand: "visa", funding: "credit", decline: "processing_error" },
};

/** Stripe's test PaymentMethod ids and the card each stands for. */
const TEST_PAYMENT_METHODS: Record<string, string> = {
  pm_card_visa: "4242424242424242",
  pm_card_visa_debit: "4000056655665556",
  pm_card_mastercard: "5555555555554444",
  pm_card_amex: "378282246310005",
  pm_card_chargeDeclined: "4000000000000002",
  pm_card_chargeDeclinedInsufficientFunds: "4000000000009995",
  pm_card_chargeDeclinedLostCard: "4000000000009987",
  pm_card_chargeDeclinedStolenCard: "4000000000009979",
  pm_card_chargeDeclinedExpiredCard: "4000000000000069",
  pm_card_chargeDeclinedIncorrectCvc: "4000000000000127",
  pm_card_chargeDeclinedProcessingError: "4000000000000119",
};

// ---------------------------------------------------------------------------
// Request parameters: Stripe's form encoding (`metadata[hold_id]=...`), checked with zod.

type FormValue = string | FormObject;
interface FormObject {
  [key: string]: FormValue;
}
type FormTree = Map<string, string | FormTree>;

/** Decodes `a[b][c]=v` pairs into nested objects; `a[]` appends. Arrays stay objects keyed "0", "1", ... */
function parseForm(encoded: string): FormObject {
  const root: FormTree = new Map();
  for (const [key, value] of new URLSearchParams(encoded)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!match?.[1]) throw invalid(`Invalid parameter name: ${key}`);
    const segments = [match[1], ...[...(match[2] ?? "").matchAll(/\[([^[\]]*)\]/g)].map((part) => part[1] ?? "")];
    let node = root;
    for (const [index, segment] of segments.entries()) {
      const name = segment === "" ? String(node.size) : segment;
      if (index === segments.length - 1) {
        if (node.get(name) instanceof Map) throw invalid(`Invalid ${key}: expected a hash`, { param: key });
        node.set(name, value);
        continue;
      }
      const child = node.get(name) ?? new Map<string, string | FormTree>();
      if (typeof child === "string") throw invalid(`Invalid ${key}: ${segments.slice(0, index + 1).join("[")} is not a hash`, { param: key });
      node.set(name, child);
      node = child;
    }
  }
  return treeToObject(root);
}

function treeToObject(tree: FormTree): FormObject {
  // Object.fromEntries defines own properties, so a key like "__proto__" stays data.
  return Object.fromEntries([...tree].map(([key, value]) => [key, typeof value === "string" ? value : treeToObject(value)]));
}

const formInteger = z.string().transform((value, context) => {
  if (/^\d+$/.test(value)) return Number(value);
  context.addIssue({ code: "custom", message: `Invalid integer: ${value}`, params: { stripeCode: "parameter_invalid_integer" } });
  return z.NEVER;
});
const formBoolean = z.enum(["true", "false"]).transform((value) => value === "true");
const currencyParam = z
  .string()
  .regex(/^[a-zA-Z]{3}$/, "must be a three-letter ISO currency code")
  .transform((value) => value.toLowerCase());
/** `metadata=""` clears it; `metadata[key]=""` removes one key. */
const metadataParam = z.union([
  z.literal(""),
  z
    .record(z.string().max(40, "keys can have up to 40 characters"), z.string().max(500, "values can have up to 500 characters"))
    .refine((metadata) => Object.keys(metadata).length <= 50, "can have up to 50 keys"),
]);
const paymentMethodDataParam = z.strictObject({
  type: z.literal("card"),
  card: z.strictObject({ number: z.string().regex(/^\d{12,19}$/, "Your card number is incorrect."), exp_month: formInteger, exp_year: formInteger, cvc: z.string().optional() }),
  metadata: metadataParam.optional(),
});
const paymentMethodFields = {
  payment_method: z.string().min(1).optional(),
  payment_method_data: paymentMethodDataParam.optional(),
};
const captureMethodParam = z.enum(["automatic", "automatic_async", "manual"]);

const CreatePaymentIntentParams = z.strictObject({
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
const UpdatePaymentIntentParams = z.strictObject({
  amount: formInteger.optional(),
  currency: currencyParam.optional(),
  metadata: metadataParam.optional(),
  payment_method: z.string().min(1).optional(),
  capture_method: captureMethodParam.optional(),
  description: z.string().optional(),
  receipt_email: z.string().optional(),
});
const ConfirmPaymentIntentParams = z.strictObject({ ...paymentMethodFields, capture_method: captureMethodParam.optional(), receipt_email: z.string().optional(), return_url: z.string().optional() });
const CancelPaymentIntentParams = z.strictObject({ cancellation_reason: z.enum(["duplicate", "fraudulent", "requested_by_customer", "abandoned"]).optional() });
const CapturePaymentIntentParams = z.strictObject({ amount_to_capture: formInteger.optional(), metadata: metadataParam.optional() });
const ListParams = z.strictObject({ limit: formInteger.optional(), starting_after: z.string().optional(), ending_before: z.string().optional() });
const CreateRefundParams = z.strictObject({
  payment_intent: z.string().optional(),
  charge: z.string().optional(),
  amount: formInteger.optional(),
  reason: z.enum(["duplicate", "fraudulent", "requested_by_customer"]).optional(),
  metadata: metadataParam.optional(),
});
const NoParams = z.strictObject({});

/** Checks params against `schema`, answering as Stripe does: unknown, missing and invalid parameters by name. */
function parseParams<T>(schema: z.ZodType<T>, params: FormObject): T {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const [first] = parsed.error.issues;
  if (!first) throw invalid("Invalid request");
  const { issue, path } = innermostIssue(first, []);
  if (issue.code === "unrecognized_keys") {
    const param = paramName([...path, issue.keys[0] ?? ""]);
    throw invalid(`Received unknown parameter: ${param}`, { code: "parameter_unknown", param });
  }
  const param = paramName(path);
  if (valueAt(params, path) === undefined) throw invalid(`Missing required param: ${param}.`, { code: "parameter_missing", param });
  const stripeCode = issue.code === "custom" ? issue.params?.stripeCode : undefined;
  throw invalid(`Invalid ${param}: ${issue.message}`, { param, ...(typeof stripeCode === "string" ? { code: stripeCode } : {}) });
}

/** For a union (`metadata` is "" or a hash), the issue of the branch that got furthest, with its full path. */
function innermostIssue(issue: z.core.$ZodIssue, parentPath: string[]): { issue: z.core.$ZodIssue; path: string[] } {
  const path = [...parentPath, ...issue.path.map(String)];
  if (issue.code !== "invalid_union") return { issue, path };
  const branches = issue.errors.flat().map((inner) => innermostIssue(inner, path));
  return branches.reduce((deepest, branch) => (branch.path.length > deepest.path.length ? branch : deepest), { issue, path });
}

/** ["metadata", "hold_id"] → "metadata[hold_id]", as Stripe names nested parameters. */
function paramName(path: string[]): string {
  const [first = "", ...rest] = path;
  return first + rest.map((segment) => `[${segment}]`).join("");
}

function valueAt(params: FormObject, path: string[]): FormValue | undefined {
  let value: FormValue | undefined = params;
  for (const segment of path) value = typeof value === "object" ? value[segment] : undefined;
  return value;
}

// ---------------------------------------------------------------------------
// Faults.

/** What a fault's `match` is compared with: a request, or an event and the request that caused it. */
interface FaultSubject {
  method: string;
  path: string;
  idempotencyKey: string | null;
  paymentIntent: string | null;
  metadata: Metadata;
  eventType?: string;
}

class FaultBook {
  private readonly active: Fault[] = [];
  private nextId = 1;

  add(spec: z.output<typeof FaultSpecSchema>): Fault {
    const fault: Fault = { ...spec, id: `fault_${this.nextId++}`, remaining: spec.count };
    this.active.push(fault);
    return structuredClone(fault);
  }

  clear(id?: string): number {
    const removed = this.active.filter((fault) => id === undefined || fault.id === id);
    for (const fault of removed) this.active.splice(this.active.indexOf(fault), 1);
    return removed.length;
  }

  list(): Fault[] {
    return structuredClone(this.active);
  }

  /** Uses up one application of the oldest fault of one of `modes` that matches `subject`; returns it as it now stands. */
  take(modes: readonly FaultMode[], subject: FaultSubject): Fault | undefined {
    const fault = this.active.find((candidate) => modes.includes(candidate.mode) && faultMatches(candidate.match, subject));
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining === 0) this.active.splice(this.active.indexOf(fault), 1);
    return structuredClone(fault);
  }
}

function faultMatches(match: Fault["match"], subject: FaultSubject): boolean {
  if (match.method !== undefined && match.method !== subject.method) return false;
  if (match.path !== undefined && !pathMatches(match.path, subject.path)) return false;
  if (match.idempotencyKey !== undefined && match.idempotencyKey !== subject.idempotencyKey) return false;
  if (match.paymentIntent !== undefined && match.paymentIntent !== subject.paymentIntent) return false;
  if (match.eventType !== undefined && match.eventType !== subject.eventType) return false;
  return Object.entries(match.metadata ?? {}).every(([key, value]) => subject.metadata[key] === value);
}

function pathMatches(pattern: string, path: string): boolean {
  const patternSegments = pattern.split("/");
  const pathSegments = path.split("/");
  return patternSegments.length === pathSegments.length && patternSegments.every((segment, index) => segment === "*" || segment === pathSegments[index]);
}

function matchesFilter(record: { paymentIntent?: string | null; idempotencyKey?: string | null; type?: string; metadata: Metadata }, filter: RecordFilter): boolean {
  if (filter.paymentIntent !== undefined && record.paymentIntent !== filter.paymentIntent) return false;
  if (filter.idempotencyKey !== undefined && record.idempotencyKey !== filter.idempotencyKey) return false;
  if (filter.type !== undefined && record.type !== filter.type) return false;
  return Object.entries(filter.metadata ?? {}).every(([key, value]) => record.metadata[key] === value);
}

// ---------------------------------------------------------------------------
// Idempotency (https://docs.stripe.com/api/idempotent_requests).

/** A saved response, replayed byte for byte. */
interface SavedResponse {
  status: number;
  body: string;
  requestId: string;
}

type Claim =
  | { kind: "new"; finish(saved: SavedResponse | undefined): void }
  | { kind: "replay"; saved: SavedResponse }
  | { kind: "in_use" }
  | { kind: "mismatch"; message: string };

interface KeyEntry {
  endpoint: string;
  params: string;
  saved: SavedResponse | undefined;
}

/** Keys are scoped per API key. A key is locked while its first request executes; a response is saved once it began executing. */
class IdempotencyStore {
  private readonly entries = new Map<string, KeyEntry>();

  claim(apiKey: string, key: string, endpoint: string, params: FormObject): Claim {
    const scopedKey = `${apiKey}\n${key}`;
    const canonical = canonicalJson(params);
    const existing = this.entries.get(scopedKey);
    if (existing) {
      if (existing.endpoint !== endpoint) {
        return {
          kind: "mismatch",
          message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${existing.endpoint}' vs '${endpoint}'). Try using a key other than '${key}' if you meant to execute a different request.`,
        };
      }
      if (existing.params !== canonical) {
        return {
          kind: "mismatch",
          message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        };
      }
      return existing.saved ? { kind: "replay", saved: existing.saved } : { kind: "in_use" };
    }
    const entry: KeyEntry = { endpoint, params: canonical, saved: undefined };
    this.entries.set(scopedKey, entry);
    return {
      kind: "new",
      finish: (saved) => {
        if (saved) entry.saved = saved;
        else this.entries.delete(scopedKey);
      },
    };
  }
}

/** JSON with sorted keys, so parameter order does not matter. */
function canonicalJson(value: FormValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  return `{${Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] ?? "")}`)
    .join(",")}}`;
}

// ---------------------------------------------------------------------------
// The ledger: PaymentIntents, charges, refunds, and the events they cause.

/** The API request being served. */
interface Exchange {
  requestId: string;
  method: string;
  path: string;
  idempotencyKey: string | null;
  apiVersion: string;
}

type EmitEvent = (type: EventType, object: PaymentIntentObject | ChargeObject, exchange: Exchange, previousAttributes?: Record<string, unknown>) => void;

class Ledger {
  private readonly intents = new Map<string, PaymentIntentObject>();
  private readonly charges = new Map<string, ChargeObject>();
  private readonly chargeOrigins = new Map<string, { exchange: Exchange; declineCode: string | null }>();
  private readonly refunds = new Map<string, RefundObject>();
  private readonly paymentMethods = new Map<string, { object: PaymentMethodObject; number: string }>();

  constructor(
    private readonly faults: FaultBook,
    private readonly emit: EmitEvent,
  ) {}

  paymentIntent(id: string): PaymentIntentObject | undefined {
    return this.intents.get(id);
  }

  listPaymentIntents(): PaymentIntentObject[] {
    return [...this.intents.values()].reverse().map((intent) => structuredClone(intent));
  }

  chargeAttempts(): ChargeAttempt[] {
    return [...this.charges.values()].map((charge) => {
      const origin = this.chargeOrigins.get(charge.id);
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

  createPaymentIntent(params: z.output<typeof CreatePaymentIntentParams>, exchange: Exchange): ApiResult {
    checkAmount(params.amount, "amount");
    const paymentMethod = this.resolvePaymentMethod(params);
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
    this.intents.set(id, intent);
    if (params.confirm) return this.confirm(intent, paymentMethod, exchange);
    return ok(intent);
  }

  updatePaymentIntent(intent: PaymentIntentObject, params: z.output<typeof UpdatePaymentIntentParams>): ApiResult {
    const changesPayment = params.amount !== undefined || params.currency !== undefined || params.payment_method !== undefined || params.capture_method !== undefined;
    if (changesPayment && !["requires_payment_method", "requires_confirmation", "requires_action"].includes(intent.status)) {
      throw unexpectedState(
        `This PaymentIntent could not be updated because it has a status of ${intent.status}. You may only update the amount, currency, payment method or capture method of a PaymentIntent with one of the following statuses: requires_payment_method, requires_confirmation, requires_action.`,
        intent,
      );
    }
    if (params.amount !== undefined) checkAmount(params.amount, "amount");
    const paymentMethod = params.payment_method === undefined ? undefined : this.resolvePaymentMethod({ payment_method: params.payment_method });
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

  confirmPaymentIntent(intent: PaymentIntentObject, params: z.output<typeof ConfirmPaymentIntentParams>, exchange: Exchange): ApiResult {
    if (intent.status !== "requires_payment_method" && intent.status !== "requires_confirmation") {
      throw unexpectedState(
        `You cannot confirm this PaymentIntent because it has a status of ${intent.status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_action, requires_payment_method.`,
        intent,
      );
    }
    const given = this.resolvePaymentMethod(params);
    const paymentMethod = given ?? (intent.payment_method ? this.paymentMethods.get(intent.payment_method)?.object : undefined);
    if (!paymentMethod) {
      throw unexpectedState(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
        intent,
      );
    }
    if (params.capture_method !== undefined) intent.capture_method = params.capture_method;
    if (params.receipt_email !== undefined) intent.receipt_email = params.receipt_email || null;
    return this.confirm(intent, paymentMethod, exchange);
  }

  cancelPaymentIntent(intent: PaymentIntentObject, params: z.output<typeof CancelPaymentIntentParams>, exchange: Exchange): ApiResult {
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

  capturePaymentIntent(intent: PaymentIntentObject, params: z.output<typeof CapturePaymentIntentParams>, exchange: Exchange): ApiResult {
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
    return ok(intent);
  }

  createRefund(params: z.output<typeof CreateRefundParams>, exchange: Exchange): ApiResult {
    if ((params.payment_intent === undefined) === (params.charge === undefined)) {
      throw invalid("You must pass either a payment_intent or a charge, but not both.", { code: "parameter_missing", param: "payment_intent" });
    }
    const charge = this.refundableCharge(params);
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
    this.refunds.set(refund.id, refund);
    this.emit("charge.refunded", charge, exchange, previous);
    return ok(refund);
  }

  retrieve(kind: "payment_intent" | "charge" | "refund", id: string): ApiResult {
    const found = kind === "payment_intent" ? this.intents.get(id) : kind === "charge" ? this.charges.get(id) : this.refunds.get(id);
    if (!found) throw missing(kind, id, kind === "payment_intent" ? "intent" : "id");
    return ok(found);
  }

  listPaymentIntentPage(params: z.output<typeof ListParams>): ApiResult {
    const limit = params.limit ?? 10;
    if (limit < 1 || limit > 100) throw invalid("Invalid limit: must be between 1 and 100", { param: "limit" });
    let newestFirst = [...this.intents.values()].reverse();
    if (params.starting_after !== undefined) newestFirst = newestFirst.slice(this.cursorIndex(newestFirst, params.starting_after, "starting_after") + 1);
    if (params.ending_before !== undefined) {
      const newer = newestFirst.slice(0, this.cursorIndex(newestFirst, params.ending_before, "ending_before"));
      return ok({ object: "list", data: newer.slice(-limit), has_more: newer.length > limit, url: "/v1/payment_intents" });
    }
    return ok({ object: "list", data: newestFirst.slice(0, limit), has_more: newestFirst.length > limit, url: "/v1/payment_intents" });
  }

  private cursorIndex(intents: PaymentIntentObject[], id: string, param: string): number {
    const index = intents.findIndex((intent) => intent.id === id);
    if (index === -1) throw missing("payment_intent", id, param);
    return index;
  }

  /** One charge attempt; a decline leaves the intent waiting for another payment method, as on Stripe. */
  private confirm(intent: PaymentIntentObject, paymentMethod: PaymentMethodObject | undefined, exchange: Exchange): ApiResult {
    if (!paymentMethod) {
      throw unexpectedState(
        "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
        intent,
      );
    }
    const number = this.paymentMethods.get(paymentMethod.id)?.number ?? "";
    const fault = this.faults.take(["decline"], { ...requestSubject(exchange), paymentIntent: intent.id, metadata: intent.metadata });
    const declineCode: DeclineCode | undefined = fault ? (fault.declineCode ?? "generic_decline") : (TEST_CARDS[number]?.decline ?? (TEST_CARDS[number] ? undefined : "test_mode_live_card"));
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
      status: decline ? "failed" : "succeeded",
    };
    this.charges.set(charge.id, charge);
    this.chargeOrigins.set(charge.id, { exchange, declineCode: declineCode ?? null });
    intent.latest_charge = charge.id;

    if (decline && declineCode) {
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
    if (manual) {
      Object.assign(intent, { status: "requires_capture", amount_capturable: intent.amount });
    } else {
      Object.assign(intent, { status: "succeeded", amount_received: intent.amount });
      this.emit("payment_intent.succeeded", intent, exchange);
    }
    return ok(intent);
  }

  /** A test PaymentMethod id (or card data) becomes a new PaymentMethod, as on Stripe; an id we issued is reused. */
  private resolvePaymentMethod(params: { payment_method?: string | undefined; payment_method_data?: z.output<typeof paymentMethodDataParam> | undefined }): PaymentMethodObject | undefined {
    if (params.payment_method !== undefined && params.payment_method_data !== undefined) {
      throw invalid("You cannot pass both payment_method and payment_method_data.", { param: "payment_method_data" });
    }
    if (params.payment_method_data) {
      const { number, exp_month, exp_year } = params.payment_method_data.card;
      return this.createPaymentMethod(number, exp_month, exp_year, mergeMetadata({}, params.payment_method_data.metadata));
    }
    if (params.payment_method === undefined) return undefined;
    const known = this.paymentMethods.get(params.payment_method);
    if (known) return known.object;
    const number = TEST_PAYMENT_METHODS[params.payment_method];
    if (number === undefined) throw missing("PaymentMethod", params.payment_method, "payment_method");
    return this.createPaymentMethod(number, 12, new Date().getUTCFullYear() + 3, {});
  }

  private createPaymentMethod(number: string, expMonth: number, expYear: number, metadata: Metadata): PaymentMethodObject {
    const card = TEST_CARDS[number];
    const object: PaymentMethodObject = {
      id: newId("pm"),
      object: "payment_method",
      type: "card",
      billing_details: { address: null, email: null, name: null, phone: null },
      card: { brand: card?.brand ?? "unknown", country: "US", exp_month: expMonth, exp_year: expYear, funding: card?.funding ?? "unknown", last4: number.slice(-4) },
      created: unixNow(),
      customer: null,
      livemode: false,
      metadata,
    };
    this.paymentMethods.set(object.id, { object, number });
    return object;
  }

  private refundableCharge(params: z.output<typeof CreateRefundParams>): ChargeObject {
    if (params.charge !== undefined) {
      const charge = this.charges.get(params.charge);
      if (!charge) throw missing("charge", params.charge, "charge");
      if (charge.status !== "succeeded" || !charge.captured) throw invalid(`Charge ${charge.id} has no captured amount to refund.`, { param: "charge" });
      return charge;
    }
    const id = params.payment_intent ?? "";
    const intent = this.intents.get(id);
    if (!intent) throw missing("payment_intent", id, "payment_intent");
    const charge = intent.latest_charge ? this.charges.get(intent.latest_charge) : undefined;
    if (intent.status !== "succeeded" || !charge) {
      throw invalid(`This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, { param: "payment_intent" });
    }
    return charge;
  }
}

function ok(object: unknown): ApiResult {
  return { status: 200, body: object, saved: true };
}

function unexpectedState(message: string, intent: PaymentIntentObject): InvalidRequest {
  return new InvalidRequest(400, { type: "invalid_request_error", code: "payment_intent_unexpected_state", message, payment_intent: structuredClone(intent) });
}

function checkAmount(amount: number, param: string): void {
  if (amount < MIN_AMOUNT) throw invalid(`Amount must be at least ${MIN_AMOUNT} in the currency's smallest unit.`, { code: "amount_too_small", param });
  if (amount > MAX_AMOUNT) throw invalid(`Amount must be no more than ${MAX_AMOUNT}.`, { code: "amount_too_large", param });
}

function mergeMetadata(current: Metadata, update: Metadata | "" | undefined): Metadata {
  if (update === undefined) return current;
  if (update === "") return {};
  const merged = { ...current };
  for (const [key, value] of Object.entries(update)) {
    if (value === "") delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

// ---------------------------------------------------------------------------
// Routes.

interface Route {
  method: "GET" | "POST";
  pattern: RegExp;
  /** Which PaymentIntent a request concerns, for fault matching and inspection. */
  intentOf(id: string | undefined, params: FormObject): string | undefined;
  handle(ledger: Ledger, params: FormObject, exchange: Exchange, id: string): ApiResult;
}

const fromPath = (id: string | undefined) => id;
const none = () => undefined;

/** The PaymentIntent a request names, or undefined (and a 404) if there is none. */
function intentFor(ledger: Ledger, id: string): PaymentIntentObject {
  const intent = ledger.paymentIntent(id);
  if (!intent) throw missing("payment_intent", id, "intent");
  return intent;
}

const ROUTES: Route[] = [
  {
    method: "POST",
    pattern: /^\/v1\/payment_intents$/,
    intentOf: none,
    handle: (ledger, params, exchange) => ledger.createPaymentIntent(parseParams(CreatePaymentIntentParams, params), exchange),
  },
  {
    method: "GET",
    pattern: /^\/v1\/payment_intents$/,
    intentOf: none,
    handle: (ledger, params) => ledger.listPaymentIntentPage(parseParams(ListParams, params)),
  },
  {
    method: "POST",
    pattern: /^\/v1\/payment_intents\/([^/]+)$/,
    intentOf: fromPath,
    handle: (ledger, params, _exchange, id) => {
      const parsed = parseParams(UpdatePaymentIntentParams, params);
      return ledger.updatePaymentIntent(intentFor(ledger, id), parsed);
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/payment_intents\/([^/]+)$/,
    intentOf: fromPath,
    handle: (ledger, params, _exchange, id) => {
      parseParams(z.strictObject({ client_secret: z.string().optional() }), params);
      return ledger.retrieve("payment_intent", id);
    },
  },
  {
    method: "POST",
    pattern: /^\/v1\/payment_intents\/([^/]+)\/confirm$/,
    intentOf: fromPath,
    handle: (ledger, params, exchange, id) => {
      const parsed = parseParams(ConfirmPaymentIntentParams, params);
      return ledger.confirmPaymentIntent(intentFor(ledger, id), parsed, exchange);
    },
  },
  {
    method: "POST",
    pattern: /^\/v1\/payment_intents\/([^/]+)\/cancel$/,
    intentOf: fromPath,
    handle: (ledger, params, exchange, id) => {
      const parsed = parseParams(CancelPaymentIntentParams, params);
      return ledger.cancelPaymentIntent(intentFor(ledger, id), parsed, exchange);
    },
  },
  {
    method: "POST",
    pattern: /^\/v1\/payment_intents\/([^/]+)\/capture$/,
    intentOf: fromPath,
    handle: (ledger, params, exchange, id) => {
      const parsed = parseParams(CapturePaymentIntentParams, params);
      return ledger.capturePaymentIntent(intentFor(ledger, id), parsed, exchange);
    },
  },
  {
    method: "POST",
    pattern: /^\/v1\/refunds$/,
    intentOf: (_id, params) => (typeof params.payment_intent === "string" ? params.payment_intent : undefined),
    handle: (ledger, params, exchange) => ledger.createRefund(parseParams(CreateRefundParams, params), exchange),
  },
  {
    method: "GET",
    pattern: /^\/v1\/refunds\/([^/]+)$/,
    intentOf: none,
    handle: (ledger, params, _exchange, id) => {
      parseParams(NoParams, params);
      return ledger.retrieve("refund", id);
    },
  },
  {
    method: "GET",
    pattern: /^\/v1\/charges\/([^/]+)$/,
    intentOf: none,
    handle: (ledger, params, _exchange, id) => {
      parseParams(NoParams, params);
      return ledger.retrieve("charge", id);
    },
  },
];

function findRoute(method: string, path: string): { route: Route; id: string | undefined } | undefined {
  for (const route of ROUTES) {
    const match = route.method === method ? route.pattern.exec(path) : null;
    if (match) return { route, id: match[1] === undefined ? undefined : decodeURIComponent(match[1]) };
  }
  return undefined;
}

function requestSubject(exchange: Exchange): FaultSubject {
  return { method: exchange.method, path: exchange.path, idempotencyKey: exchange.idempotencyKey, paymentIntent: null, metadata: {} };
}

// ---------------------------------------------------------------------------
// Webhooks.

/** Held until flush (or a `delayMs` timer), in creation order; a reorder group is released reversed. */
interface HeldDelivery {
  delivery: WebhookDelivery;
  group: string | undefined;
  /** Stops a `delayMs` timer and ends its wait. */
  stopTimer: (() => void) | undefined;
}

class WebhookSender {
  private readonly deliveries: WebhookDelivery[] = [];
  private readonly held: HeldDelivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly waits = new Set<() => void>();
  private readonly aborted = new AbortController();
  /** First attempts go out one at a time, in order, so a healthy endpoint sees events in the order they happened. */
  private queue: Promise<void> = Promise.resolve();
  private nextId = 1;

  constructor(
    private readonly url: string | undefined,
    private readonly secret: string,
    private readonly retryDelaysMs: readonly number[],
    private readonly faults: FaultBook,
  ) {}

  dispatch(event: StripeEvent, exchange: Exchange): void {
    const object = event.data.object;
    const paymentIntent = object.object === "payment_intent" ? object.id : object.payment_intent;
    const payload = JSON.stringify(event, null, 2);
    const record = (duplicate: boolean): WebhookDelivery => {
      const delivery: WebhookDelivery = {
        id: `whd_${this.nextId++}`,
        eventId: event.id,
        type: event.type,
        paymentIntent,
        metadata: { ...object.metadata },
        idempotencyKey: exchange.idempotencyKey,
        status: "pending",
        duplicate,
        attempts: [],
        payload,
        signature: this.sign(payload),
      };
      this.deliveries.push(delivery);
      return delivery;
    };
    const fault = this.faults.take(WEBHOOK_MODES, { ...requestSubject(exchange), paymentIntent, metadata: object.metadata, eventType: event.type });
    const delivery = record(false);
    switch (fault?.mode) {
      case "drop_webhook":
        delivery.status = "dropped";
        return;
      case "duplicate_webhook":
        this.send(delivery);
        this.send(record(true));
        return;
      case "delay_webhook":
        this.hold(delivery, undefined, fault.delayMs);
        return;
      case "reorder_webhooks":
        this.hold(delivery, fault.id, undefined);
        if (fault.remaining === 0) this.release((held) => held.group === fault.id);
        return;
      default:
        this.send(delivery);
    }
  }

  list(): WebhookDelivery[] {
    return structuredClone(this.deliveries);
  }

  async flush(): Promise<number> {
    const released = this.release(() => true);
    await this.settle();
    return released;
  }

  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  close(): void {
    this.aborted.abort();
    this.held.splice(0);
    for (const wake of this.waits) wake();
  }

  private hold(delivery: WebhookDelivery, group: string | undefined, delayMs: number | undefined): void {
    delivery.status = "held";
    const held: HeldDelivery = { delivery, group, stopTimer: undefined };
    this.held.push(held);
    if (delayMs === undefined) return;
    // Tracked as in flight, so settle() waits for timed delays.
    this.track(
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.release((candidate) => candidate === held), delayMs);
        const stopTimer = () => {
          clearTimeout(timer);
          this.waits.delete(stopTimer);
          resolve();
        };
        held.stopTimer = stopTimer;
        this.waits.add(stopTimer);
      }),
    );
  }

  /** Sends the held deliveries `which` selects: ungrouped ones in order, each reorder group reversed. */
  private release(which: (held: HeldDelivery) => boolean): number {
    const chosen = this.held.filter(which);
    for (const held of chosen) {
      this.held.splice(this.held.indexOf(held), 1);
      held.stopTimer?.();
    }
    const groups = new Map<string, WebhookDelivery[]>();
    for (const held of chosen) {
      if (held.group === undefined) {
        this.send(held.delivery);
        continue;
      }
      groups.set(held.group, [...(groups.get(held.group) ?? []), held.delivery]);
    }
    for (const group of groups.values()) for (const delivery of group.reverse()) this.send(delivery);
    return chosen.length;
  }

  private send(delivery: WebhookDelivery): void {
    if (this.url === undefined) {
      delivery.status = "no_endpoint";
      return;
    }
    const url = this.url;
    delivery.status = "pending";
    const first = this.queue.then(() => this.attempt(url, delivery));
    this.queue = first.then(() => undefined);
    this.track(
      first.then(async (delivered) => {
        for (const delay of this.retryDelaysMs) {
          if (delivered || this.aborted.signal.aborted) break;
          await this.wait(delay);
          delivered = await this.attempt(url, delivery);
        }
        delivery.status = delivered ? "delivered" : "failed";
      }),
    );
  }

  private async attempt(url: string, delivery: WebhookDelivery): Promise<boolean> {
    if (this.aborted.signal.aborted) return false;
    delivery.signature = this.sign(delivery.payload);
    const at = Date.now();
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": delivery.signature, "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
        body: delivery.payload,
        signal: AbortSignal.any([this.aborted.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
      });
      await response.body?.cancel();
      delivery.attempts.push({ at, status: response.status });
      return response.ok;
    } catch (error) {
      delivery.attempts.push({ at, error: error instanceof Error ? error.message : String(error) });
      return false;
    }
  }

  /** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`, as Stripe signs. */
  private sign(payload: string): string {
    const timestamp = unixNow();
    const signature = createHmac("sha256", this.secret).update(`${timestamp}.${payload}`).digest("hex");
    return `t=${timestamp},v1=${signature}`;
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waits.add(wake);
    });
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }
}

// ---------------------------------------------------------------------------
// The HTTP side.

class Gateway {
  readonly faults = new FaultBook();
  readonly webhooks: WebhookSender;
  private readonly ledger: Ledger;
  private readonly requestLog: RequestRecord[] = [];
  private readonly idempotency = new IdempotencyStore();
  /** Releases for the connections held by hang / lose_response faults. */
  private readonly heldConnections = new Set<() => void>();

  constructor(private readonly options: StripeGatewayOptions) {
    this.webhooks = new WebhookSender(options.webhookUrl, options.webhookSecret, options.webhookRetryDelaysMs ?? DEFAULT_WEBHOOK_RETRY_DELAYS_MS, this.faults);
    this.ledger = new Ledger(this.faults, (type, object, exchange, previousAttributes) => {
      const event: StripeEvent = {
        id: newId("evt"),
        object: "event",
        api_version: exchange.apiVersion,
        created: unixNow(),
        data: { object: structuredClone(object), ...(previousAttributes ? { previous_attributes: previousAttributes } : {}) },
        livemode: false,
        pending_webhooks: 1,
        request: { id: exchange.requestId, idempotency_key: exchange.idempotencyKey },
        type,
      };
      this.webhooks.dispatch(event, exchange);
    });
  }

  async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://gateway");
    const body = await text(request);
    if (url.pathname.startsWith("/__")) return this.serveControl(request.method ?? "GET", url, body, response);
    return this.serveApi(request, response, url, body);
  }

  close(): void {
    for (const release of this.heldConnections) release();
    this.webhooks.close();
  }

  charges(filter: RecordFilter): ChargeAttempt[] {
    return this.ledger.chargeAttempts().filter((attempt) => matchesFilter(attempt, filter));
  }

  paymentIntents(filter: RecordFilter): PaymentIntentObject[] {
    return this.ledger.listPaymentIntents().filter((intent) => matchesFilter({ paymentIntent: intent.id, metadata: intent.metadata }, filter));
  }

  webhookDeliveries(filter: RecordFilter): WebhookDelivery[] {
    return this.webhooks.list().filter((delivery) => matchesFilter(delivery, filter));
  }

  requests(filter: RecordFilter): RequestRecord[] {
    return this.requestLog.filter((record) => matchesFilter(record, filter)).map((record) => structuredClone(record));
  }

  private async serveApi(request: IncomingMessage, response: ServerResponse, url: URL, body: string): Promise<void> {
    const method = request.method ?? "GET";
    const requestId = newId("req");
    const apiVersion = headerValue(request.headers["stripe-version"]) ?? Stripe.API_VERSION;
    // Stripe ignores the key on GET and DELETE.
    const idempotencyKey = method === "POST" ? (headerValue(request.headers["idempotency-key"]) ?? null) : null;
    const headers: Record<string, string> = { "request-id": requestId, "stripe-version": apiVersion, ...(idempotencyKey === null ? {} : { "idempotency-key": idempotencyKey }) };
    const record: RequestRecord = { requestId, method, path: url.pathname, idempotencyKey, paymentIntent: null, metadata: {}, outcome: "in_progress", replayed: false, fault: null };
    this.requestLog.push(record);
    const reply = (status: number, json: string, extra: Record<string, string> = {}) => {
      record.outcome = status;
      response.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(json)), ...headers, ...extra }).end(json);
    };
    const replyResult = (result: ApiResult) => reply(result.status, JSON.stringify(result.body, null, 2));

    const apiKey = authenticate(request.headers.authorization, this.options.apiKey);
    if (apiKey instanceof InvalidRequest) return replyResult(errorResult(apiKey.status, apiKey.error));
    const found = findRoute(method, url.pathname);
    if (!found) {
      return replyResult(
        errorResult(404, { type: "invalid_request_error", message: `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.` }),
      );
    }
    let params: FormObject;
    try {
      params = parseForm(method === "POST" ? body : url.search.slice(1));
    } catch (error) {
      if (error instanceof InvalidRequest) return replyResult(errorResult(error.status, error.error));
      throw error;
    }
    if (idempotencyKey !== null && idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      return replyResult(errorResult(400, { type: "invalid_request_error", message: `Idempotency-Key must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long.` }));
    }

    const exchange: Exchange = { requestId, method, path: url.pathname, idempotencyKey, apiVersion };
    const paymentIntent = found.route.intentOf(found.id, params) ?? null;
    const requestMetadata = typeof params.metadata === "object" ? Object.fromEntries(Object.entries(params.metadata).filter((entry): entry is [string, string] => typeof entry[1] === "string")) : {};
    record.paymentIntent = paymentIntent;
    record.metadata = { ...(paymentIntent === null ? {} : this.ledger.paymentIntent(paymentIntent)?.metadata), ...requestMetadata };
    const fault = this.faults.take(REQUEST_MODES, { ...requestSubject(exchange), paymentIntent, metadata: record.metadata });
    record.fault = fault?.mode ?? null;
    if (fault?.mode === "error500") return replyResult(errorResult(500, { type: "api_error", message: "An unknown error occurred" }));

    const claim = idempotencyKey === null ? undefined : this.idempotency.claim(apiKey, idempotencyKey, `${method} ${url.pathname}`, params);
    if (fault?.mode === "hang") {
      record.outcome = "hanging";
      await this.holdConnection(response, fault.delayMs ?? DEFAULT_HANG_MS);
      if (claim?.kind === "new") claim.finish(undefined);
      record.outcome = "hung";
      response.destroy();
      return;
    }

    let status: number;
    let json: string;
    let extra: Record<string, string> = {};
    if (claim?.kind === "replay") {
      ({ status, body: json } = claim.saved);
      extra = { "idempotent-replayed": "true", "original-request": claim.saved.requestId };
      record.replayed = true;
    } else if (claim?.kind === "in_use") {
      status = 409;
      json = JSON.stringify(
        {
          error: {
            type: "idempotency_error",
            code: "idempotency_key_in_use",
            message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
          },
        },
        null,
        2,
      );
    } else if (claim?.kind === "mismatch") {
      status = 400;
      json = JSON.stringify({ error: { type: "idempotency_error", message: claim.message } }, null, 2);
    } else {
      const result = this.execute(found.route, params, exchange, found.id ?? "");
      status = result.status;
      json = JSON.stringify(result.body, null, 2);
      claim?.finish(result.saved ? { status, body: json, requestId } : undefined);
      const intentId = record.paymentIntent ?? intentIdOf(result.body);
      if (intentId !== null) {
        record.paymentIntent = intentId;
        record.metadata = { ...this.ledger.paymentIntent(intentId)?.metadata };
      }
    }

    if (fault?.mode === "lose_response") {
      if (fault.delayMs !== undefined) await this.holdConnection(response, fault.delayMs);
      record.outcome = "lost";
      response.destroy();
      return;
    }
    reply(status, json, extra);
  }

  private execute(route: Route, params: FormObject, exchange: Exchange, id: string): ApiResult {
    try {
      return route.handle(this.ledger, params, exchange, id);
    } catch (error) {
      if (error instanceof InvalidRequest) return errorResult(error.status, error.error);
      throw error;
    }
  }

  /** Holds an unanswered request until the client gives up, `ms` pass, or the gateway closes. */
  private holdConnection(response: ServerResponse, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.heldConnections.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      response.once("close", release);
      this.heldConnections.add(release);
    });
  }

  private async serveControl(method: string, url: URL, body: string, response: ServerResponse): Promise<void> {
    const filter = filterFromQuery(url.searchParams);
    const route = `${method} ${url.pathname}`;
    switch (route) {
      case "GET /__faults":
        return sendJson(response, 200, this.faults.list());
      case "POST /__faults": {
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          return sendJson(response, 400, { error: { type: "invalid_request_error", message: "The body must be JSON." } });
        }
        const spec = FaultSpecSchema.safeParse(json);
        if (!spec.success) return sendJson(response, 400, { error: { type: "invalid_request_error", message: z.prettifyError(spec.error) } });
        return sendJson(response, 201, this.faults.add(spec.data));
      }
      case "DELETE /__faults":
        return sendJson(response, 200, { cleared: this.faults.clear() });
      case "GET /__charges":
        return sendJson(response, 200, this.charges(filter));
      case "GET /__payment_intents":
        return sendJson(response, 200, this.paymentIntents(filter));
      case "GET /__webhooks":
        return sendJson(response, 200, this.webhookDeliveries(filter));
      case "GET /__requests":
        return sendJson(response, 200, this.requests(filter));
      case "POST /__webhooks/flush":
        return sendJson(response, 200, { released: await this.webhooks.flush() });
      case "POST /__webhooks/settle":
        await this.webhooks.settle();
        return sendJson(response, 200, {});
    }
    const faultId = /^\/__faults\/([^/]+)$/.exec(url.pathname)?.[1];
    if (method === "DELETE" && faultId !== undefined) {
      const cleared = this.faults.clear(decodeURIComponent(faultId));
      return sendJson(response, cleared === 0 ? 404 : 200, { cleared });
    }
    return sendJson(response, 404, { error: { type: "invalid_request_error", message: `Unknown control route: ${route}` } });
  }
}

/** The API key of a request (Bearer, or Basic with the key as user name), or why it is refused. */
function authenticate(authorization: string | undefined, expected: string | undefined): string | InvalidRequest {
  const unauthorized = (message: string) => new InvalidRequest(401, { type: "invalid_request_error", message });
  if (!authorization) {
    return unauthorized(
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
    );
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
  const basic = /^Basic\s+(\S+)$/i.exec(authorization)?.[1];
  const key = bearer ?? (basic === undefined ? undefined : Buffer.from(basic, "base64").toString("utf8").split(":")[0]);
  if (!key) return unauthorized("Invalid authorization header. Use 'Authorization: Bearer YOUR_SECRET_KEY'.");
  const valid = expected === undefined ? /^(sk|rk)_test_\w+$/.test(key) : key === expected;
  if (!valid) return unauthorized(`Invalid API Key provided: ${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`);
  return key;
}

function filterFromQuery(query: URLSearchParams): RecordFilter {
  const filter: RecordFilter = {};
  const paymentIntent = query.get("payment_intent");
  const idempotencyKey = query.get("idempotency_key");
  const type = query.get("type");
  if (paymentIntent !== null) filter.paymentIntent = paymentIntent;
  if (idempotencyKey !== null) filter.idempotencyKey = idempotencyKey;
  if (type !== null) filter.type = type;
  for (const [key, value] of query) {
    const name = /^metadata\[(.+)\]$/.exec(key)?.[1];
    if (name !== undefined) filter.metadata = { ...filter.metadata, [name]: value };
  }
  return filter;
}

function intentIdOf(body: unknown): string | null {
  if (typeof body !== "object" || body === null) return null;
  if ("object" in body && body.object === "payment_intent" && "id" in body && typeof body.id === "string") return body.id;
  if ("payment_intent" in body && typeof body.payment_intent === "string") return body.payment_intent;
  if ("error" in body) return intentIdOf(body.error);
  if ("payment_intent" in body) return intentIdOf(body.payment_intent);
  return null;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `prefix_` and 24 alphanumerics, like Stripe's ids. */
function newId(prefix: string): string {
  return `${prefix}_${randomToken()}`;
}

function randomToken(): string {
  let token = "";
  for (const byte of randomBytes(24)) token += ID_ALPHABET.charAt(byte % ID_ALPHABET.length);
  return token;
}

function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
