/**
 * The waitlist and refund tests' harness: events that sell out in a few
 * seats, fans with sessions, holds straight through the inventory, the fan and
 * admin routes (mounted here as the Worker mounts them), payments through the
 * real payment route and the local gateway, and the mail outbox.
 *
 * Test files run in parallel against one Postgres, and other files' crons
 * serve every waitlist in it at their own fake time. So this harness's clock
 * starts far ahead (a year, never backwards) and events are created at that
 * time: to every other file our sales have not opened, so their passes leave
 * our waitlists alone; and our inventory alarms are never in the real past.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { and, eq, inArray, sql } from "drizzle-orm";
import { expect, vi } from "vitest";
import { z } from "zod";
import { app } from "../../workers/app";
import { saleOf } from "../../workers/checkout/payments";
import { writeSales } from "../../workers/checkout/sales-consumer";
import { accounts, orders, payments, waitlistEntries } from "../../core/db/schema";
import { signFanSession } from "../../workers/sign-in/fan-session";
import { inventoryForEvent } from "../../workers/holds/pick-inventory";
import type { HoldView, Inventory } from "../../core/holds/contract";
import { addApiKey } from "../../workers/organizers/api-keys";
import type { SeatingChart } from "../../workers/venues/seating-chart";
import { serveWaitlist, type ServeReport } from "../../workers/waitlist/serve";
import { openEvent, withDb } from "../durable-objects/fixtures";

export { withDb };

/** Where the app under test answers. */
export const ORIGIN = "https://tickets.test";

// ------------------------------------------------------------------ clock

const AHEAD_MS = 366 * 86_400_000;
let latestFake = 0;

/** The test clock: only `Date` is faked (the app, its Durable Objects and this file share one isolate). */
export const clock = {
  /** A year ahead of real time, and never before any earlier fake time of this file. */
  start(): void {
    vi.useFakeTimers({ toFake: ["Date"] });
    latestFake = Math.max(latestFake + 1_000, vi.getRealSystemTime() + AHEAD_MS);
    vi.setSystemTime(latestFake);
  },
  advance(ms: number): void {
    latestFake = Date.now() + ms;
    vi.setSystemTime(latestFake);
  },
  stop(): void {
    vi.useRealTimers();
  },
};

// ------------------------------------------------------------------ the app

// The Worker's app (workers/app.ts), called in this isolate so it shares the fake clock.

/** A response read in full. */
export interface Answer {
  status: number;
  json: unknown;
  text: string;
}

/** Calls the app with a bearer token (a fan session or an API key) and an optional JSON body. */
export async function call(method: string, path: string, options: { bearer?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.bearer) headers.Authorization = `Bearer ${options.bearer}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`${ORIGIN}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) }), env, ctx);
  const text = await response.text();
  await waitOnExecutionContext(ctx);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/** The error code of an error answer, after checking its status. */
export function errorCode(answer: Answer, status: number): string {
  expect(answer.status, answer.text).toBe(status);
  return z.object({ error: z.object({ code: z.string(), message: z.string().min(1) }) }).parse(answer.json).error.code;
}

// ------------------------------------------------------------------ events and fans

/** A fan: account, email and session. */
export interface Fan {
  accountId: string;
  email: string;
  session: string;
}

/** An event on sale, its organizer's API key and its fans. */
export interface Sale {
  eventId: string;
  organizerId: string;
  apiKey: string;
  demandClass: "calm" | "hot";
  fans: Fan[];
}

/** Section A (price tier A): seats 0-3 in one row; section B (tier B): seats 4-5. */
export function waitlistChart(): SeatingChart {
  return {
    name: `Club ${crypto.randomUUID()}`,
    sections: [
      { label: "A", priceTier: "A", rows: [{ label: "1", seats: 4 }] },
      { label: "B", priceTier: "B", rows: [{ label: "1", seats: 2 }] },
    ],
  };
}

/** Events created by the running test file, whose open entries `closeEntries` closes. */
const opened = new Set<string>();

/** Opens an event (on sale at the fake time) with `fans` accounts; a hot event's inventory is prepared. */
export async function openSale(options: { demandClass: "calm" | "hot"; fans: number; chart?: SeatingChart; holdTtlSeconds?: number; purchaseLimit?: number }): Promise<Sale> {
  const { event, organizerId, accounts: ids } = await openEvent({
    demandClass: options.demandClass,
    accounts: options.fans,
    chart: options.chart ?? waitlistChart(),
    holdTtlSeconds: options.holdTtlSeconds ?? 3600,
    purchaseLimit: options.purchaseLimit ?? 4,
  });
  opened.add(event.id);
  const { apiKey } = await withDb((db) => addApiKey(db, organizerId, "tests"));
  if (options.demandClass === "hot") await env.EVENT_INVENTORY.getByName(event.id).prepare(event.id);
  const rows = await withDb((db) => db.select({ id: accounts.id, email: accounts.email }).from(accounts).where(inArray(accounts.id, ids)));
  const emails = new Map(rows.map((r) => [r.id, r.email]));
  const fanList = await Promise.all(ids.map(async (accountId) => ({ accountId, email: emails.get(accountId) ?? "", session: await signFanSession(env.TOKEN_SIGNING_KEY, accountId) })));
  return { eventId: event.id, organizerId, apiKey, demandClass: options.demandClass, fans: fanList };
}

/** The `i`th fan of a sale. */
export function fan(sale: Sale, i: number): Fan {
  const found = sale.fans[i];
  if (!found) throw new Error(`no fan ${i}`);
  return found;
}

/** Closes the open entries of the events this file opened, so no other file's cron keeps visiting them. */
export async function closeEntries(): Promise<void> {
  if (opened.size === 0) return;
  const ids = [...opened];
  opened.clear();
  await withDb((db) =>
    db
      .update(waitlistEntries)
      .set({ status: "cancelled" })
      .where(and(inArray(waitlistEntries.eventId, ids), inArray(waitlistEntries.status, ["waiting", "offered"]))),
  );
}

// ------------------------------------------------------------------ the inventory

/** Runs `work` with the event's inventory (as the app picks it), then waits for what it left running. */
export async function withInventory<T>(eventId: string, work: (inventory: Inventory) => Promise<T>): Promise<T> {
  return withDb(async (db) => {
    const pending: Promise<unknown>[] = [];
    const inventory = await inventoryForEvent({ env, db, keepAlive: (p) => pending.push(p) }, eventId);
    try {
      return await work(inventory);
    } finally {
      await Promise.allSettled(pending);
    }
  });
}

/** Holds these seats for a fan; fails the test when refused. */
export async function holdSeats(sale: Sale, accountId: string, seatIndexes: number[]): Promise<HoldView> {
  const result = await withInventory(sale.eventId, (inventory) =>
    inventory.hold({ kind: "seats", accountId, attemptKey: crypto.randomUUID(), requestId: crypto.randomUUID(), seatIndexes }),
  );
  if (!result.ok) throw new Error(`hold of ${seatIndexes.join(",")} refused: ${result.reason}`);
  return result.hold;
}

/** Holds and confirms these seats for a fan (sold, no payment: they never come back on their own). */
export async function sellSeats(sale: Sale, accountId: string, seatIndexes: number[]): Promise<HoldView> {
  const hold = await holdSeats(sale, accountId, seatIndexes);
  const result = await withInventory(sale.eventId, (inventory) => inventory.confirm({ requestId: crypto.randomUUID(), holdId: hold.holdId, allowLapsed: false }));
  if (!result.ok) throw new Error(`confirm refused: ${result.reason}`);
  return result.hold;
}

/** Releases a fan's hold; fails the test when refused. */
export async function releaseHold(sale: Sale, accountId: string, holdId: string): Promise<void> {
  const result = await withInventory(sale.eventId, (inventory) => inventory.release({ accountId, requestId: crypto.randomUUID(), holdId }));
  if (!result.ok) throw new Error(`release refused: ${result.reason}`);
}

/** A hold as the inventory reports it. */
export function holdOf(sale: Sale, holdId: string): Promise<HoldView | null> {
  return withInventory(sale.eventId, (inventory) => inventory.getHold(holdId));
}

/** The seats free now, from the availability bitmap. */
export async function freeSeats(sale: Sale): Promise<number[]> {
  const availability = await withInventory(sale.eventId, (inventory) => inventory.availability());
  const free: number[] = [];
  for (let seat = 0; seat < availability.seatCount; seat++) {
    if (((availability.bitmap[seat >> 3] ?? 0) & (0x80 >> (seat & 7))) !== 0) free.push(seat);
  }
  return free;
}

/** One serving pass over the event's waitlist, as the cron and refunds run it. */
export async function serve(sale: Sale): Promise<ServeReport> {
  return withDb(async (db) => {
    const pending: Promise<unknown>[] = [];
    try {
      return await serveWaitlist({ env, db, keepAlive: (p) => pending.push(p) }, sale.eventId);
    } finally {
      await Promise.allSettled(pending);
    }
  });
}

// ------------------------------------------------------------------ waitlist entries

/** An entry as the fan API returns it. */
export const entrySchema = z.strictObject({
  entryId: z.uuid(),
  eventId: z.uuid(),
  quantity: z.number(),
  priceTier: z.string().nullable(),
  status: z.enum(["waiting", "offered", "fulfilled", "expired", "cancelled"]),
  position: z.number().nullable(),
  joinedAt: z.iso.datetime(),
  offer: z
    .strictObject({
      hold: z.object({ holdId: z.uuid(), status: z.string(), expiresAt: z.iso.datetime(), seats: z.array(z.object({ seatIndex: z.number(), priceTier: z.string() })), totalCents: z.number() }),
      paymentPath: z.string(),
    })
    .nullable(),
});
/** A waitlist entry on the wire. */
export type EntryJson = z.infer<typeof entrySchema>;

/** Joins the waitlist through the API; expects 201. */
export async function join(sale: Sale, who: Fan, body: { quantity: number; priceTier?: string }): Promise<EntryJson> {
  const answer = await call("POST", `/api/events/${sale.eventId}/waitlist`, { bearer: who.session, body });
  expect(answer.status, answer.text).toBe(201);
  return z.object({ entry: entrySchema }).parse(answer.json).entry;
}

/** The fan's entry through the API; expects 200. */
export async function myEntry(sale: Sale, who: Fan): Promise<EntryJson> {
  const answer = await call("GET", `/api/events/${sale.eventId}/waitlist`, { bearer: who.session });
  expect(answer.status, answer.text).toBe(200);
  return z.object({ entry: entrySchema }).parse(answer.json).entry;
}

/** Every entry of the event, in line order, as stored. */
export function entries(sale: Sale): Promise<(typeof waitlistEntries.$inferSelect)[]> {
  return withDb((db) => db.select().from(waitlistEntries).where(eq(waitlistEntries.eventId, sale.eventId)).orderBy(waitlistEntries.position));
}

/** The stored status of each fan's latest entry, by fan index (undefined: never joined). */
export async function statuses(sale: Sale): Promise<(string | undefined)[]> {
  const rows = await entries(sale);
  return sale.fans.map((f) => rows.filter((r) => r.accountId === f.accountId).at(-1)?.status);
}

// ------------------------------------------------------------------ mail and payments

const outboxSchema = z.object({ data: z.array(z.object({ subject: z.string(), text: z.string().nullable(), html: z.string().nullable(), to: z.array(z.string()) })) });

/** Emails the outbox holds for an address, newest first. */
export async function emailsTo(address: string): Promise<z.infer<typeof outboxSchema>["data"]> {
  const response = await fetch(`${env.MAIL_API_URL}/emails?to=${encodeURIComponent(address)}`);
  return outboxSchema.parse(await response.json()).data;
}

/** Waitlist offer emails sent to a fan. */
export async function offerEmails(who: Fan): Promise<{ subject: string; text: string | null; html: string | null }[]> {
  return (await emailsTo(who.email)).filter((m) => m.subject.includes("waitlist offer"));
}

/** Pays for a hold through the payment route with Stripe's test card; expects 200. */
export async function pay(sale: Sale, who: Fan, holdId: string): Promise<void> {
  const answer = await call("POST", `/api/events/${sale.eventId}/holds/${holdId}/payment`, { bearer: who.session, body: { paymentMethod: "pm_card_visa" } });
  expect(answer.status, answer.text).toBe(200);
}

/**
 * A paid order: the fan holds the seats, pays through the payment route, and
 * the sale is written as the sales consumer writes it (the queue's own
 * consumer may write it too; both are idempotent).
 */
export async function paidOrder(sale: Sale, who: Fan, seatIndexes: number[]): Promise<{ orderId: string; holdId: string; paymentIntentId: string; amountCents: number }> {
  const hold = await holdSeats(sale, who.accountId, seatIndexes);
  await pay(sale, who, hold.holdId);
  return withDb(async (db) => {
    const [payment] = await db.select().from(payments).where(and(eq(payments.holdId, hold.holdId), eq(payments.status, "succeeded")));
    if (!payment?.providerPaymentId) throw new Error("no succeeded payment");
    const confirmed = await holdOf(sale, hold.holdId);
    if (confirmed?.status !== "confirmed") throw new Error(`hold is ${confirmed?.status}`);
    await writeSales(db, [saleOf(confirmed, payment, payment.providerPaymentId)]);
    const [order] = await db.select({ id: orders.id }).from(orders).where(eq(orders.holdId, hold.holdId));
    if (!order) throw new Error("no order");
    return { orderId: order.id, holdId: hold.holdId, paymentIntentId: payment.providerPaymentId, amountCents: payment.amountCents };
  });
}

const chargeSchema = z.object({ id: z.string(), paymentIntent: z.string(), amount: z.number(), status: z.string(), amountRefunded: z.number() });

/** The gateway's charges of a PaymentIntent. */
export async function chargesOf(paymentIntentId: string): Promise<z.infer<typeof chargeSchema>[]> {
  const response = await fetch(`${env.STRIPE_API_BASE}/__charges?payment_intent=${encodeURIComponent(paymentIntentId)}`);
  return z.array(chargeSchema).parse(await response.json());
}

const gatewayRequestSchema = z.object({ method: z.string(), path: z.string(), idempotencyKey: z.string().nullable(), replayed: z.boolean() });

/** Refund requests the gateway received for a PaymentIntent (by their idempotency key). */
export async function refundRequestsOf(paymentIntentId: string): Promise<z.infer<typeof gatewayRequestSchema>[]> {
  const response = await fetch(`${env.STRIPE_API_BASE}/__requests?idempotency_key=${encodeURIComponent(`refund_${paymentIntentId}`)}`);
  return z.array(gatewayRequestSchema).parse(await response.json());
}

/** Counts rows (a tiny helper for assertions on Postgres). */
export async function countRows(query: ReturnType<typeof sql>): Promise<number> {
  const rows = await withDb((db) => db.execute<{ n: number }>(query));
  return rows.rows[0]?.n ?? 0;
}
