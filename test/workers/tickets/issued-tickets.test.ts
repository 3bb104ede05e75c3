/** "My tickets": a fan's tickets across events, each with a QR code that decodes to a compact code verifying against the JWKS (and a JWT); owner only, void tickets without a token. */
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { withDb } from "../../fixtures/db";
import { appRequest, expectApiError, expectInvalid } from "../../fixtures/http";
import { decodeQrSvg, fanRequest, insertOrder, myTickets, myTicketSchema, publishedJwks, ticketedEvent, verifyCodeOffline, verifyOffline } from "../../fixtures/tickets";

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
      if (!inserted || !ticket.token || !ticket.code || !ticket.qrSvg) throw new Error(`ticket ${ticket.id} lacks its token, code or QR code`);
      expect(ticket.status).toBe("valid");
      expect(ticket.event.name).toBe("Show");
      expect(ticket.event.id).toBe(ticket.orderId === mineElsewhere.orderId ? second.eventId : first.eventId);
      const place = inserted.place;
      expect(ticket.place).toMatchObject("ga" in place ? { section: place.section, generalAdmission: true, row: null, seat: null } : { ...place, generalAdmission: false });

      // The QR code holds the compact code, which verifies offline and says the ticket, its event and its place.
      const fromQr = decodeQrSvg(ticket.qrSvg);
      expect(fromQr).toBe(ticket.code);
      const compact = await verifyCodeOffline(fromQr);
      expect(compact).toMatchObject({ ticketId: ticket.id, eventIdPrefix: ticket.event.id.replaceAll("-", "").slice(0, 8), place });
      // The JWT, for integrations, verifies too.
      const claims = await verifyOffline(jwks, ticket.token);
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

  it("shows a voided ticket as void, without a token, code or QR code", async () => {
    const event = await ticketedEvent();
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    await withDb((db) => db.execute(sql`update tickets set status = 'void' where order_id = ${order.orderId}`));
    await withDb((db) => db.execute(sql`update orders set status = 'refunded' where id = ${order.orderId}`));
    const [ticket] = await myTickets(fan);
    expect(ticket).toMatchObject({ id: order.tickets[0]?.id, status: "void", orderStatus: "refunded", token: null, code: null, qrSvg: null });
  });
});
