/**
 * Fixtures for the e-ticket tests: events with orders and tickets written
 * straight to Postgres (as the sales consumer would), the app with the ticket
 * routes mounted as the Worker mounts them, the mail outbox over HTTP, the
 * published JWKS, and QR decoding (jsQR over pixels from pngjs, or from the
 * SVG's path).
 */
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import { expect } from "vitest";
import { z } from "zod";
import { app } from "../../workers/app";
import { addApiKey } from "../../workers/organizers/api-keys";
import { signFanSession } from "../../workers/sign-in/fan-session";
import type { TicketPlace } from "../../workers/tickets/ticket-tokens";
import { openEvent, withDb } from "../durable-objects/fixtures";
import { ORIGIN, type ReadResponse } from "./helpers";

/** A request to the Worker's app (workers/app.ts), called in this isolate. */
export async function appRequest(path: string, init: RequestInit = {}): Promise<ReadResponse> {
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`${ORIGIN}${path}`, init), env, ctx);
  const text = await response.text();
  await waitOnExecutionContext(ctx);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A fan's call with a session token. */
export async function fanRequest(accountId: string, path: string): Promise<ReadResponse> {
  const session = await signFanSession(env.TOKEN_SIGNING_KEY, accountId);
  return appRequest(path, { headers: { Authorization: `Bearer ${session}` } });
}

/** Door staff's scan: `POST /admin/events/:id/check-in`. */
export function checkInRequest(apiKey: string, eventId: string, body: unknown): Promise<ReadResponse> {
  return appRequest(`/admin/events/${eventId}/check-in`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A seat of the venue with its labels. */
export interface VenueSeat {
  seatIndex: number;
  sectionId: string;
  section: string;
  row: string;
  seat: string;
}

/** A published calm event (sale open, starting in 30 days) with an organizer API key, fan accounts and the venue's seats. */
export async function ticketedEvent(options: { accounts?: number; organizerId?: string } = {}) {
  const opened = await openEvent({ demandClass: "calm", accounts: options.accounts ?? 2 });
  return withDb(async (db) => {
    const { apiKey } = await addApiKey(db, opened.organizerId, "door staff");
    const seatRows = await db.execute<{ seat_index: number; section_id: string; section: string; row: string; seat: string }>(sql`
      select s.seat_index, s.section_id, sec.label as section, r.label as row, s.label as seat
      from seats s join sections sec on sec.id = s.section_id join seat_rows r on r.id = s.row_id
      where s.venue_id = ${opened.venue.id} order by s.seat_index`);
    const seats: VenueSeat[] = seatRows.rows.map((r) => ({ seatIndex: r.seat_index, sectionId: r.section_id, section: r.section, row: r.row, seat: r.seat }));
    const ga = opened.venue.sections.find((section) => section.kind === "general_admission");
    if (!ga) throw new Error("the fixture chart has a general-admission section");
    const emails = await db.execute<{ id: string; email: string }>(sql`select id, email from accounts where id = any(${`{${opened.accounts.join(",")}}`}::uuid[])`);
    const emailOf = new Map(emails.rows.map((row) => [row.id, row.email]));
    return {
      ...opened,
      eventId: opened.event.id,
      startsAt: new Date(opened.event.startsAt),
      apiKey,
      seats,
      ga: { sectionId: ga.id, section: ga.label },
      emailOf: (accountId: string) => emailOf.get(accountId) ?? "",
    };
  });
}

/** A ticket written by `insertOrder`, with the place it should show. */
export interface InsertedTicket {
  id: string;
  place: TicketPlace;
}

/**
 * A confirmed order of `accountId` at `eventId` with a ticket per given seat
 * and `gaPlaces` general-admission tickets, written straight to Postgres.
 */
export async function insertOrder(
  event: { eventId: string; ga: { sectionId: string; section: string } },
  accountId: string,
  options: { seats?: VenueSeat[]; gaPlaces?: number },
): Promise<{ orderId: string; tickets: InsertedTicket[] }> {
  const seats = options.seats ?? [];
  const gaPlaces = options.gaPlaces ?? 0;
  return withDb(async (db) => {
    const total = (seats.length + gaPlaces) * 1000;
    const order = await db.execute<{ id: string }>(sql`
      insert into orders (event_id, account_id, hold_id, total_cents, currency)
      values (${event.eventId}, ${accountId}, gen_random_uuid(), ${total}, 'USD') returning id`);
    const orderId = order.rows[0]?.id;
    if (!orderId) throw new Error("order insert returned nothing");
    const inserted: InsertedTicket[] = [];
    for (const seat of seats) {
      const row = await db.execute<{ id: string }>(sql`
        insert into tickets (order_id, event_id, account_id, seat_index, section_id, price_cents)
        values (${orderId}, ${event.eventId}, ${accountId}, ${seat.seatIndex}, ${seat.sectionId}, 1000) returning id`);
      inserted.push({ id: row.rows[0]?.id ?? "", place: { section: seat.section, row: seat.row, seat: seat.seat } });
    }
    for (let i = 0; i < gaPlaces; i++) {
      const row = await db.execute<{ id: string }>(sql`
        insert into tickets (order_id, event_id, account_id, seat_index, section_id, price_cents)
        values (${orderId}, ${event.eventId}, ${accountId}, null, ${event.ga.sectionId}, 1000) returning id`);
      inserted.push({ id: row.rows[0]?.id ?? "", place: { section: event.ga.section, ga: true } });
    }
    return { orderId, tickets: inserted };
  });
}

/** The tickets rows of an order, every column, for "nothing changed" checks. */
export async function ticketRows(orderId: string): Promise<unknown[]> {
  return withDb(async (db) => (await db.execute(sql`select * from tickets where order_id = ${orderId} order by id`)).rows);
}

/** One ticket's status and first scan time. */
export async function ticketState(ticketId: string): Promise<{ status: string; checkedInAt: Date | null }> {
  return withDb(async (db) => {
    const rows = await db.execute<{ status: string; checked_in_at: string | Date | null }>(sql`select status, checked_in_at from tickets where id = ${ticketId}`);
    const row = rows.rows[0];
    if (!row) throw new Error(`no ticket ${ticketId}`);
    return { status: row.status, checkedInAt: row.checked_in_at === null ? null : new Date(row.checked_in_at) };
  });
}

// ------------------------------------------------------------------ JWKS

const jwksSchema = z.object({ keys: z.array(z.object({ kty: z.string(), kid: z.string() }).loose()).min(1) });

/** The published keys, fetched from the Worker's `/.well-known/jwks.json` as a door app would. */
export async function publishedJwks(): Promise<ReturnType<typeof createLocalJWKSet>> {
  const response = await SELF.fetch(`${ORIGIN}/.well-known/jwks.json`);
  expect(response.status).toBe(200);
  const jwks = jwksSchema.parse(await response.json());
  for (const key of jwks.keys) expect(key, "no private key material is published").not.toHaveProperty("d");
  return createLocalJWKSet(jwks as JSONWebKeySet);
}

/** Verifies a ticket token offline: only the published keys, no call to us. */
export async function verifyOffline(jwks: ReturnType<typeof createLocalJWKSet>, token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, jwks, { issuer: "edge-tickets", audience: "ticket", algorithms: ["ES256"] });
  return payload;
}

// ------------------------------------------------------------------ QR decoding

/** Decodes the QR code in a PNG `data:` URL with jsQR (pixels by pngjs). */
export async function decodeQrPng(dataUrl: string): Promise<string> {
  const base64 = /^data:image\/png;base64,([A-Za-z0-9+/=]+)$/.exec(dataUrl)?.[1];
  if (!base64) throw new Error(`not a PNG data URL: ${dataUrl.slice(0, 40)}`);
  // pngjs's async parser: its sync one subclasses zlib.Inflate in a way workerd's zlib does not allow.
  const png = await new Promise<PNG>((resolve, reject) => new PNG().parse(Buffer.from(base64, "base64"), (error, data) => (error ? reject(error) : resolve(data))));
  const decoded = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength), png.width, png.height);
  if (!decoded) throw new Error("no QR code found in the PNG");
  return decoded.data;
}

/**
 * Decodes the QR code in an SVG from `qrcode`: draws its dark path (horizontal
 * strokes `M x y`, `m dx dy`, `h n`, one module thick) into pixels, then jsQR.
 */
export function decodeQrSvg(svg: string, scale = 4): string {
  const size = Number(/viewBox="0 0 (\d+) \1"/.exec(svg)?.[1]);
  const path = /<path[^>]*stroke="#000000"[^>]*\bd="([^"]+)"/.exec(svg)?.[1];
  if (!size || !path) throw new Error("not a qrcode SVG");
  const side = size * scale;
  const pixels = new Uint8ClampedArray(side * side * 4).fill(255);
  let x = 0;
  let y = 0;
  for (const [, command, args] of path.matchAll(/([MmHh])([^MmHh]*)/g)) {
    const numbers = (args ?? "").trim().split(/[\s,]+/).map(Number);
    if (command === "M") [x, y] = [numbers[0] ?? 0, numbers[1] ?? 0];
    else if (command === "m") [x, y] = [x + (numbers[0] ?? 0), y + (numbers[1] ?? 0)];
    else {
      const end = command === "h" ? x + (numbers[0] ?? 0) : (numbers[0] ?? 0);
      const row = Math.floor(y);
      for (let col = x; col < end; col++) {
        for (let py = row * scale; py < (row + 1) * scale; py++) {
          for (let px = col * scale; px < (col + 1) * scale; px++) pixels.fill(0, (py * side + px) * 4, (py * side + px) * 4 + 3);
        }
      }
      x = end;
    }
  }
  const decoded = jsQR(pixels, side, side);
  if (!decoded) throw new Error("no QR code found in the SVG");
  return decoded.data;
}

// ------------------------------------------------------------------ mail outbox

const outboxListSchema = z.object({
  data: z.array(z.object({ id: z.string(), to: z.array(z.string()), subject: z.string(), text: z.string().nullable(), html: z.string().nullable() })),
});

/** What the outbox received for `email`, newest first, read over its HTTP API. */
export async function inbox(email: string) {
  const response = await fetch(new URL(`/emails?to=${encodeURIComponent(email)}`, env.MAIL_API_URL));
  expect(response.status).toBe(200);
  return outboxListSchema.parse(await response.json()).data;
}

/** Makes the outbox's next `count` sends to `email` answer 500. */
export async function failMailTo(email: string, count: number): Promise<void> {
  const response = await fetch(new URL("/__faults", env.MAIL_API_URL), { method: "POST", body: JSON.stringify({ mode: "error500", count, to: email }) });
  expect(response.status).toBe(200);
}

/** The QR images (`<img src="data:image/png...">`) in an email's HTML, in order. */
export function qrImages(html: string): string[] {
  return [...html.matchAll(/<img[^>]*\bsrc="(data:image\/png;base64,[^"]+)"/g)].map((match) => match[1] ?? "");
}
