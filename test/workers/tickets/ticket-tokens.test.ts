/**
 * Ticket tokens: signed tokens that carry the ticket and verify offline with
 * only the published JWKS, QR codes that decode back to them, and tokens
 * that are tampered with, forged or expired failing verification.
 */
import { env } from "cloudflare:test";
import { base64url, decodeJwt, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ticketQrPng, ticketQrSvg } from "../../../workers/tickets/qr-codes";
import { signTicketToken, TICKET_GRACE_MS, verifyTicketToken } from "../../../workers/tickets/ticket-tokens";
import { decodeQrPng, decodeQrSvg, publishedJwks, ticketedEvent, verifyOffline } from "../../fixtures/tickets";
import { payloadOf, tamperedToken } from "../../fixtures/tokens";

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
      tamperedToken(token, { seat: { section: "A", row: "1", seat: "2" } }),
      tamperedToken(token, { sub: other }),
      tamperedToken(token, { eid: crypto.randomUUID() }),
      tamperedToken(token, { exp: Number(payloadOf(token).exp) + 86_400 * 365 }),
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

it("decodes tokens without trusting them (sanity of the tamper helper)", async () => {
  const event = await ticketedEvent({ accounts: 1 });
  const [fan] = event.accounts;
  if (!fan) throw new Error("fixture");
  const token = await signTicketToken(env.TOKEN_SIGNING_KEY, { id: crypto.randomUUID(), eventId: event.eventId, holderAccountId: fan, place: { section: "PIT", ga: true }, eventEndsAt: event.startsAt });
  const other = crypto.randomUUID();
  expect(decodeJwt(tamperedToken(token, { sub: other })).sub).toBe(other);
  expect(decodeJwt(tamperedToken(token, {}))).toEqual(decodeJwt(token));
});
