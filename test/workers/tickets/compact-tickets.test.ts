/**
 * Compact ticket codes (core/tickets/compact-token.ts): a QR code of a low
 * version where the JWT made a dense one, and door check-in of the code:
 * once valid, then already scanned; a tampered, forged (another key), high-S,
 * expired or foreign code gets an `invalid` verdict and changes nothing.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { base45Decode } from "../../../core/tickets/compact-token";
import { signingKid } from "../../../workers/platform/signed-tokens";
import { TICKET_GRACE_MS } from "../../../workers/tickets/ticket-tokens";
import { qrVersion } from "../../../workers/tickets/qr-codes";
import { alteredCode, codeOf, compactCodeFor, insertOrder, myTickets, scan, ticketedEvent, ticketState } from "../../fixtures/tickets";

/** P-256's order: S → n - S is the signature's other valid form. */
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

describe("compact ticket codes", () => {
  it("make a QR code of version 6 or less at error correction M, where the JWT took a version above 10", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    await insertOrder(event, fan, { seats: [seat], gaPlaces: 1 });
    const tickets = await myTickets(fan);
    expect(tickets).toHaveLength(2);
    for (const ticket of tickets) {
      if (!ticket.code || !ticket.token) throw new Error("a live ticket has a code and a token");
      expect(ticket.code).toMatch(/^[0-9A-Z $%*+\-./:]+$/);
      expect(qrVersion(ticket.code), ticket.code).toBeLessThanOrEqual(6);
      expect(qrVersion(ticket.token)).toBeGreaterThan(10);
    }
  });

  it("checks a ticket in once by its code: valid, then already_scanned (a trailing newline from a scanner is ignored)", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const ticketId = (await insertOrder(event, fan, { seats: [seat] })).tickets[0]?.id ?? "";
    const code = await codeOf(fan, ticketId);

    const first = await scan(event.apiKey, event.eventId, code);
    expect(first).toMatchObject({ result: "valid", ticket: { id: ticketId, holderAccountId: fan, status: "checked_in" } });
    const stored = await ticketState(ticketId);
    expect(stored.status).toBe("checked_in");
    expect(await scan(event.apiKey, event.eventId, `${code}\n`)).toMatchObject({ result: "already_scanned", ticket: { checkedInAt: first.ticket?.checkedInAt } });
    expect(await ticketState(ticketId)).toEqual(stored);
  });

  it("answers invalid for a tampered, forged, high-S, expired or other event's code, admitting nothing", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [seat, otherSeat] = event.seats;
    if (!fan || !seat || !otherSeat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat, otherSeat] });
    const [ticket, other] = order.tickets;
    if (!ticket || !other) throw new Error("fixture");
    const code = await codeOf(fan, ticket.id);
    const fields = { ticketId: ticket.id, eventId: event.eventId, place: ticket.place, expiresAt: new Date(event.startsAt.getTime() + TICKET_GRACE_MS) };

    // The other ticket's id written over this one's (bytes 2-17), signature kept.
    const otherCode = await codeOf(fan, other.id);
    const swapped = alteredCode(code, (bytes) => bytes.set(base45Decode(otherCode)?.subarray(2, 18) ?? [], 2));
    expect(await scan(event.apiKey, event.eventId, swapped)).toEqual({ result: "invalid", reason: "bad_token" });
    // A later expiry written in (bytes 22-25).
    expect(await scan(event.apiKey, event.eventId, alteredCode(code, (bytes) => (bytes[22] = (bytes[22] ?? 0) + 1)))).toEqual({ result: "invalid", reason: "bad_token" });
    // The signature's S in its high form (n - S): valid ECDSA, refused so that a code has one accepted form.
    const highS = alteredCode(code, (bytes) => {
      const s = BigInt(`0x${Buffer.from(bytes.subarray(bytes.length - 32)).toString("hex")}`);
      bytes.set(Buffer.from((P256_ORDER - s).toString(16).padStart(64, "0"), "hex"), bytes.length - 32);
    });
    expect(await scan(event.apiKey, event.eventId, highS)).toEqual({ result: "invalid", reason: "bad_token" });
    // Signed by a key that is not ours, under our kid and under its own.
    const { privateKey } = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])) as CryptoKeyPair;
    for (const kid of [await signingKid(env.TOKEN_SIGNING_KEY), "forger-1"]) {
      expect(await scan(event.apiKey, event.eventId, await compactCodeFor(fields, { kid, privateKey }))).toEqual({ result: "invalid", reason: "bad_token" });
    }
    // Ours, but expired.
    const expired = await compactCodeFor({ ...fields, expiresAt: new Date(Date.now() - 1_000) });
    expect(await scan(event.apiKey, event.eventId, expired)).toEqual({ result: "invalid", reason: "expired" });
    // Ours, for another event; and for a ticket that does not exist.
    expect(await scan(event.apiKey, event.eventId, await compactCodeFor({ ...fields, eventId: crypto.randomUUID() }))).toEqual({ result: "invalid", reason: "other_event" });
    expect(await scan(event.apiKey, event.eventId, await compactCodeFor({ ...fields, ticketId: crypto.randomUUID() }))).toEqual({ result: "invalid", reason: "unknown_ticket" });
    // Garbled: base45 that is not a code, and a code cut short.
    expect(await scan(event.apiKey, event.eventId, "ABC123")).toEqual({ result: "invalid", reason: "bad_token" });
    expect(await scan(event.apiKey, event.eventId, code.slice(0, -3))).toEqual({ result: "invalid", reason: "bad_token" });

    // None of that admitted anything; the real code still admits once.
    expect(await ticketState(ticket.id)).toEqual({ status: "valid", checkedInAt: null });
    expect(await ticketState(other.id)).toEqual({ status: "valid", checkedInAt: null });
    expect((await scan(event.apiKey, event.eventId, code)).result).toBe("valid");
  });
});
