/**
 * The local stand-in for Stripe's API, for the local stack and the tests, where
 * Stripe cannot be reached. It speaks Stripe's HTTP API for the calls we make
 * (PaymentIntents, refunds, charges, disputes): form-encoded requests, Stripe-shaped JSON
 * objects and errors, Stripe's status codes, Stripe's documented test payment
 * methods and card numbers, and `Idempotency-Key` semantics as Stripe documents
 * them for API v1. Events are POSTed to `webhookUrl`, signed exactly as Stripe
 * signs them, so `stripe.webhooks.constructEvent(Async)` accepts them.
 *
 * Tests (also the Worker's, inside workerd, over HTTP) can inject faults
 * (`POST /__faults`) and inspect what happened (`GET /__charges`,
 * `/__payment_intents`, `/__webhooks`, `/__requests`), and act as the
 * dashboard and the banks do: `POST /__dashboard/refund` and
 * `/__dashboard/dispute` refund or dispute a charge and send the events,
 * `/__dashboard/dispute/escalate` escalates an inquiry (opened on a charge
 * paid with `pm_card_createDisputeInquiry`) to a chargeback. The
 * control routes need no API key: the gateway listens on loopback only.
 *
 * The folder, one file a concern. server.ts is the HTTP side and control.ts
 * the `/__` routes. ledger.ts composes the resources, each a file of its own
 * that holds its objects and declares its routes (payment-intents.ts,
 * payment-methods.ts, charges.ts, refunds.ts, disputes.ts; a new resource is a new file
 * added there); webhooks.ts sends the events they cause. They share
 * objects.ts (Stripe's shapes), exchange.ts and routes.ts (a request, its
 * answer, a route), params.ts (form encoding), errors.ts, test-cards.ts,
 * idempotency.ts, faults.ts, records.ts (what tests inspect), ids.ts and
 * waits.ts.
 */
import { createServer } from "node:http";
import { listenOnLoopback, sendJson } from "../http-server.ts";
import { FaultSpecSchema, type Fault, type FaultSpec } from "./faults.ts";
import type { PaymentIntentObject } from "./objects.ts";
import type { ChargeAttempt, RecordFilter, RequestRecord, WebhookDelivery } from "./records.ts";
import { Gateway } from "./server.ts";

export { FAULT_MODES, type Fault, type FaultMode, type FaultSpec } from "./faults.ts";
export type { PaymentIntentObject } from "./objects.ts";
export type { ChargeAttempt, RecordFilter, RequestRecord, WebhookDelivery } from "./records.ts";

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
  /** The one publishable key Stripe.js may use (creating PaymentMethods, reading an intent by its client secret). Default: any `pk_test_...`. */
  publishableKey?: string;
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
  const listening = await listenOnLoopback(server, options.port, () => gateway.close());

  return {
    url: listening.url,
    port: listening.port,
    addFault: (spec) => gateway.faults.add(FaultSpecSchema.parse(spec)),
    clearFaults: (id) => gateway.faults.clear(id),
    faults: () => gateway.faults.list(),
    charges: (filter = {}) => gateway.charges(filter),
    paymentIntents: (filter = {}) => gateway.paymentIntents(filter),
    webhooks: (filter = {}) => gateway.webhookDeliveries(filter),
    requests: (filter = {}) => gateway.requests(filter),
    flushWebhooks: () => gateway.webhooks.flush(),
    settleWebhooks: () => gateway.webhooks.settle(),
    close: listening.close,
  };
}
