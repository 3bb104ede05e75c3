/**
 * Issue 13, finding 1, through the Worker: every admission passes through the
 * room's tick, late arrivals included. Once the threshold has moved into the
 * block of flagged accounts, a fan who joins after the start gets a key below
 * it (late arrivals queue ahead of flagged accounts); that key alone must not
 * admit them:
 *  - a paused room admits nobody;
 *  - a running room admits late arrivals at its pace (one tick's worth at a
 *    time), counts them, and only as far as the inventory grants.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN } from "../../../dev/turnstile";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, expectApiError } from "../../fixtures/http";
import { promisedPlaces, roomOf } from "../../fixtures/objects";
import { fanSession } from "../../fixtures/tokens";
import { exchangeTicket, joined, type LobbyTicket } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

interface Fan {
  token: string;
  ticket: LobbyTicket;
}

const liveSchema = z.object({ queue: z.object({ admitted: z.number(), paused: z.boolean() }) });

/** The room's admission state as the organizer's live view shows it. */
async function live(sale: HotSale): Promise<{ admitted: number; paused: boolean }> {
  const response = await adminRequest(sale.apiKey, "GET", `/events/${sale.eventId}/live`);
  expect(response.status, response.text).toBe(200);
  return liveSchema.parse(response.json).queue;
}

async function tickAt(sale: HotSale, at: number): Promise<void> {
  setClock(at);
  expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
}

/** Fan `i` joins from a device of its own, or from `device`. */
async function join(sale: HotSale, i: number, device = `own-device-${crypto.randomUUID()}`): Promise<Fan> {
  const token = await fanSession(accountOf(sale, i));
  return { token, ticket: await joined(sale.eventId, { token }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device }) };
}

/**
 * Before the sale: `lobby` fans join on their own devices and `flagged` more
 * share one device (over the limit of 1, so they all queue behind everyone;
 * the first of them was moved there when the second joined, so every fan
 * joins again for its current ticket, as the queue page does).
 */
async function crowd(sale: HotSale, lobby: number, flagged: number): Promise<Fan[]> {
  const shared = `shared-device-${crypto.randomUUID()}`;
  const devices = Array.from({ length: lobby + flagged }, (_, i) => (i < lobby ? `own-device-${crypto.randomUUID()}` : shared));
  for (const [i, device] of devices.entries()) await join(sale, i, device);
  const fans: Fan[] = [];
  for (const [i, device] of devices.entries()) fans.push(await join(sale, i, device));
  expect(fans.map((f) => f.ticket.block)).toEqual(devices.map((_, i) => (i < lobby ? "lobby" : "flagged")));
  return fans;
}

async function exchangeStatus(sale: HotSale, fan: Fan): Promise<number> {
  return (await exchangeTicket(sale.eventId, { token: fan.token }, fan.ticket.ticket)).status;
}

describe("admission of late arrivals (issue 13, finding 1)", () => {
  it("a paused room admits nobody, late arrivals included, and admits them once it resumes", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 5, maxAccountsPerDevice: 1, admissionRatePerSecond: 100 });
    const early = await crowd(sale, 2, 2);
    await tickAt(sale, sale.saleStartsAt + 1_000);
    expect(await live(sale)).toEqual({ admitted: 4, paused: false });

    const paused = await adminRequest(sale.apiKey, "PATCH", `/events/${sale.eventId}/admission`, { paused: true });
    expect(paused.status, paused.text).toBe(200);
    setClock(sale.saleStartsAt + 2_000);
    const late = await join(sale, 4);
    expect(late.ticket.block).toBe("late");
    expectApiError(await exchangeTicket(sale.eventId, { token: late.token }, late.ticket.ticket), 409, "not_admitted_yet");
    await tickAt(sale, sale.saleStartsAt + 3_000);
    expectApiError(await exchangeTicket(sale.eventId, { token: late.token }, late.ticket.ticket), 409, "not_admitted_yet");
    expect(await live(sale)).toEqual({ admitted: 4, paused: true });
    // The fans admitted before the pause keep their admission.
    for (const fan of early) expect(await exchangeStatus(sale, fan)).toBe(200);

    const resumed = await adminRequest(sale.apiKey, "PATCH", `/events/${sale.eventId}/admission`, { paused: false });
    expect(resumed.status, resumed.text).toBe(200);
    await tickAt(sale, sale.saleStartsAt + 4_000);
    expect(await live(sale)).toEqual({ admitted: 5, paused: false });
    expect(await exchangeStatus(sale, late)).toBe(200);
  });

  it("a running room admits late arrivals one tick's worth at a time, and counts them", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 7, maxAccountsPerDevice: 1, admissionRatePerSecond: 1, purchaseLimit: 1 });
    await crowd(sale, 2, 2);
    for (let s = 1; s <= 4; s++) await tickAt(sale, sale.saleStartsAt + s * 1_000);
    expect((await live(sale)).admitted).toBe(4);

    // Three fans arrive after the start, a millisecond apart (late keys follow arrival time to the millisecond).
    const late: Fan[] = [];
    for (const i of [4, 5, 6]) {
      setClock(sale.saleStartsAt + 4_500 + i);
      late.push(await join(sale, i));
    }
    for (const fan of late) expect(fan.ticket.block).toBe("late");
    for (const fan of late) expect(await exchangeStatus(sale, fan)).toBe(409);

    // One fan per second: each tick lets exactly the next late arrival in, in arrival order.
    for (const [i, fan] of late.entries()) {
      await tickAt(sale, sale.saleStartsAt + (5 + i) * 1_000);
      expect((await live(sale)).admitted).toBe(5 + i);
      expect(await exchangeStatus(sale, fan)).toBe(200);
      for (const behind of late.slice(i + 1)) expect(await exchangeStatus(sale, behind)).toBe(409);
    }
  });

  it("a running room admits late arrivals only as far as the inventory grants", async () => {
    startFakeClock();
    // 2 x 1 x 2 seats and 2 standing places: 6 places, 2 per fan, so the first 3 fans are promised all of them.
    const sale = await hotSale({ chart: smallChart(1, 2, 2), accounts: 4, maxAccountsPerDevice: 1, admissionRatePerSecond: 100, purchaseLimit: 2 });
    expect(sale.capacity).toBe(6);
    await crowd(sale, 1, 2);
    await tickAt(sale, sale.saleStartsAt + 1_000);
    expect((await live(sale)).admitted).toBe(3);
    expect(await promisedPlaces(sale.eventId)).toBe(6);

    setClock(sale.saleStartsAt + 1_500);
    const late = await join(sale, 3);
    expect(late.ticket.block).toBe("late");
    for (const at of [2_000, 3_000]) {
      await tickAt(sale, sale.saleStartsAt + at);
      expect(await exchangeStatus(sale, late)).toBe(409);
      expect((await live(sale)).admitted).toBe(3);
      expect(await promisedPlaces(sale.eventId)).toBe(6);
    }
  });
});
