/**
 * E-tickets: signed tokens that verify offline with only the published JWKS,
 * QR codes that decode back to them, "my tickets" (owner only), and door
 * check-in (valid, already scanned, invalid), against the real Postgres.
 */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { base64url, decodeJwt, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ticketQrPng, ticketQrSvg } from "../../../workers/tickets/qr-codes";
import { signTicketToken, TICKET_GRACE_MS, verifyTicketToken } from "../../../workers/tickets/ticket-tokens";
import { withDb } from "../../fixtures/seeding";
import { expectApiError, expectInvalid } from "../../fixtures/http";
import {
  appRequest,
  checkInRequest,
  decodeQrPng,
  decodeQrSvg,
  fanRequest,
  insertOrder,
  publishedJwks,
  ticketedEvent,
  ticketState,
  verifyOffline,
} from "../../fixtures/tickets";

const placeSchema = z.strictObject({
  section: z.string(),
  sectionName: z.string(),
  row: z.string().nullable(),
  seat: z.string().nullable(),
  generalAdmission: z.boolean(),
});
const myTicketSchema = z.strictObject({
  id: z.uuid(),
  orderId: z.uuid(),
  status: z.enum(["valid", "checked_in", "void"]),
  checkedInAt: z.iso.datetime().nullable(),
  event: z.strictObject({ id: z.uuid(), name: z.string(), startsAt: z.iso.datetime(), endsAt: z.iso.datetime().nullable(), venue: z.string() }),
  place: placeSchema,
  label: z.string(),
  token: z.string().nullable(),
  qrSvg: z.string().nullable(),
});
const checkInSchema = z.strictObject({
  result: z.enum(["valid", "already_scanned", "invalid"]),
  reason: z.enum(["expired", "bad_token", "other_event", "unknown_ticket", "void"]).optional(),
  ticket: z
    .strictObject({
      id: z.uuid(),
      eventId: z.uuid(),
      holderAccountId: z.uuid(),
      status: z.enum(["valid", "checked_in", "void"]),
      checkedInAt: z.iso.datetime().nullable(),
      place: placeSchema,
      label: z.string(),
    })
    .optional(),
});

async function myTickets(accountId: string) {
  const response = await fanRequest(accountId, "/api/me/tickets");
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  return z.strictObject({ tickets: z.array(myTicketSchema) }).parse(response.json).tickets;
}

async function scan(apiKey: string, eventId: string, token: string) {
  const response = await checkInRequest(apiKey, eventId, { token });
  expect(response.status, response.text).toBe(200);
  return checkInSchema.parse(response.json);
}

/** The token with its payload edited and re-encoded, header and signature kept. */
function tamper(token: string, edit: (payload: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split(".");
  const claims = z.record(z.string(), z.unknown()).parse(JSON.parse(new TextDecoder().decode(base64url.decode(payload ?? ""))));
  edit(claims);
  return [header, base64url.encode(JSON.stringify(claims)), signature].join(".");
}

async function tokenOf(accountId: string, ticketId: string): Promise<string> {
  const ticket = (await myTickets(accountId)).find((t) => t.id === ticketId);
  if (!ticket?.token) throw new Error(`no token for ticket ${ticketId}`);
  return ticket.token;
}

describe("ticket tokens", () => {
  it("carry event, place, holder and ticket id, expire a day after the event, and verify offline with only the published JWKS", async () => {
    const event = await ticketedEvent();
    const [holder] = event.accounts;
    const seat = event.seats[0];
    if (!holder || !seat) throw new Error("fixture");
    const jwks = await publishedJwks();
    const ticketId = crypto.randomUUID();
    const seated = await signTicketToken(env.TOKEN_SIGNING_KEY, {
      id: ticketId,
      eventId: event.eventId,
      holderAccountId: holder,
      place: { section: seat.section, row: seat.row, seat: seat.seat },
      eventEndsAt: event.startsAt,
    });
    const payload = await verifyOffline(jwks, seated);
    expect(payload).toMatchObject({ aud: "ticket", sub: holder, jti: ticketId, eid: event.eventId, seat: { section: seat.section, row: seat.row, seat: seat.seat } });
    expect(payload.ga).toBeUndefined();
    expect(payload.exp).toBe(Math.floor((event.startsAt.getTime() + TICKET_GRACE_MS) / 1000));

    const standing = await signTicketToken(env.TOKEN_SIGNING_KEY, {
      id: ticketId,
      eventId: event.eventId,
      holderAccountId: holder,
      place: { section: "PIT", ga: true },
      eventEndsAt: event.startsAt,
    });
    expect(await verifyOffline(jwks, standing)).toMatchObject({ ga: "PIT", jti: ticketId });
    expect((await verifyOffline(jwks, standing)).seat).toBeUndefined();

    const verified = await verifyTicketToken(env.TOKEN_SIGNING_KEY, seated);
    expect(verified).toEqual({
      ok: true,
      claims: {
        ticketId,
        holderAccountId: holder,
        eventId: event.eventId,
        place: { section: seat.section, row: seat.row, seat: seat.seat },
        expiresAt: new Date(Math.floor((event.startsAt.getTime() + TICKET_GRACE_MS) / 1000) * 1000),
      },
    });
  });

  it("render as QR codes (SVG and PNG) that decode back to the same token", async () => {
    const event = await ticketedEvent();
    const [holder] = event.accounts;
    if (!holder) throw new Error("fixture");
    const token = await signTicketToken(env.TOKEN_SIGNING_KEY, {
      id: crypto.randomUUID(),
      eventId: event.eventId,
      holderAccountId: holder,
      place: { section: "A", row: "12", seat: "104" },
      eventEndsAt: event.startsAt,
    });
    expect(decodeQrSvg(await ticketQrSvg(token))).toBe(token);
    const png = ticketQrPng(token);
    expect(await decodeQrPng(png.dataUrl)).toBe(token);
    expect(png.size).toBeGreaterThan(200);
  });

  it("fail verification when tampered with, forged with another key under our kid, or expired", async () => {
    const event = await ticketedEvent();
    const [holder, other] = event.accounts;
    if (!holder || !other) throw new Error("fixture");
    const jwks = await publishedJwks();
    const ticket = { id: crypto.randomUUID(), eventId: event.eventId, holderAccountId: holder, place: { section: "A", row: "1", seat: "1" }, eventEndsAt: event.startsAt };
    const token = await signTicketToken(env.TOKEN_SIGNING_KEY, ticket);

    const tampered = [
      tamper(token, (claims) => void (claims.seat = { section: "A", row: "1", seat: "2" })),
      tamper(token, (claims) => void (claims.sub = other)),
      tamper(token, (claims) => void (claims.eid = crypto.randomUUID())),
      tamper(token, (claims) => void (claims.exp = Number(claims.exp) + 86_400 * 365)),
    ];
    for (const forged of tampered) {
      await expect(verifyOffline(jwks, forged)).rejects.toThrow(/signature verification failed/);
      expect(await verifyTicketToken(env.TOKEN_SIGNING_KEY, forged)).toEqual({ ok: false, reason: "bad_token" });
    }

    const { kid } = decodeProtectedHeader(token);
    const attacker = await generateKeyPair("ES256");
    const forgedWithOurKid = await new SignJWT({ eid: event.eventId, seat: ticket.place })
      .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
      .setIssuer("edge-tickets")
      .setAudience("ticket")
      .setSubject(holder)
      .setJti(ticket.id)
      .setExpirationTime("1d")
      .sign(attacker.privateKey);
    await expect(verifyOffline(jwks, forgedWithOurKid)).rejects.toThrow();
    expect(await verifyTicketToken(env.TOKEN_SIGNING_KEY, forgedWithOurKid)).toEqual({ ok: false, reason: "bad_token" });

    const expired = await signTicketToken(env.TOKEN_SIGNING_KEY, { ...ticket, eventEndsAt: new Date(Date.now() - 2 * TICKET_GRACE_MS) });
    await expect(verifyOffline(jwks, expired)).rejects.toThrow(/"exp" claim/);
    expect(await verifyTicketToken(env.TOKEN_SIGNING_KEY, expired)).toEqual({ ok: false, reason: "expired" });

    for (const garbage of ["", "not-a-jwt", "a.b.c", token.split(".").slice(0, 2).join(".") + "."]) {
      expect(await verifyTicketToken(env.TOKEN_SIGNING_KEY, garbage)).toEqual({ ok: false, reason: "bad_token" });
    }
  });
});

function decodeProtectedHeader(token: string): { kid: string } {
  const header = z.object({ kid: z.string() }).parse(JSON.parse(new TextDecoder().decode(base64url.decode(token.split(".")[0] ?? ""))));
  return header;
}

describe("GET /api/me/tickets", () => {
  it("lists only the caller's tickets across events, each with a QR code that decodes to a token verifying against the JWKS", async () => {
    const first = await ticketedEvent();
    const [fan, stranger] = first.accounts;
    const [s0, s1, s2] = first.seats;
    if (!fan || !stranger || !s0 || !s1 || !s2) throw new Error("fixture");
    const second = await ticketedEvent({ accounts: 0 });
    const farSeat = second.seats[5];
    if (!farSeat) throw new Error("fixture");

    const mine = await insertOrder(first, fan, { seats: [s0, s1], gaPlaces: 1 });
    const theirs = await insertOrder(first, stranger, { seats: [s2] });
    const mineElsewhere = await insertOrder(second, fan, { seats: [farSeat] });

    const listed = await myTickets(fan);
    const expected = [...mine.tickets, ...mineElsewhere.tickets];
    expect(listed.map((t) => t.id).sort()).toEqual(expected.map((t) => t.id).sort());
    expect(listed.map((t) => t.id)).not.toContain(theirs.tickets[0]?.id);

    const jwks = await publishedJwks();
    for (const ticket of listed) {
      const inserted = expected.find((t) => t.id === ticket.id);
      if (!inserted || !ticket.token || !ticket.qrSvg) throw new Error(`ticket ${ticket.id} lacks its token or QR code`);
      expect(ticket.status).toBe("valid");
      expect(ticket.event.name).toBe("Show");
      expect(ticket.event.id).toBe(ticket.orderId === mineElsewhere.orderId ? second.eventId : first.eventId);
      const place = inserted.place;
      expect(ticket.place).toMatchObject("ga" in place ? { section: place.section, generalAdmission: true, row: null, seat: null } : { ...place, generalAdmission: false });

      const fromQr = decodeQrSvg(ticket.qrSvg);
      expect(fromQr).toBe(ticket.token);
      const claims = await verifyOffline(jwks, fromQr);
      expect(claims).toMatchObject({ jti: ticket.id, sub: fan, eid: ticket.event.id });
      expect("ga" in place ? claims.ga : claims.seat).toEqual("ga" in place ? place.section : place);
    }

    const strangers = await myTickets(stranger);
    expect(strangers.map((t) => t.id)).toEqual(theirs.tickets.map((t) => t.id));
  });

  it("shows one ticket to its owner only (404 for anyone else's), needs a session, and rejects a malformed id", async () => {
    const event = await ticketedEvent();
    const [fan, stranger] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !stranger || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    const ticketId = order.tickets[0]?.id ?? "";

    const own = await fanRequest(fan, `/api/me/tickets/${ticketId}`);
    expect(own.status, own.text).toBe(200);
    const ticket = z.strictObject({ ticket: myTicketSchema }).parse(own.json).ticket;
    expect(ticket).toMatchObject({ id: ticketId, label: `Section ${seat.section}, Row ${seat.row}, Seat ${seat.seat}` });

    expectApiError(await fanRequest(stranger, `/api/me/tickets/${ticketId}`), 404, "not_found");
    expectApiError(await fanRequest(fan, `/api/me/tickets/${crypto.randomUUID()}`), 404, "not_found");
    expectApiError(await appRequest(`/api/me/tickets/${ticketId}`), 401, "unauthorized");
    expectApiError(await appRequest("/api/me/tickets", { headers: { Authorization: "Bearer nope" } }), 401, "invalid_token");
    expectInvalid(await fanRequest(fan, "/api/me/tickets/not-a-uuid"), "ticketId");
  });

  it("shows a voided ticket as void, without a token or QR code", async () => {
    const event = await ticketedEvent();
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    await withDb((db) => db.execute(sql`update tickets set status = 'void' where order_id = ${order.orderId}`));
    const [ticket] = await myTickets(fan);
    expect(ticket).toMatchObject({ id: order.tickets[0]?.id, status: "void", token: null, qrSvg: null });
  });
});

describe("POST /admin/events/:id/check-in", () => {
  it("admits a ticket once: valid, then already_scanned with the first scan's time, and invalid once voided", async () => {
    const event = await ticketedEvent();
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    const ticketId = order.tickets[0]?.id ?? "";
    const token = await tokenOf(fan, ticketId);

    const first = await scan(event.apiKey, event.eventId, token);
    expect(first).toMatchObject({ result: "valid", ticket: { id: ticketId, eventId: event.eventId, holderAccountId: fan, status: "checked_in" } });
    expect(first.reason).toBeUndefined();
    const stored = await ticketState(ticketId);
    expect(stored.status).toBe("checked_in");
    expect(stored.checkedInAt?.toISOString()).toBe(first.ticket?.checkedInAt);

    const second = await scan(event.apiKey, event.eventId, token);
    expect(second).toMatchObject({ result: "already_scanned", ticket: { id: ticketId, status: "checked_in", checkedInAt: first.ticket?.checkedInAt } });
    expect(await ticketState(ticketId)).toEqual(stored);

    await withDb((db) => db.execute(sql`update tickets set status = 'void' where id = ${ticketId}`));
    expect(await scan(event.apiKey, event.eventId, token)).toMatchObject({ result: "invalid", reason: "void", ticket: { id: ticketId, status: "void" } });
  });

  it("refuses a voided ticket and a ticket of a refunded order without admitting it", async () => {
    const event = await ticketedEvent();
    const [fan] = event.accounts;
    const [a, b] = event.seats;
    if (!fan || !a || !b) throw new Error("fixture");
    const voided = await insertOrder(event, fan, { seats: [a] });
    const refunded = await insertOrder(event, fan, { seats: [b] });
    const voidedId = voided.tickets[0]?.id ?? "";
    const refundedId = refunded.tickets[0]?.id ?? "";
    const voidedToken = await tokenOf(fan, voidedId);
    const refundedToken = await tokenOf(fan, refundedId);
    await withDb(async (db) => {
      await db.execute(sql`update tickets set status = 'void' where id = ${voidedId}`);
      await db.execute(sql`update orders set status = 'refunded' where id = ${refunded.orderId}`);
    });
    expect(await scan(event.apiKey, event.eventId, voidedToken)).toMatchObject({ result: "invalid", reason: "void" });
    expect(await scan(event.apiKey, event.eventId, refundedToken)).toMatchObject({ result: "invalid", reason: "void" });
    expect(await ticketState(voidedId)).toEqual({ status: "void", checkedInAt: null });
    expect(await ticketState(refundedId)).toEqual({ status: "valid", checkedInAt: null });
  });

  it("answers invalid for another event's ticket, a tampered or forged token, an expired one, garbage, and a ticket that is not the holder's", async () => {
    const event = await ticketedEvent();
    const [fan, other] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !other || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    const ticketId = order.tickets[0]?.id ?? "";
    const token = await tokenOf(fan, ticketId);

    // Another event of the same organizer, with its own ticket.
    const sibling = await withDb(async (db) => {
      const rows = await db.execute<{ id: string }>(sql`
        insert into events (organizer_id, venue_id, name, starts_at, sale_starts_at, status)
        select organizer_id, venue_id, 'Matinee', starts_at, sale_starts_at, 'published' from events where id = ${event.eventId} returning id`);
      return rows.rows[0]?.id ?? "";
    });
    const siblingOrder = await insertOrder({ eventId: sibling, ga: event.ga }, fan, { gaPlaces: 1 });
    const siblingToken = await tokenOf(fan, siblingOrder.tickets[0]?.id ?? "");
    expect(await scan(event.apiKey, event.eventId, siblingToken)).toEqual({ result: "invalid", reason: "other_event" });
    expect(await scan(event.apiKey, sibling, token)).toEqual({ result: "invalid", reason: "other_event" });

    expect(await scan(event.apiKey, event.eventId, tamper(token, (c) => void (c.eid = sibling)))).toEqual({ result: "invalid", reason: "bad_token" });
    expect(await scan(event.apiKey, event.eventId, tamper(token, (c) => void (c.sub = other)))).toEqual({ result: "invalid", reason: "bad_token" });
    expect(await scan(event.apiKey, event.eventId, "https://example.com/not-a-ticket")).toEqual({ result: "invalid", reason: "bad_token" });

    const base = { id: ticketId, eventId: event.eventId, place: { section: seat.section, row: seat.row, seat: seat.seat } };
    const expired = await signTicketToken(env.TOKEN_SIGNING_KEY, { ...base, holderAccountId: fan, eventEndsAt: new Date(Date.now() - 2 * TICKET_GRACE_MS) });
    expect(await scan(event.apiKey, event.eventId, expired)).toEqual({ result: "invalid", reason: "expired" });
    // Properly signed, but the ticket is not this account's, or does not exist.
    const notTheirs = await signTicketToken(env.TOKEN_SIGNING_KEY, { ...base, holderAccountId: other, eventEndsAt: event.startsAt });
    expect(await scan(event.apiKey, event.eventId, notTheirs)).toEqual({ result: "invalid", reason: "unknown_ticket" });
    const unknown = await signTicketToken(env.TOKEN_SIGNING_KEY, { ...base, id: crypto.randomUUID(), holderAccountId: fan, eventEndsAt: event.startsAt });
    expect(await scan(event.apiKey, event.eventId, unknown)).toEqual({ result: "invalid", reason: "unknown_ticket" });

    // None of that admitted the real ticket, which still checks in once.
    expect(await ticketState(ticketId)).toEqual({ status: "valid", checkedInAt: null });
    expect((await scan(event.apiKey, event.eventId, token)).result).toBe("valid");
  });

  it("is scoped to the organizer's events and needs its API key; malformed requests get a 400", async () => {
    const event = await ticketedEvent();
    const stranger = await ticketedEvent({ accounts: 0 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    const token = await tokenOf(fan, order.tickets[0]?.id ?? "");

    expectApiError(await checkInRequest(stranger.apiKey, event.eventId, { token }), 404, "not_found");
    expectApiError(await checkInRequest("etk_unknown", event.eventId, { token }), 401, "unauthorized");
    expectApiError(await appRequest(`/admin/events/${event.eventId}/check-in`, { method: "POST", body: JSON.stringify({ token }) }), 401, "unauthorized");
    expectInvalid(await checkInRequest(event.apiKey, "not-a-uuid", { token }), "id");
    expectInvalid(await checkInRequest(event.apiKey, event.eventId, {}), "token");
    expectInvalid(await checkInRequest(event.apiKey, event.eventId, { token: 42 }), "token");
    expectInvalid(await checkInRequest(event.apiKey, event.eventId, { token: "   " }), "token");
    expectInvalid(await checkInRequest(event.apiKey, event.eventId, { token: "x".repeat(4097) }), "token");
    expectInvalid(await checkInRequest(event.apiKey, event.eventId, { token, extra: true }));
    expectApiError(await checkInRequest(event.apiKey, event.eventId, "{not json"), 400, "invalid_request");
    expect(await ticketState(order.tickets[0]?.id ?? "")).toEqual({ status: "valid", checkedInAt: null });

    // The group guards its own path only: the admin API's public docs stay public.
    expect((await appRequest("/admin/openapi.json")).status).toBe(200);
  });

  it("admits exactly one of any number of concurrent scans of a ticket", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    if (!fan) throw new Error("fixture");
    let seatCursor = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 12 }), async (scans) => {
        const seat = event.seats[seatCursor++];
        if (!seat) throw new Error("out of seats");
        const order = await insertOrder(event, fan, { seats: [seat] });
        const ticketId = order.tickets[0]?.id ?? "";
        const token = await signTicketToken(env.TOKEN_SIGNING_KEY, { id: ticketId, eventId: event.eventId, holderAccountId: fan, place: { section: seat.section, row: seat.row, seat: seat.seat }, eventEndsAt: event.startsAt });
        const verdicts = await Promise.all(Array.from({ length: scans }, () => scan(event.apiKey, event.eventId, token)));
        expect(verdicts.filter((v) => v.result === "valid")).toHaveLength(1);
        expect(verdicts.filter((v) => v.result === "already_scanned")).toHaveLength(scans - 1);
        const stored = await ticketState(ticketId);
        expect(stored.status).toBe("checked_in");
        for (const verdict of verdicts) expect(verdict.ticket?.checkedInAt).toBe(stored.checkedInAt?.toISOString());
      }),
      { numRuns: 8 },
    );
  });
});

it("decodes tokens without trusting them (sanity of the tamper helper)", async () => {
  const event = await ticketedEvent({ accounts: 1 });
  const [fan] = event.accounts;
  if (!fan) throw new Error("fixture");
  const token = await signTicketToken(env.TOKEN_SIGNING_KEY, { id: crypto.randomUUID(), eventId: event.eventId, holderAccountId: fan, place: { section: "PIT", ga: true }, eventEndsAt: event.startsAt });
  const other = crypto.randomUUID();
  expect(decodeJwt(tamper(token, (c) => void (c.sub = other))).sub).toBe(other);
  expect(decodeJwt(tamper(token, () => undefined))).toEqual(decodeJwt(token));
});
