/**
 * The payment gateway's tests' fixtures: a gateway and a webhook receiver per
 * test file, the real `stripe` client pointed at it, raw calls for the wire
 * format, and holds no other test uses.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import { text } from "node:stream/consumers";
import Stripe from "stripe";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { startStripeGateway } from "../../../dev/stripe-gateway/index.ts";
import type { StripeGateway } from "../../../dev/stripe-gateway/index.ts";

export const API_KEY = "sk_test_local";
export const WEBHOOK_SECRET = "whsec_gateway_test_secret";

/** The running test file's gateway (set up by {@link useGateway}). */
export let gateway: StripeGateway;
/** The running test file's webhook endpoint, where `gateway` sends its events. */
export let receiver: WebhookReceiver;

/**
 * Starts a gateway and its webhook receiver for the calling test file, and
 * stops them after it. After each test: faults cleared, held events flushed,
 * and every delivery must have carried a valid signature.
 */
export function useGateway(): void {
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    gateway = await startStripeGateway({ port: 0, webhookUrl: receiver.url, webhookSecret: WEBHOOK_SECRET });
  });

  afterAll(async () => {
    await gateway.close();
    await receiver.close();
  });

  afterEach(async () => {
    gateway.clearFaults();
    await gateway.flushWebhooks();
    receiver.failNext(0);
    // Every delivery that reached the receiver carried a valid signature.
    expect(receiver.rejected).toEqual([]);
  });
}

/** The real client, pointed at the gateway; it retries like in production (same idempotency key). */
export function stripe(options: Stripe.StripeConfig = {}, apiKey = API_KEY): Stripe {
  return new Stripe(apiKey, { host: "127.0.0.1", port: gateway.port, protocol: "http", maxNetworkRetries: 2, timeout: 5_000, telemetry: false, ...options });
}

/** A hold no other test uses; its id goes into the PaymentIntent's metadata, as the Worker puts it. */
export function newHold(): { holdId: string; key: (attempt: number) => string } {
  const holdId = `hold_${randomUUID()}`;
  return { holdId, key: (attempt) => `${holdId}:attempt-${attempt}` };
}

export function createParams(holdId: string, extra: Partial<Stripe.PaymentIntentCreateParams> = {}): Stripe.PaymentIntentCreateParams {
  return { amount: 4_500, currency: "eur", metadata: { hold_id: holdId }, ...extra };
}

/** The rejection of `promise`, which must reject. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

export async function cardErrorOf(promise: Promise<unknown>): Promise<Stripe.errors.StripeCardError> {
  const error = await rejectionOf(promise);
  if (!(error instanceof Stripe.errors.StripeCardError)) throw error;
  return error;
}

/** A raw call, to check the wire format itself. */
export async function api(
  method: string,
  path: string,
  init: { form?: Record<string, string>; key?: string | null; idempotencyKey?: string; signal?: AbortSignal } = {},
): Promise<{ status: number; headers: Headers; text: string; body: unknown }> {
  const headers: Record<string, string> = {};
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? API_KEY}`;
  if (init.idempotencyKey !== undefined) headers["idempotency-key"] = init.idempotencyKey;
  const body = init.form === undefined ? undefined : new URLSearchParams(init.form).toString();
  if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  const response = await fetch(`${gateway.url}${path}`, { method, headers, body, signal: init.signal });
  const responseText = await response.text();
  return { status: response.status, headers: response.headers, text: responseText, body: JSON.parse(responseText) };
}

export async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${gateway.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

export interface Delivery {
  raw: string;
  signature: string;
  event: Stripe.Event;
}

export interface WebhookReceiver {
  url: string;
  /** Deliveries whose signature did not verify (none, ever, from the gateway). */
  rejected: { raw: string; signature: string; error: string }[];
  deliveriesFor(paymentIntent: string): Delivery[];
  eventsFor(paymentIntent: string): Stripe.Event[];
  typesFor(paymentIntent: string): string[];
  /** Answers the next `count` deliveries with 500. */
  failNext(count: number): void;
  close(): Promise<void>;
}

/** A webhook endpoint as the Worker's will be: it verifies every signature with the real library. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const rejected: WebhookReceiver["rejected"] = [];
  let failures = 0;
  const server = createServer((request, response) => {
    void text(request).then((raw) => {
      if (failures > 0) {
        failures -= 1;
        response.writeHead(500).end();
        return;
      }
      const signature = String(request.headers["stripe-signature"]);
      try {
        deliveries.push({ raw, signature, event: Stripe.webhooks.constructEvent(raw, signature, WEBHOOK_SECRET) });
        response.writeHead(200).end();
      } catch (error) {
        rejected.push({ raw, signature, error: String(error) });
        response.writeHead(400).end();
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const deliveriesFor = (paymentIntent: string) => deliveries.filter((delivery) => paymentIntentOf(delivery.event) === paymentIntent);
  return {
    url: `http://127.0.0.1:${address.port}/webhooks/stripe`,
    rejected,
    deliveriesFor,
    eventsFor: (paymentIntent) => deliveriesFor(paymentIntent).map((delivery) => delivery.event),
    typesFor: (paymentIntent) => deliveriesFor(paymentIntent).map((delivery) => delivery.event.type),
    failNext(count) {
      failures = count;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function paymentIntentOf(event: Stripe.Event): string | null {
  switch (event.type) {
    case "payment_intent.succeeded":
    case "payment_intent.payment_failed":
    case "payment_intent.canceled":
    case "payment_intent.requires_action":
      return event.data.object.id;
    case "charge.refunded":
    case "charge.dispute.created":
    case "charge.dispute.updated":
    case "charge.dispute.funds_withdrawn":
    case "charge.dispute.closed": {
      const intent = event.data.object.payment_intent;
      return typeof intent === "string" ? intent : (intent?.id ?? null);
    }
    default:
      return null;
  }
}
