/**
 * A fan the organizer clears after bot defense flagged them keeps the lobby
 * ticket they were given while flagged: its key is in the flagged block,
 * behind everyone, but the clear moved them to the key an unflagged fan would
 * have had and the room admits them there. Through the real routes, room,
 * shards, Redis and Postgres: that old ticket exchanges for an admission once
 * the room admitted the fan, and the admission holds seats. A flagged
 * ticket's exchange asks the fan's shard, 3 times a minute per account at
 * most; an unflagged fan's early ask is still answered from the published
 * document, without it.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TURNSTILE_DUMMY_TOKEN } from "../../../dev/turnstile";
import { decide } from "../../fixtures/bot-flags";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { expectApiError } from "../../fixtures/http";
import { entrantsOf, roomOf, shardRequestTotal } from "../../fixtures/objects";
import { fanSession } from "../../fixtures/tokens";
import { admitted, createdHoldSchema, exchangeTicket, holdBest, joined, type LobbyTicket } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

interface Fan {
  accountId: string;
  token: string;
  ticket: LobbyTicket;
}

/** Fan `i` joins from `device` and gets its ticket, as the queue page keeps it. */
async function join(sale: HotSale, i: number, device: string): Promise<Fan> {
  const accountId = accountOf(sale, i);
  const token = await fanSession(accountId);
  return { accountId, token, ticket: await joined(sale.eventId, { token }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device }) };
}

async function decided(sale: HotSale, accountId: string, decision: "clear" | "confirm"): Promise<void> {
  const answer = await decide(sale.apiKey, sale.eventId, accountId, { decision });
  expect(answer.status, answer.text).toBe(200);
}

describe("a fan the organizer cleared, holding the ticket they got while flagged", () => {
  it("exchanges that ticket once the room admits them, and holds seats with the admission", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 7, botPolicy: "deprioritize", maxAccountsPerDevice: 1, admissionRatePerSecond: 500 });
    // Three fans on devices of their own; three accounts on one device (over the limit of 1: all behind everyone).
    const shared = `shared-device-${crypto.randomUUID()}`;
    const devices = [0, 1, 2].map(() => `own-device-${crypto.randomUUID()}`).concat([shared, shared, shared]);
    for (const [i, device] of devices.entries()) await join(sale, i, device);
    // Joining again gives each its current ticket (the first on the shared device was moved back after it joined).
    const fans: Fan[] = [];
    for (const [i, device] of devices.entries()) fans.push(await join(sale, i, device));
    expect(fans.map((f) => f.ticket.block)).toEqual(["lobby", "lobby", "lobby", "flagged", "flagged", "flagged"]);
    const [, , , cleared, confirmedA, confirmedB] = fans;
    if (!cleared || !confirmedA || !confirmedB) throw new Error("six fans expected");

    // The organizer clears one of them and confirms the others: the cleared fan now waits in the lobby block.
    await decided(sale, cleared.accountId, "clear");
    await decided(sale, confirmedA.accountId, "confirm");
    await decided(sale, confirmedB.accountId, "confirm");
    const clearedRow = (await entrantsOf(sale.eventId)).find((e) => e.account_id === cleared.accountId);
    expect(clearedRow?.order_key).toBeLessThan(cleared.ticket.orderKey);

    // The sale: the room admits the four unflagged fans, the cleared one among them; the threshold stays short of the flagged block.
    setClock(sale.saleStartsAt + 1_000);
    expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
    const line = await entrantsOf(sale.eventId);
    expect(line.filter((e) => e.admitted === 1).map((e) => e.account_id).sort()).toEqual(fans.slice(0, 4).map((f) => f.accountId).sort());

    // A fan arriving after the sale opened asks too early: the published document answers, not the fan's shard.
    setClock(sale.saleStartsAt + 2_000);
    const late = await join(sale, 6, `own-device-${crypto.randomUUID()}`);
    expect(late.ticket.block).toBe("late");
    const exchangesBefore = await shardRequestTotal(sale.eventId, "exchange");
    expectApiError(await exchangeTicket(sale.eventId, { token: late.token }, late.ticket.ticket), 409, "not_admitted_yet");
    expect(await shardRequestTotal(sale.eventId, "exchange")).toBe(exchangesBefore);

    // The cleared fan's old ticket gets them in, and the admission holds.
    const admission = await admitted(sale.eventId, { token: cleared.token }, cleared.ticket.ticket);
    const held = await holdBest(sale.eventId, { token: admission.token }, { quantity: 2 });
    expect(held.status, held.text).toBe(201);
    expect(createdHoldSchema.parse(held.json).hold.status).toBe("live");

    // A confirmed account's flagged ticket still admits nobody.
    expectApiError(await exchangeTicket(sale.eventId, { token: confirmedA.token }, confirmedA.ticket.ticket), 409, "not_admitted_yet");

    // A flagged account asking over and over (a bot calling the route itself) reaches its shard 3 times a minute at most;
    // the published document answers the rest, as it answers every other early ask.
    const asksBefore = await shardRequestTotal(sale.eventId, "exchange");
    for (let ask = 0; ask < 6; ask++) {
      expectApiError(await exchangeTicket(sale.eventId, { token: confirmedB.token }, confirmedB.ticket.ticket), 409, "not_admitted_yet");
    }
    expect(await shardRequestTotal(sale.eventId, "exchange")).toBe(asksBefore + 3);
  });
});
