/**
 * Issue 12, Build item 0: the room follows its event. A change to an event's
 * times through `PATCH /admin/events/:id` reaches its waiting room at once:
 * brought forward, fans can join at the new time; postponed, nobody is
 * admitted at the old time, and the line moves at the new one. A change to
 * the bot policy or limits applies to the next join.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN } from "../../../dev/turnstile";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, expectApiError } from "../../fixtures/http";
import { roomOf } from "../../fixtures/objects";
import { fanSession } from "../../fixtures/tokens";
import { exchangeTicket, joined, joinLobby } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

const HOUR = 3_600_000;
const liveSchema = z.object({ queue: z.object({ admitted: z.number() }) });

async function admitted(sale: HotSale): Promise<number> {
  const response = await adminRequest(sale.apiKey, "GET", `/events/${sale.eventId}/live`);
  expect(response.status, response.text).toBe(200);
  return liveSchema.parse(response.json).queue.admitted;
}

async function patchEvent(sale: HotSale, body: Record<string, unknown>): Promise<void> {
  const response = await adminRequest(sale.apiKey, "PATCH", `/events/${sale.eventId}`, body);
  expect(response.status, response.text).toBe(200);
}

async function tickAt(sale: HotSale, at: number): Promise<void> {
  setClock(at);
  expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
}

describe("the room follows its event", () => {
  it("brought forward: fans can join at the new time, and are admitted from the new start", async () => {
    const now = startFakeClock();
    // The lobby opens an hour before a sale 3 hours away: closed now.
    const sale = await hotSale({ accounts: 2, saleStartsInMs: 3 * HOUR, lobbyOpensMinutes: 60 });
    const token = await fanSession(accountOf(sale, 0));
    expectApiError(await joinLobby(sale.eventId, { token }), 409, "lobby_closed");

    // The sale moves to 30 minutes from now: the lobby is open at once.
    const newStart = now + HOUR / 2;
    await patchEvent(sale, { saleStartsAt: new Date(newStart).toISOString() });
    const ticket = await joined(sale.eventId, { token });
    expect(ticket.block).toBe("lobby");

    await tickAt(sale, newStart - 1_000);
    expect(await admitted(sale)).toBe(0);
    await tickAt(sale, newStart + 1_000);
    expect(await admitted(sale)).toBe(1);
    const exchange = await exchangeTicket(sale.eventId, { token }, ticket.ticket);
    expect(exchange.status, exchange.text).toBe(200);
  });

  it("postponed: nobody is admitted at the old time; the line moves at the new one", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 2, saleStartsInMs: 10 * 60_000 });
    const fans = [];
    for (const accountId of sale.accounts) {
      const token = await fanSession(accountId);
      fans.push({ token, ticket: await joined(sale.eventId, { token }) });
    }
    // The room has been ticking with the old times.
    await tickAt(sale, sale.saleStartsAt - 1_000);

    const newStart = sale.saleStartsAt + 2 * HOUR;
    await patchEvent(sale, { saleStartsAt: new Date(newStart).toISOString() });
    for (const at of [sale.saleStartsAt + 1_000, sale.saleStartsAt + 60_000]) {
      await tickAt(sale, at);
      expect(await admitted(sale)).toBe(0);
      for (const fan of fans) expectApiError(await exchangeTicket(sale.eventId, { token: fan.token }, fan.ticket.ticket), 409, "not_admitted_yet");
    }
    await tickAt(sale, newStart + 1_000);
    expect(await admitted(sale)).toBe(2);
    for (const fan of fans) expect((await exchangeTicket(sale.eventId, { token: fan.token }, fan.ticket.ticket)).status).toBe(200);
  });

  it("a new bot policy applies to the next join", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 4, maxAccountsPerDevice: 2, botPolicy: "deprioritize" });
    const device = `device-${crypto.randomUUID()}`;
    const join = async (i: number) => joinLobby(sale.eventId, { token: await fanSession(accountOf(sale, i)) }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device });
    for (const i of [0, 1]) expect((await join(i)).status).toBe(200);
    await patchEvent(sale, { botPolicy: "refuse", maxAccountsPerDevice: 1 });
    expectApiError(await join(2), 403, "refused");
  });
});
