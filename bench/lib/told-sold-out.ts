/**
 * How soon waiting fans learn of a sell-out (`npm run bench -- queue`, phase
 * `sold_out`): a small hot event (SEATS seats, 2 a fan) whose buyers join the
 * lobby, are admitted, exchange their tickets and hold every seat, one hold
 * after another, while POLLERS fans who are still waiting poll the queue
 * document as the queue page does (every POLL_MS, each from a random phase,
 * through the Worker's real route and the data centre's cache).
 *
 * `told_sold_out_*_s`: for each poller, from the moment the last place was
 * taken (the `createdAt` of the last hold, stamped by the inventory object on
 * this machine's clock) to the first answer it read saying `soldOut`. That
 * covers the room's next tick (it learns from the inventory's grant), the
 * cache's second and the poller's own interval.
 */
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN } from "../../dev/turnstile.ts";
import type { Db } from "../../core/db/client.ts";
import { signFanSession } from "../../workers/sign-in/fan-session.ts";
import { seatingChartSchema } from "../../workers/venues/seating-chart.ts";
import { importVenue } from "../../workers/venues/venues.ts";
import { adminJson, round } from "./admin-api.ts";
import type { BenchApp } from "./app.ts";
import { createFanAccounts } from "./fans.ts";
import { createHotBenchEvent } from "./hot-event.ts";
import { say, sleep, stopping } from "./scenario.ts";
import { quantile } from "./statistics.ts";

const SEATS = 40;
const PURCHASE_LIMIT = 2;
const BUYERS = SEATS / PURCHASE_LIMIT;
const POLLERS = 200;
/** The queue page's poll interval (static/js/queue.js POLL_MS). */
const POLL_MS = 2_000;
const SALE_STARTS_IN_MS = 20_000;
/** Pollers keep polling this long after the last hold at most. */
const TOLD_TIMEOUT_MS = 30_000;

const soldOutSchema = z.object({ soldOut: z.boolean(), admitted: z.number() });

/** What the phase measured. */
export interface ToldSoldOut {
  pollers: number;
  told: number;
  polls: number;
  last_hold_ms_after_sale: number;
  told_sold_out_p50_s: number;
  told_sold_out_p99_s: number;
  told_sold_out_max_s: number;
}

/** Runs the phase against the running Worker; returns its figures and the event's id (for the KV count). */
export async function toldSoldOut(app: BenchApp, db: Db, organizerId: string, apiKey: string, signingKey: string): Promise<{ eventId: string; result: ToldSoldOut }> {
  const venue = await importVenue(
    db,
    organizerId,
    seatingChartSchema.parse({ name: "Bench club", sections: [{ label: "A", priceTier: "Floor", rows: [{ label: "1", seats: SEATS }] }] }),
  );
  const buyers = await createFanAccounts(db, BUYERS, "bench-sellout-");
  const saleStartsAt = Date.now() + SALE_STARTS_IN_MS;
  const eventId = await createHotBenchEvent(db, organizerId, {
    venueId: venue.id,
    name: "Bench sell-out",
    saleStartsAt,
    lobbyOpensMinutes: 60,
    purchaseLimit: PURCHASE_LIMIT,
    prices: [{ priceTier: "Floor", priceCents: 19_900 }],
  });
  await adminJson(app, apiKey, "POST", `/admin/events/${eventId}/prepare`, {});

  const sessions = await Promise.all(buyers.map((accountId) => signFanSession(signingKey, accountId)));
  const tickets: string[] = [];
  for (const [i, session] of sessions.entries()) {
    const joined = await call(app, "POST", `/api/events/${eventId}/lobby`, session, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: `bench-sellout-${i}` }, `192.0.2.${100 + i}`);
    tickets.push(z.object({ ticket: z.string() }).parse(joined).ticket);
  }
  say(`sold_out: ${BUYERS} buyers in the lobby of a ${SEATS}-seat event; sale at ${new Date(saleStartsAt).toISOString()}`);

  // The pollers start before the sale and poll through it, each from its own phase.
  const queuePath = `/api/events/${eventId}/queue`;
  let pollsDone = 0;
  let lastHoldAt = Number.POSITIVE_INFINITY;
  let stopAt = Number.POSITIVE_INFINITY;
  const toldAt: number[] = [];
  const pollers = Array.from({ length: POLLERS }, async (_, p) => {
    await sleep(Math.random() * POLL_MS);
    while (Date.now() < stopAt && !stopping()) {
      const sent = Date.now();
      const document = await queueDocument(app, queuePath);
      pollsDone++;
      if (document?.soldOut === true && Date.now() > lastHoldAt) {
        toldAt[p] = Date.now();
        return;
      }
      const rest = sent + POLL_MS - Date.now();
      if (rest > 0) await sleep(rest);
    }
  });

  while (Date.now() < saleStartsAt && !stopping()) await sleep(250);
  let admitted = 0;
  while (admitted < BUYERS && Date.now() < saleStartsAt + 30_000 && !stopping()) {
    await sleep(250);
    admitted = (await queueDocument(app, queuePath))?.admitted ?? 0;
  }
  if (admitted < BUYERS) throw new Error(`sold_out: only ${admitted} of ${BUYERS} buyers admitted 30 s into the sale`);
  const tokens: string[] = [];
  for (const [i, session] of sessions.entries()) {
    const exchanged = await call(app, "POST", `/api/events/${eventId}/admission`, session, { ticket: tickets[i] }, `192.0.2.${100 + i}`);
    tokens.push(z.object({ token: z.string() }).parse(exchanged).token);
  }
  let lastHold = 0;
  for (const [i, token] of tokens.entries()) {
    const held = await call(app, "POST", `/api/events/${eventId}/holds/best`, token, { requestId: crypto.randomUUID(), quantity: PURCHASE_LIMIT, allowSplit: true }, `192.0.2.${100 + i}`);
    lastHold = Math.max(lastHold, Date.parse(z.object({ hold: z.object({ createdAt: z.string() }) }).parse(held).hold.createdAt));
  }
  lastHoldAt = lastHold;
  stopAt = lastHold + TOLD_TIMEOUT_MS;
  say(`sold_out: every seat held, the last at ${new Date(lastHold).toISOString()} (${lastHold - saleStartsAt} ms into the sale); waiting for the pollers`);
  await Promise.all(pollers);

  const told = toldAt.filter((at) => at !== undefined).map((at) => (at - lastHold) / 1000);
  if (told.length < POLLERS) say(`sold_out: ${POLLERS - told.length} pollers never read soldOut within ${TOLD_TIMEOUT_MS / 1000} s`);
  // A poller never told counts as told at the timeout: the p99 cannot hide it.
  const all = [...told, ...Array.from({ length: POLLERS - told.length }, () => TOLD_TIMEOUT_MS / 1000)].sort((a, b) => a - b);
  return {
    eventId,
    result: {
      pollers: POLLERS,
      told: told.length,
      polls: pollsDone,
      last_hold_ms_after_sale: lastHold - saleStartsAt,
      told_sold_out_p50_s: round(quantile(all, 0.5), 2),
      told_sold_out_p99_s: round(quantile(all, 0.99), 2),
      told_sold_out_max_s: round(all[all.length - 1] ?? 0, 2),
    },
  };
}

/** The queue document as a polling fan reads it (null while the queue is not open: 404). */
async function queueDocument(app: BenchApp, path: string): Promise<z.infer<typeof soldOutSchema> | null> {
  const response = await fetch(`${app.url}${path}`, { signal: AbortSignal.timeout(60_000) });
  const text = await response.text();
  if (response.status === 404) return null;
  if (response.status !== 200) throw new Error(`sold_out: GET ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return soldOutSchema.parse(JSON.parse(text));
}

async function call(app: BenchApp, method: string, path: string, bearer?: string, body?: unknown, ip = "192.0.2.250"): Promise<unknown> {
  const headers: Record<string, string> = { "CF-Connecting-IP": ip };
  if (bearer !== undefined) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${app.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(60_000) });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`sold_out: ${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}
