/**
 * What a browser test sets up before a fan opens a page: venues and events
 * through the organizers' admin API, fans signed in by emailed code (the code
 * read from the mail outbox's API, as a fan reads their inbox), and the
 * waiting room opened the way an operator opens it.
 */
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { inject } from "vitest";
import { z } from "zod";
import { newFanContext, nextFanIp, type DeviceName } from "./browser";
import { gatewayDashboard } from "../../fixtures/gateway-dashboard";

const WAIT_MS = 15_000;

/** Where the Worker answers (the pages' origin). */
export const appUrl = (): string => inject("appUrl");

/** A unique suffix, so tests sharing one database never collide. */
export const unique = (): string => crypto.randomUUID().slice(0, 8);

/** Polls `probe` until it returns a value (not undefined), or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function json<T>(response: Response, schema: z.ZodType<T>, what: string): Promise<T> {
  const text = await response.text();
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${text.slice(0, 500)}`);
  return schema.parse(JSON.parse(text));
}

// ---------------------------------------------------------------- organizers: the admin API

const eventView = z.object({
  id: z.uuid(),
  name: z.string(),
  demandClass: z.enum(["calm", "hot"]),
  saleStartsAt: z.string(),
  holdTtlSeconds: z.number(),
  declineRetrySeconds: z.number(),
  prices: z.array(z.object({ priceTier: z.string(), priceCents: z.number() })),
});

/** An event as the admin API answers (the fields the tests read). */
export type EventView = z.infer<typeof eventView>;

/** Calls the admin API with the browser tests' organizer key. */
export async function admin<T>(method: string, path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
  const response = await fetch(`${appUrl()}/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${inject("organizerApiKey")}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return json(response, schema, `${method} /admin${path}`);
}

/** A small theatre: Stalls (6 rows of 10) and a Balcony (3 rows of 8), two price tiers. */
function theatreChart(): unknown {
  return {
    name: `Theatre ${unique()}`,
    city: "Springfield",
    timezone: "UTC",
    sections: [
      { label: "Stalls", priceTier: "Stalls", rows: Array.from({ length: 6 }, (_, r) => ({ label: String.fromCharCode(65 + r), seats: 10 })) },
      { label: "Balcony", priceTier: "Balcony", rows: Array.from({ length: 3 }, (_, r) => ({ label: `BA${r + 1}`, seats: 8 })) },
    ],
  };
}

/** A standing floor of `capacity` places and nothing else: a hot event that sells out in one order. */
function floorChart(capacity: number): unknown {
  return { name: `Club ${unique()}`, city: "Springfield", timezone: "UTC", sections: [{ label: "Floor", name: "Standing floor", priceTier: "Floor", generalAdmission: { capacity } }] };
}

/** A stadium in miniature: two seated sections and a standing floor. */
function arenaChart(): unknown {
  return {
    name: `Arena ${unique()}`,
    city: "Springfield",
    timezone: "UTC",
    sections: [
      { label: "Floor", name: "Standing floor", priceTier: "Floor", generalAdmission: { capacity: 40 } },
      { label: "101", name: "Section 101", priceTier: "Lower bowl", rows: Array.from({ length: 5 }, (_, r) => ({ label: String(r + 1), seats: 12 })) },
      { label: "201", name: "Section 201", priceTier: "Upper bowl", rows: Array.from({ length: 5 }, (_, r) => ({ label: String(r + 1), seats: 12 })) },
    ],
  };
}

const DAY_MS = 24 * 3_600_000;

/** Creates a venue from `chart` and a published event there (USD, starting `inDays` from now) with `fields`. */
async function publishedEvent(chart: unknown, inDays: number, fields: Record<string, unknown>): Promise<EventView> {
  const venue = await admin("POST", "/venues", chart, z.object({ id: z.uuid() }));
  const startsAt = new Date(Date.now() + inDays * DAY_MS).toISOString();
  return admin("POST", "/events", { venueId: venue.id, startsAt, currency: "USD", status: "published", ...fields }, eventView);
}

/** A published calm event at a new theatre, on sale now (or from `saleStartsAt`). */
export async function calmEvent(
  options: { holdTtlSeconds?: number; declineRetrySeconds?: number; saleStartsAt?: string; prices?: { priceTier: "Stalls" | "Balcony"; priceCents: number }[] } = {},
): Promise<EventView> {
  return publishedEvent(theatreChart(), 30, {
    name: `Quiet Evening ${unique()}`,
    description: "A calm night of chamber music.",
    saleStartsAt: new Date(Date.now() - 60_000).toISOString(),
    demandClass: "calm",
    prices: [
      { priceTier: "Stalls", priceCents: 4_500 },
      { priceTier: "Balcony", priceCents: 2_500 },
    ],
    ...options,
  });
}

/**
 * A published hot event at a new arena (or, with `floorOnly`, a club of that
 * many standing places) whose sale opens in `saleInMinutes` (its lobby opens
 * 30 minutes before), with its inventory prepared as operators do before a
 * sale (unless `prepared` is false: then it is left for the test to prepare).
 */
export async function hotEvent(
  options: { saleInMinutes?: number; lobbyOpensMinutes?: number; admissionRatePerSecond?: number; floorOnly?: number; prepared?: boolean } = {},
): Promise<EventView> {
  const floorOnly = options.floorOnly;
  const event = await publishedEvent(floorOnly ? floorChart(floorOnly) : arenaChart(), 60, {
    name: `Stadium Tour ${unique()}`,
    description: "The tour everyone wants to see.",
    saleStartsAt: new Date(Date.now() + (options.saleInMinutes ?? 10) * 60_000).toISOString(),
    lobbyOpensMinutes: options.lobbyOpensMinutes ?? 30,
    expectedDemand: 1_000_000,
    admissionRatePerSecond: options.admissionRatePerSecond ?? 50,
    prices: [
      { priceTier: "Floor", priceCents: 15_000 },
      ...(floorOnly
        ? []
        : [
            { priceTier: "Lower bowl", priceCents: 9_500 },
            { priceTier: "Upper bowl", priceCents: 5_500 },
          ]),
    ],
  });
  if (options.prepared !== false) await admin("POST", `/events/${event.id}/prepare`, { promote: false }, z.object({ eventId: z.uuid() }));
  return event;
}

/**
 * Opens a hot event's sale now, as an organizer moving the sale start and an
 * operator then setting the admission rate: the admission-control route
 * reloads the waiting room's settings, and the room's alarm (a real one, in
 * Miniflare) admits the line from its next tick, about a second later.
 */
export async function openSaleNow(eventId: string, admission: { ratePerSecond?: number; paused?: boolean } = { ratePerSecond: 50 }): Promise<void> {
  await admin("PATCH", `/events/${eventId}`, { saleStartsAt: new Date().toISOString() }, eventView);
  await setAdmission(eventId, admission);
}

/** Changes the admission rate, or pauses or resumes admission, through the admin API. */
export async function setAdmission(eventId: string, admission: { ratePerSecond?: number; paused?: boolean }): Promise<void> {
  await admin("PATCH", `/events/${eventId}/admission`, admission, z.object({ threshold: z.number() }));
}

// ---------------------------------------------------------------- fans: sign-in by emailed code

/** A fan session as the pages keep it (static/js/api.js). */
export interface FanSession {
  token: string;
  accountId: string;
  expiresAt: string;
  email: string;
}

const SESSION_KEY = "edge-tickets.session";
const outboxList = z.object({ data: z.array(z.object({ subject: z.string(), created_at: z.string() })) });
const CODE_SUBJECT = /^(\d{6}) is your Edge Tickets sign-in code$/;

/** A new fan's email address. */
export const fanEmail = (name = "fan"): string => `${name}-${unique()}@example.com`;

/** The newest sign-in code emailed to `email` after `since` (epoch ms), from the mail outbox's API. */
export async function signInCode(email: string, since: number): Promise<string> {
  return waitFor(`a sign-in code for ${email}`, async () => {
    const response = await fetch(`${inject("mailOutboxUrl")}/emails?to=${encodeURIComponent(email)}`);
    const { data } = await json(response, outboxList, "the mail outbox");
    for (const email of data) {
      const code = CODE_SUBJECT.exec(email.subject)?.[1];
      if (code && Date.parse(email.created_at) >= since - 1_000) return code;
    }
    return undefined;
  });
}

/** Signs a fan in through the API (a code by email, then a session), from their own IP address. */
export async function signInByApi(email: string, ip = nextFanIp()): Promise<FanSession> {
  const headers = { "Content-Type": "application/json", "CF-Connecting-IP": ip };
  const since = Date.now();
  const { challenge } = await json(
    await fetch(`${appUrl()}/api/auth/code`, { method: "POST", headers, body: JSON.stringify({ email }) }),
    z.object({ challenge: z.string() }),
    "POST /api/auth/code",
  );
  const code = await signInCode(email, since);
  const session = await json(
    await fetch(`${appUrl()}/api/auth/session`, { method: "POST", headers, body: JSON.stringify({ email, challenge, code }) }),
    z.object({ token: z.string(), accountId: z.uuid(), expiresAt: z.string() }),
    "POST /api/auth/session",
  );
  return { ...session, email };
}

/**
 * Signs a fan in through the sign-in page, as a fan does: email, the code
 * from the inbox, then back to where the page was sent from.
 */
export async function signInThroughPage(page: Page, email: string, onCodeForm?: () => Promise<void>): Promise<void> {
  await page.getByLabel("Email address").fill(email);
  const since = Date.now();
  await page.getByRole("button", { name: "Email me a code" }).click();
  await page.getByLabel("6-digit code").waitFor();
  await onCodeForm?.();
  await page.getByLabel("6-digit code").fill(await signInCode(email, since));
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL((url) => url.pathname !== "/signin");
}

/** A fan's browser context, signed in already when a session is given. */
export async function newFan(browser: Browser, device: DeviceName, session?: FanSession): Promise<BrowserContext> {
  return newFanContext(browser, device, { baseURL: appUrl(), localStorage: session ? { [SESSION_KEY]: JSON.stringify(session) } : {} });
}

/** What Cloudflare's test site key gives the page, and the stand-in's test secret accepts. */
const TEST_TURNSTILE_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";

/** Puts a signed-in fan in a hot event's line through the API (from their own IP and device, unless told); returns their order key. */
export async function joinLobby(eventId: string, session: FanSession, ip = nextFanIp(), deviceId = `device-${unique()}`): Promise<number> {
  const response = await fetch(`${appUrl()}/api/events/${eventId}/lobby`, {
    method: "POST",
    headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json", "CF-Connecting-IP": ip },
    body: JSON.stringify({ turnstileToken: TEST_TURNSTILE_TOKEN, deviceId }),
  });
  return (await json(response, z.object({ orderKey: z.number() }), `POST /api/events/${eventId}/lobby`)).orderKey;
}

/** A seat button on the event page's map: `section` (its name), `row` label, seat number. */
export function seatButton(page: Page, section: string, row: string, seat: number): Locator {
  return page.locator(".seat-section", { hasText: section }).getByRole("button", { name: new RegExp(`^Row ${row}, seat ${seat},`) });
}

/**
 * Waits until the event page's seat map knows which seats are free (its first
 * availability snapshot): until then every seat shows as taken and a tap on
 * one does nothing.
 */
export async function seatMapReady(page: Page): Promise<void> {
  await page.locator('.seat[aria-label*="$"]').first().waitFor();
}

/** Picks seats on the open event page (tapping on a touch screen, clicking otherwise) and holds them; resolves once checkout has loaded. */
export async function holdOnMap(page: Page, seats: { section: string; row: string; seat: number }[], touch = false): Promise<void> {
  await seatMapReady(page);
  for (const { section, row, seat } of seats) {
    const button = seatButton(page, section, row, seat);
    await (touch ? button.tap() : button.click());
  }
  await page.getByRole("button", { name: `Hold ${seats.length} seat${seats.length === 1 ? "" : "s"}` }).click();
  await page.waitForURL(/\/checkout\?/);
  await page.getByRole("button", { name: /^(Pay |Get these free tickets$)/ }).waitFor();
}

/** The hold's end (epoch ms, server time) through the API, as the fan's session sees it. */
export async function holdExpiresAt(eventId: string, holdId: string, session: FanSession): Promise<number> {
  const response = await fetch(`${appUrl()}/api/events/${eventId}/holds/${holdId}`, { headers: { Authorization: `Bearer ${session.token}` } });
  return Date.parse((await json(response, z.object({ hold: z.object({ expiresAt: z.string() }) }), "GET hold")).hold.expiresAt);
}

/** Holds these seats of a calm event through the API, as the seat map does; returns the hold's id. */
export async function holdByApi(eventId: string, session: FanSession, seats: number[]): Promise<string> {
  const headers = { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" };
  const held = await json(
    await fetch(`${appUrl()}/api/events/${eventId}/holds`, { method: "POST", headers, body: JSON.stringify({ requestId: crypto.randomUUID(), seats }) }),
    z.object({ hold: z.object({ holdId: z.uuid() }) }),
    "POST hold",
  );
  return held.hold.holdId;
}

/** Buys seats (by seat index) through the API with the test card that succeeds; resolves with the hold's id once the payment has succeeded. */
export async function buyByApi(eventId: string, session: FanSession, seats: number[]): Promise<string> {
  const headers = { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" };
  const holdId = await holdByApi(eventId, session, seats);
  const paid = await json(
    await fetch(`${appUrl()}/api/events/${eventId}/holds/${holdId}/payment`, { method: "POST", headers, body: JSON.stringify({ paymentMethod: "pm_card_visa" }) }),
    z.object({ payment: z.object({ status: z.string() }) }),
    "POST payment",
  );
  if (paid.payment.status !== "succeeded") throw new Error(`the payment is ${paid.payment.status}`);
  return holdId;
}

const webhookDelivery = z.object({ type: z.string(), status: z.string(), payload: z.string(), signature: z.string() });

/**
 * Sends the Worker every webhook the payment gateway recorded for an event's
 * payments (the test stack's gateway records them, signed, and sends none by
 * itself), as Stripe would deliver them; each must be accepted. With `types`,
 * only the deliveries of those event types are sent.
 */
export async function deliverWebhooks(eventId: string, types?: string[]): Promise<string[]> {
  const query = new URLSearchParams({ "metadata[event_id]": eventId });
  const response = await fetch(`${inject("stripeApiBase")}/__webhooks?${query.toString()}`);
  const deliveries = z
    .array(webhookDelivery)
    .parse(await response.json())
    .filter((delivery) => types === undefined || types.includes(delivery.type));
  for (const delivery of deliveries) {
    const sent = await fetch(`${appUrl()}/webhooks/stripe`, {
      method: "POST",
      headers: { "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": delivery.signature },
      body: delivery.payload,
    });
    if (sent.status !== 200) throw new Error(`webhook ${delivery.type} answered ${sent.status}: ${await sent.text()}`);
  }
  return deliveries.map((delivery) => delivery.type);
}

// ---------------------------------------------------------------- the payment gateway: the Stripe dashboard and the card networks

/** The test stack's payment gateway, as the Stripe dashboard and the banks act on it (test/fixtures/gateway-dashboard.ts). */
const dashboard = () => gatewayDashboard(inject("stripeApiBase"), "sk_test_local");

/** The PaymentIntent a hold was paid with. */
async function paymentIntentOf(holdId: string): Promise<string> {
  const response = await fetch(`${inject("stripeApiBase")}/__payment_intents?${new URLSearchParams({ "metadata[hold_id]": holdId }).toString()}`);
  const [intent] = await json(response, z.array(z.object({ id: z.string() })), `the PaymentIntents of hold ${holdId}`);
  if (!intent) throw new Error(`no PaymentIntent for hold ${holdId}`);
  return intent.id;
}

/** The cardholder's bank disputes a hold's payment: the gateway records the signed `charge.dispute.created`, which `deliverWebhooks` sends. Resolves with the dispute's id. */
export async function disputePayment(holdId: string, reason = "fraudulent"): Promise<string> {
  return dashboard().dispute(await paymentIntentOf(holdId), reason);
}

/** The organizer refunds a hold's payment in the Stripe dashboard, in full or `amountCents` of it: the gateway records `charge.refunded` for `deliverWebhooks`. */
export async function refundInDashboard(holdId: string, amountCents?: number): Promise<void> {
  await dashboard().refund(await paymentIntentOf(holdId), amountCents);
}

/** The merchant answers a dispute through Stripe's API; in test mode `winning_evidence` wins it, `losing_evidence` loses it (`charge.dispute.updated`, then `.closed`). */
export async function answerDispute(disputeId: string, evidence: "winning_evidence" | "losing_evidence"): Promise<void> {
  await dashboard().answerDispute(disputeId, evidence);
}
