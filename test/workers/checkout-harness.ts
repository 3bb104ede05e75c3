/**
 * The checkout tests' harness: events on sale, fans holding and paying through
 * the Worker's routes, the local payment gateway's faults and records (over
 * its HTTP control API, shared by every test file: every fault is scoped to
 * one hold), webhook deliveries posted to the Worker as the gateway recorded
 * them, the cron's pass run directly, and a fake clock that also moves the
 * Worker and its Durable Objects (one isolate).
 */
import { env, SELF } from "cloudflare:test";
import { eq, inArray, sql } from "drizzle-orm";
import { afterAll, beforeAll, expect, vi } from "vitest";
import { z } from "zod";
import type { FaultSpec } from "../../dev/stripe-gateway";
import { runScheduledJobs } from "../../workers/scheduled";
import { loadConfig } from "../../core/config";
import { createDb } from "../../core/db/client";
import type { ReconcileReport } from "../../workers/checkout/payments";
import { events, orders, payments, tickets } from "../../core/db/schema";
import { signFanSession } from "../../workers/sign-in/fan-session";
import { addApiKey } from "../../workers/organizers/api-keys";
import type { SeatingChart } from "../../workers/venues/seating-chart";
import { signAdmissionToken } from "../../workers/waiting-room/tokens";
import { openEvent, smallChart, withDb } from "../durable-objects/fixtures";
import { adminRequest, ORIGIN } from "./helpers";

// ------------------------------------------------------------------ clock

/** The latest fake time handed out in this file: fake time only moves forward. */
let latestFake = 0;

/**
 * The test clock. Only `Date` is faked, so it moves `Date.now()` in the
 * Worker's routes, its cron and its Durable Objects alike. Fake time starts a
 * minute ahead of real time and never goes back, so an inventory alarm set at
 * a fake time is never in the real past (where it would fire on its own, over
 * and over, before the fake clock reached it).
 */
export const clock = {
  start(): void {
    vi.useFakeTimers({ toFake: ["Date"] });
    latestFake = Math.max(latestFake, vi.getRealSystemTime()) + 60_000;
    vi.setSystemTime(latestFake);
  },
  advance(ms: number): void {
    latestFake = Date.now() + ms;
    vi.setSystemTime(latestFake);
  },
  /** Moves to `at` (never backwards). */
  to(at: number): void {
    latestFake = Math.max(Date.now(), at);
    vi.setSystemTime(latestFake);
  },
  stop(): void {
    vi.useRealTimers();
  },
};

// ------------------------------------------------------------------ the gateway

const gatewayBase = env.STRIPE_API_BASE;

const chargeSchema = z.object({
  id: z.string(),
  paymentIntent: z.string(),
  amount: z.number(),
  status: z.enum(["succeeded", "failed"]),
  amountRefunded: z.number(),
  declineCode: z.string().nullable(),
  idempotencyKey: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
});
/** One charge attempt as the gateway recorded it. */
export type GatewayCharge = z.infer<typeof chargeSchema>;

const deliverySchema = z.object({
  id: z.string(),
  eventId: z.string(),
  type: z.string(),
  paymentIntent: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
  status: z.enum(["held", "pending", "delivered", "failed", "dropped", "no_endpoint"]),
  duplicate: z.boolean(),
  payload: z.string(),
  signature: z.string(),
});
/** One webhook delivery as the gateway recorded it: `payload` is the exact body it signed. */
export type WebhookDelivery = z.infer<typeof deliverySchema>;

const requestSchema = z.object({
  method: z.string(),
  path: z.string(),
  idempotencyKey: z.string().nullable(),
  outcome: z.union([z.number(), z.string()]),
  replayed: z.boolean(),
  fault: z.string().nullable(),
});
/** One API request the gateway received. */
export type GatewayRequest = z.infer<typeof requestSchema>;

async function gatewayJson(method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${gatewayBase}${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`gateway ${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

/** Fault ids added by the running test, removed by `clearFaults`. */
const addedFaults = new Set<string>();

/** Injects a fault; its `match` must name the hold (or an idempotency key) so other tests never meet it. */
export async function addFault(spec: FaultSpec): Promise<string> {
  if (spec.match?.metadata?.hold_id === undefined && spec.match?.idempotencyKey === undefined) throw new Error("scope every fault to one hold");
  const { id } = z.object({ id: z.string() }).parse(await gatewayJson("POST", "/__faults", spec));
  addedFaults.add(id);
  return id;
}

/** Removes the faults this test added that have not run out. */
export async function clearFaults(): Promise<void> {
  for (const id of addedFaults) {
    const response = await fetch(`${gatewayBase}/__faults/${encodeURIComponent(id)}`, { method: "DELETE" });
    await response.body?.cancel();
  }
  addedFaults.clear();
}

function metadataQuery(metadata: Record<string, string>): string {
  return new URLSearchParams(Object.entries(metadata).map(([key, value]) => [`metadata[${key}]`, value])).toString();
}

/** Every charge attempt the gateway made for a hold, oldest first. */
export async function chargesOf(holdId: string): Promise<GatewayCharge[]> {
  return z.array(chargeSchema).parse(await gatewayJson("GET", `/__charges?${metadataQuery({ hold_id: holdId })}`));
}

/** Charges that took money and kept it. */
export function keptCharges(charges: GatewayCharge[]): GatewayCharge[] {
  return charges.filter((charge) => charge.status === "succeeded" && charge.amountRefunded < charge.amount);
}

/** Every webhook delivery the gateway recorded for these metadata (e.g. a hold or an event), oldest first. */
export async function webhooksOf(metadata: Record<string, string>): Promise<WebhookDelivery[]> {
  return z.array(deliverySchema).parse(await gatewayJson("GET", `/__webhooks?${metadataQuery(metadata)}`));
}

const intentSchema = z.object({ id: z.string(), status: z.string(), latest_charge: z.string().nullable() });
/** A PaymentIntent as the gateway shows it. */
export type GatewayIntent = z.infer<typeof intentSchema>;

/** Every PaymentIntent the gateway holds for a hold, newest first. */
export async function intentsOf(holdId: string): Promise<GatewayIntent[]> {
  return z.array(intentSchema).parse(await gatewayJson("GET", `/__payment_intents?${metadataQuery({ hold_id: holdId })}`));
}

/** Every API request the gateway received about a hold's payments, oldest first. */
export async function requestsOf(holdId: string): Promise<GatewayRequest[]> {
  return z.array(requestSchema).parse(await gatewayJson("GET", `/__requests?${metadataQuery({ hold_id: holdId })}`));
}

/** Releases held (delayed, reordered) webhooks: they become deliverable. */
export async function flushWebhooks(): Promise<void> {
  await gatewayJson("POST", "/__webhooks/flush");
}

/** Deliveries the gateway sent (to nobody: the tests post them), i.e. neither held nor dropped. */
export function sent(deliveries: WebhookDelivery[]): WebhookDelivery[] {
  return deliveries.filter((delivery) => delivery.status === "no_endpoint" || delivery.status === "delivered" || delivery.status === "failed");
}

/** Stripe's default signature tolerance. */
const SIGNATURE_TOLERANCE_S = 300;

/**
 * Posts a delivery to the Worker's webhook endpoint with its exact payload.
 * Stripe signs every delivery attempt when it sends it; the gateway signed
 * this one when it recorded it, in real time. When the fake clock has moved
 * past the signature's tolerance the payload is signed again with the
 * endpoint's secret at the current (fake) time, as Stripe would sign a later
 * attempt.
 */
export async function deliver(delivery: WebhookDelivery, signature?: string): Promise<{ status: number; body: string }> {
  signature ??= await freshSignature(delivery);
  const response = await SELF.fetch(`${ORIGIN}/webhooks/stripe`, {
    method: "POST",
    headers: { "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature },
    body: delivery.payload,
  });
  return { status: response.status, body: await response.text() };
}

/** The delivery's own signature while it is within Stripe's tolerance, else the payload signed anew at the current time. */
export async function freshSignature(delivery: WebhookDelivery): Promise<string> {
  const signedAt = Number(/t=(\d+)/.exec(delivery.signature)?.[1] ?? 0);
  const now = Math.floor(Date.now() / 1000);
  return Math.abs(now - signedAt) < SIGNATURE_TOLERANCE_S - 10 ? delivery.signature : sign(delivery.payload, now);
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`, as Stripe signs. */
export async function sign(payload: string, timestamp: number, secret = env.STRIPE_WEBHOOK_SECRET): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${timestamp}.${payload}`)));
  return `t=${timestamp},v1=${[...mac].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** Posts every sent delivery of a hold (in the order given), each expected to be accepted. */
export async function deliverAll(deliveries: WebhookDelivery[]): Promise<void> {
  for (const delivery of deliveries) {
    const response = await deliver(delivery);
    expect(response.status, response.body).toBe(200);
  }
}

// ------------------------------------------------------------------ events, fans, holds, payments

/** A fan: an account and its sign-in session. */
export interface Fan {
  accountId: string;
  session: string;
}

/** An event on sale, its organizer and its fans. */
export interface Sale {
  eventId: string;
  organizerId: string;
  demandClass: "calm" | "hot";
  fans: Fan[];
}

/** Opens an event (sale on, decline retry window `declineRetrySeconds`, default none) with `fans` accounts; a hot event's inventory is prepared. */
export async function openSale(options: {
  demandClass: "calm" | "hot";
  fans?: number;
  declineRetrySeconds?: number;
  holdTtlSeconds?: number;
  purchaseLimit?: number;
  chart?: SeatingChart;
}): Promise<Sale> {
  const { event, organizerId, accounts } = await openEvent({
    demandClass: options.demandClass,
    accounts: options.fans ?? 3,
    holdTtlSeconds: options.holdTtlSeconds ?? 600,
    purchaseLimit: options.purchaseLimit ?? 4,
    chart: options.chart ?? smallChart(),
  });
  await withDb((db) => db.update(events).set({ declineRetrySeconds: options.declineRetrySeconds ?? 0 }).where(eq(events.id, event.id)));
  if (options.demandClass === "hot") await env.EVENT_INVENTORY.getByName(event.id).prepare(event.id);
  const fans = await Promise.all(accounts.map(async (accountId) => ({ accountId, session: await signFanSession(env.TOKEN_SIGNING_KEY, accountId) })));
  return { eventId: event.id, organizerId, demandClass: options.demandClass, fans };
}

/** Cancels the event as its organizer does, through the admin API; fails the test unless it is answered 200. */
export async function cancelSale(sale: Sale): Promise<void> {
  const { apiKey } = await withDb((db) => addApiKey(db, sale.organizerId, "tests"));
  const response = await adminRequest(apiKey, "POST", `/events/${sale.eventId}/cancel`);
  expect(response.status, response.text).toBe(200);
}

const holdSchema = z.object({
  holdId: z.uuid(),
  status: z.enum(["live", "confirmed", "released", "expired"]),
  expiresAt: z.iso.datetime(),
  seats: z.array(z.object({ seatIndex: z.number() })),
  totalCents: z.number(),
});
/** A hold as the API returns it. */
export type Hold = z.infer<typeof holdSchema>;

async function api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await SELF.fetch(`${ORIGIN}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/**
 * Holds these seats for a fan through the API: with an admission token for a
 * hot event (as the waiting room issues them), with the fan's session for a
 * calm one. These tests are about payments, not the one-attempt-per-5-s limit:
 * a hot event's call uses a fresh admission token (the limit counts per token),
 * and before a calm event's call the fan's last attempt is forgotten (the limit
 * counts per account there), as if 5 s had passed. Returns the hold, or the
 * refusal's code.
 */
export async function tryHold(sale: Sale, fan: Fan, seats: number[]): Promise<{ ok: true; hold: Hold } | { ok: false; status: number; code: string }> {
  if (sale.demandClass === "calm") {
    await withDb((db) => db.execute(sql`delete from inventory_attempts where event_id = ${sale.eventId} and attempt_key = ${fan.accountId}`));
  }
  const token =
    sale.demandClass === "hot"
      ? await signAdmissionToken(env.TOKEN_SIGNING_KEY, { accountId: fan.accountId, eventId: sale.eventId, admissionId: crypto.randomUUID(), expiresAt: Date.now() + 15 * 60_000 })
      : await signFanSession(env.TOKEN_SIGNING_KEY, fan.accountId);
  const response = await api(token, "POST", `/api/events/${sale.eventId}/holds`, { requestId: crypto.randomUUID(), seats });
  if (response.status === 201) return { ok: true, hold: z.object({ hold: holdSchema }).parse(response.json).hold };
  return { ok: false, status: response.status, code: z.object({ error: z.object({ code: z.string() }) }).parse(response.json).error.code };
}

/** Holds these seats; fails the test if refused. */
export async function holdSeats(sale: Sale, fan: Fan, seats: number[]): Promise<Hold> {
  const result = await tryHold(sale, fan, seats);
  if (!result.ok) throw new Error(`hold of seats ${seats.join(",")} refused: ${result.status} ${result.code}`);
  expect(result.hold.status).toBe("live");
  return result.hold;
}

/** The hold as its owner sees it now. */
export async function getHold(sale: Sale, fan: Fan, holdId: string): Promise<Hold> {
  const response = await api(fan.session, "GET", `/api/events/${sale.eventId}/holds/${holdId}`);
  expect(response.status, response.text).toBe(200);
  return z.object({ hold: holdSchema }).parse(response.json).hold;
}

const paymentSchema = z.object({
  paymentId: z.uuid(),
  holdId: z.uuid(),
  attempt: z.number(),
  status: z.enum(["pending", "unknown", "succeeded", "failed", "canceled", "refunded"]),
  amountCents: z.number(),
  currency: z.string(),
  retryUntil: z.string().nullable(),
  lastError: z.string().nullable(),
});
/** A payment as the API returns it. */
export type PaymentJson = z.infer<typeof paymentSchema>;

/** What `POST .../payment` answered: the payment (200, 202, 402) or an error code. */
export type PayResponse = { status: 200 | 202 | 402; payment: PaymentJson } | { status: number; code: string };

/** Pays for a hold through the API, as the fan's checkout page does. */
export async function pay(sale: Sale, fan: Fan, holdId: string, paymentMethod: string): Promise<PayResponse> {
  const response = await api(fan.session, "POST", `/api/events/${sale.eventId}/holds/${holdId}/payment`, { paymentMethod });
  if (response.status === 200 || response.status === 202 || response.status === 402) {
    return { status: response.status, payment: z.object({ payment: paymentSchema }).parse(response.json).payment };
  }
  const parsed = z.object({ error: z.object({ code: z.string() }) }).safeParse(response.json);
  if (!parsed.success) throw new Error(`payment answered ${response.status}: ${response.text}`);
  return { status: response.status, code: parsed.data.error.code };
}

/** Pays and expects `status`; returns the payment. */
export async function payExpecting(sale: Sale, fan: Fan, holdId: string, paymentMethod: string, status: 200 | 202 | 402): Promise<PaymentJson> {
  const response = await pay(sale, fan, holdId, paymentMethod);
  if (!("payment" in response) || response.status !== status) throw new Error(`expected ${status}, got ${JSON.stringify(response)}`);
  return response.payment;
}

/** The latest payment of a hold, as its owner polls it. */
export async function latestPayment(sale: Sale, fan: Fan, holdId: string): Promise<PaymentJson> {
  const response = await api(fan.session, "GET", `/api/events/${sale.eventId}/holds/${holdId}/payment`);
  expect(response.status, response.text).toBe(200);
  return z.object({ payment: paymentSchema }).parse(response.json).payment;
}

// ------------------------------------------------------------------ the cron and the consumer

/** Runs one pass of the every-minute cron at the current (fake) time, and waits for what it left running. */
export async function runCron(): Promise<ReconcileReport> {
  const pending: Promise<unknown>[] = [];
  const report = await runScheduledJobs(env, (promise) => pending.push(promise), Date.now());
  await Promise.allSettled(pending);
  if (!report.payments) throw new Error("the reconciliation pass failed (see the log)");
  return report.payments;
}

/** What Postgres holds for one hold's sale. */
export interface SaleRows {
  orders: { id: string; status: string; totalCents: number }[];
  tickets: { id: string; orderId: string; seatIndex: number | null }[];
  payments: { id: string; status: string; orderId: string | null; attempt: number; providerPaymentId: string | null }[];
}

/** The orders, tickets and payments of a hold. */
export async function saleRows(holdId: string): Promise<SaleRows> {
  return withDb(async (db) => {
    const orderRows = await db.select({ id: orders.id, status: orders.status, totalCents: orders.totalCents }).from(orders).where(eq(orders.holdId, holdId));
    const ticketRows =
      orderRows.length === 0
        ? []
        : await db
            .select({ id: tickets.id, orderId: tickets.orderId, seatIndex: tickets.seatIndex })
            .from(tickets)
            .where(
              inArray(
                tickets.orderId,
                orderRows.map((o) => o.id),
              ),
            );
    const paymentRows = await db
      .select({ id: payments.id, status: payments.status, orderId: payments.orderId, attempt: payments.attempt, providerPaymentId: payments.providerPaymentId })
      .from(payments)
      .where(eq(payments.holdId, holdId))
      .orderBy(payments.attempt);
    return { orders: orderRows, tickets: ticketRows, payments: paymentRows };
  });
}

/**
 * Waits (bounded, polling Postgres) until the sales consumer, which the queue
 * runs on its own in the test environment, has written the hold's order and
 * linked its payment; returns the rows.
 */
export async function confirmedSale(holdId: string, seats: number): Promise<SaleRows> {
  return vi.waitFor(
    async () => {
      const rows = await saleRows(holdId);
      const paid = rows.payments.filter((p) => p.status === "succeeded");
      if (rows.orders.length !== 1 || rows.tickets.length !== seats || paid.length !== 1 || paid[0]?.orderId !== rows.orders[0]?.id) {
        throw new Error(`sale of hold ${holdId} not written yet: ${JSON.stringify(rows)}`);
      }
      return rows;
    },
    { timeout: 20_000, interval: 100 },
  );
}

/** Asserts a hold ended as exactly one confirmed order with a ticket per seat and exactly one kept charge. */
export async function expectConfirmed(holdId: string, seats: number[]): Promise<SaleRows> {
  const rows = await confirmedSale(holdId, seats.length);
  expect(rows.orders).toHaveLength(1);
  expect(rows.orders[0]?.status).toBe("confirmed");
  expect(rows.tickets.map((t) => t.seatIndex).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([...seats].sort((a, b) => a - b));
  const charges = await chargesOf(holdId);
  expect(keptCharges(charges)).toHaveLength(1);
  expect(keptCharges(charges)[0]?.paymentIntent).toBe(rows.payments.find((p) => p.status === "succeeded")?.providerPaymentId);
  return rows;
}

/** Asserts a hold has no order and no charge that kept money. */
export async function expectNoSale(holdId: string): Promise<void> {
  const rows = await saleRows(holdId);
  expect(rows.orders).toEqual([]);
  expect(rows.tickets).toEqual([]);
  expect(keptCharges(await chargesOf(holdId))).toEqual([]);
}

/** A hold's payment rows, straight from Postgres, by attempt. */
export async function paymentRows(holdId: string): Promise<(typeof payments.$inferSelect)[]> {
  return withDb((db) => db.select().from(payments).where(eq(payments.holdId, holdId)).orderBy(payments.attempt));
}

// ------------------------------------------------------------------ queues

const noMetrics = { backlogCount: 0, backlogBytes: 0 };

/** A queue binding that records what is sent to it, or fails every send while `failure` is set. */
export class RecordingQueue implements Queue<unknown> {
  readonly bodies: unknown[] = [];
  failure: Error | undefined;

  async metrics(): Promise<QueueMetrics> {
    return noMetrics;
  }

  async send(message: unknown): Promise<QueueSendResponse> {
    if (this.failure) throw this.failure;
    this.bodies.push(message);
    return { metadata: { metrics: noMetrics } };
  }

  async sendBatch(messages: Iterable<MessageSendRequest<unknown>>): Promise<QueueSendBatchResponse> {
    if (this.failure) throw this.failure;
    for (const message of messages) this.bodies.push(message.body);
    return { metadata: { metrics: noMetrics } };
  }
}

/** The test environment with some bindings replaced. */
export function envWith(overrides: Partial<Env>): Env {
  return { ...env, ...overrides };
}

// ------------------------------------------------------------------ one cron at a time

/** The advisory lock the files that run the cron take for their whole run (any 64-bit number of our own). */
const CRON_LOCK = 5_150_241_771;

/**
 * The cron reconciles every open payment in the database, at whatever fake
 * time its caller runs it. Two test files running it in parallel, each at its
 * own fake time, would settle each other's payments at moments neither test
 * chose. Each file that runs the cron calls this once: its tests run while it
 * holds a Postgres advisory lock, so such files run one after another.
 */
export function runCronExclusively(): void {
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const { db, close } = createDb(loadConfig(env));
    const client = await db.$client.connect();
    await client.query("select pg_advisory_lock($1)", [CRON_LOCK]);
    release = async () => {
      await client.query("select pg_advisory_unlock($1)", [CRON_LOCK]);
      client.release();
      await close();
    };
  }, 30 * 60_000);
  afterAll(async () => {
    await release?.();
  });
}
