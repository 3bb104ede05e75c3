/** Door check-in (`POST /admin/events/:id/check-in`): valid once, then already scanned; invalid for void, refunded, tampered, forged, expired or foreign tickets; exactly one of concurrent scans wins. */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { signTicketToken, TICKET_GRACE_MS } from "../../../workers/tickets/ticket-tokens";
import { withDb } from "../../fixtures/db";
import { appRequest, expectApiError, expectInvalid } from "../../fixtures/http";
import { checkInRequest, insertOrder, scan, ticketedEvent, ticketState, tokenOf } from "../../fixtures/tickets";
import { tamperedToken } from "../../fixtures/tokens";

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

    expect(await scan(event.apiKey, event.eventId, tamperedToken(token, { eid: sibling }))).toEqual({ result: "invalid", reason: "bad_token" });
    expect(await scan(event.apiKey, event.eventId, tamperedToken(token, { sub: other }))).toEqual({ result: "invalid", reason: "bad_token" });
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
