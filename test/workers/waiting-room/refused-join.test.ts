/**
 * Issue 13, finding 4 (last part): a lobby join the Worker refuses with a 4xx
 * records nothing. No device, address, Turnstile-device or account-burst
 * signal in Redis, no account facts, no entrant, no bot flag; the only trace
 * a refusal that got past the request's checks may leave is the attempt the
 * rate limiter counts, which is what the limiter is for. Read straight from
 * the real Redis (through the Upstash bridge) before and after.
 *
 * Finding 4 itself: a join refused with 409 `lobby_closed` had already
 * recorded its device and IP signals, taken back afterwards only in part (an
 * account's earlier facts overwritten, every set's lifetime renewed) and
 * visible to concurrent joins meanwhile.
 */
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TURNSTILE_TEST_SECRETS, turnstileTokenOnDevice } from "../../../dev/turnstile";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { withDb } from "../../fixtures/db";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, expectApiError, expectInvalid, type ReadResponse, uniqueIp } from "../../fixtures/http";
import { entrantsOf } from "../../fixtures/objects";
import { ageKeys, redisKeys, type StoredKey } from "../../fixtures/redis";
import { openEvent } from "../../fixtures/seeding";
import { fanSession } from "../../fixtures/tokens";
import { joined, joinLobby, joinLobbyWith, postJson } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

const HOUR = 3_600_000;
/** The rate limiters' keys (workers/waiting-room/bot-defense.ts): the attempts they count. */
const LIMITER_PREFIX = "rl:";

/** A join from a named device (its Turnstile token carries the device's ephemeral id, and the client reports it too). */
function fromDevice(device: string) {
  return { turnstileToken: turnstileTokenOnDevice(device), deviceId: device };
}

/**
 * A sale whose lobby has signals of every kind: under policy "refuse" with
 * one account per device, two accounts joined from one device (both are now
 * out of the line, their facts kept as evidence) and a third from its own
 * device is in line. Returns the shared device and address.
 */
async function saleWithSignals(): Promise<{ sale: HotSale; device: string; ip: string }> {
  startFakeClock();
  const sale = await hotSale({ accounts: 6, saleStartsInMs: 10 * 60_000, botPolicy: "refuse", maxAccountsPerDevice: 1 });
  const device = `device-${crypto.randomUUID()}`;
  const ip = uniqueIp();
  await joined(sale.eventId, { token: await fanSession(accountOf(sale, 0)), ip }, fromDevice(device));
  expectApiError(await joinLobby(sale.eventId, { token: await fanSession(accountOf(sale, 1)), ip: uniqueIp() }, fromDevice(device)), 403, "refused");
  await joined(sale.eventId, { token: await fanSession(accountOf(sale, 2)) }, fromDevice(`device-${crypto.randomUUID()}`));
  return { sale, device, ip };
}

/** Everything stored about the event's line: its Redis keys (values and lifetimes), its entrants and its bot flags. */
async function lineState(eventId: string) {
  const flags = await withDb(async (db) => (await db.execute(sql`select account_id, reason, deprioritized, detail from bot_flags where event_id = ${eventId} order by account_id, reason`)).rows);
  return { redis: await redisKeys(`*${eventId}*`), entrants: await entrantsOf(eventId), flags };
}
type LineState = Awaited<ReturnType<typeof lineState>>;

/**
 * Asserts nothing changed between `before` and `after`: the same keys with
 * the same values, none living longer than before; the same entrants and
 * flags. With `attemptCounted`, the limiters' keys may have counted the
 * attempt; without it, they too are unchanged.
 */
function expectNothingRecorded(before: LineState, after: LineState, options: { attemptCounted: boolean }): void {
  const kept = (keys: Map<string, StoredKey>) => [...keys].filter(([key]) => !(options.attemptCounted && key.startsWith(LIMITER_PREFIX)));
  const values = (keys: Map<string, StoredKey>) => kept(keys).map(([key, { type, value }]) => ({ key, type, value }));
  expect(values(after.redis)).toEqual(values(before.redis));
  for (const [key, { ttlMs }] of kept(after.redis)) expect(ttlMs, `the lifetime of ${key}`).toBeLessThanOrEqual(before.redis.get(key)?.ttlMs ?? Number.NEGATIVE_INFINITY);
  expect(after.entrants).toEqual(before.entrants);
  expect(after.flags).toEqual(before.flags);
}

/** Runs the refused joins and checks they recorded nothing. */
async function refusedRecordNothing(sale: HotSale, joins: (() => Promise<ReadResponse>)[], expectRefusal: (response: ReadResponse) => void, options: { attemptCounted: boolean }): Promise<void> {
  // Signals written long ago: a renewed lifetime would show.
  await ageKeys(`lobby:${sale.eventId}:*`, HOUR);
  const before = await lineState(sale.eventId);
  expect([...before.redis.keys()].filter((key) => key.startsWith(`lobby:${sale.eventId}:`)).length).toBeGreaterThan(0);
  for (const join of joins) expectRefusal(await join());
  expectNothingRecorded(before, await lineState(sale.eventId), options);
}

/** Ways a lobby turns newcomers away: postponed (the lobby opens later), or over. */
const closings: { code: string; how: string; close: (sale: HotSale) => Promise<void> }[] = [
  {
    code: "lobby_closed",
    how: "the sale was postponed",
    close: async (sale) => {
      const postponed = await adminRequest(sale.apiKey, "PATCH", `/events/${sale.eventId}`, { saleStartsAt: new Date(sale.saleStartsAt + 3 * HOUR).toISOString() });
      expect(postponed.status, postponed.text).toBe(200);
    },
  },
  { code: "sale_ended", how: "the sale is over", close: async (sale) => setClock(sale.saleEndsAt + 1_000) },
];

describe("a lobby join refused for its timing records nothing", () => {
  it.each(closings)("409 $code ($how): neither a refused account coming back from elsewhere nor a newcomer on a known device and address leaves a trace", async ({ code, close }) => {
    const { sale, device, ip } = await saleWithSignals();
    await close(sale);
    const refusedAccount = await fanSession(accountOf(sale, 1));
    const newcomer = await fanSession(accountOf(sale, 3));
    await refusedRecordNothing(
      sale,
      [
        () => joinLobby(sale.eventId, { token: refusedAccount, ip: uniqueIp() }, fromDevice(`device-${crypto.randomUUID()}`)),
        () => joinLobby(sale.eventId, { token: newcomer, ip }, fromDevice(device)),
      ],
      (response) => expectApiError(response, 409, code),
      { attemptCounted: true },
    );
  });
});

describe("a lobby join refused for its request records nothing", () => {
  it("400 invalid_request and 401: nothing, not even an attempt", async () => {
    const { sale, device, ip } = await saleWithSignals();
    const token = await fanSession(accountOf(sale, 3));
    const lobby = `/api/events/${sale.eventId}/lobby`;
    await refusedRecordNothing(
      sale,
      [
        () => postJson(lobby, { token, ip }, { turnstileToken: "", deviceId: device }),
        () => postJson(lobby, { token, ip }, { ...fromDevice(device), deviceId: "../../etc" }),
        () => postJson(lobby, { token, ip }, { ...fromDevice(device), priority: "front" }),
      ],
      (response) => expectInvalid(response),
      { attemptCounted: false },
    );
    await refusedRecordNothing(sale, [() => joinLobby(sale.eventId, { ip }, fromDevice(device))], (response) => expectApiError(response, 401, "unauthorized"), { attemptCounted: false });
  });

  it("400 turnstile_failed: nothing but the attempt", async () => {
    const { sale, device, ip } = await saleWithSignals();
    const token = await fanSession(accountOf(sale, 3));
    await refusedRecordNothing(
      sale,
      [TURNSTILE_TEST_SECRETS.fails, TURNSTILE_TEST_SECRETS.spent].map((secret) => () => joinLobbyWith({ TURNSTILE_SECRET_KEY: secret }, sale.eventId, { token, ip }, fromDevice(device))),
      (response) => expectApiError(response, 400, "turnstile_failed"),
      { attemptCounted: true },
    );
  });

  it("409 no_waiting_room at a calm event: nothing", async () => {
    startFakeClock();
    const calm = await openEvent({ demandClass: "calm", accounts: 1 });
    const before = await lineState(calm.event.id);
    const token = await fanSession(calm.accounts[0] ?? "");
    expectApiError(await joinLobby(calm.event.id, { token }, fromDevice(`device-${crypto.randomUUID()}`)), 409, "no_waiting_room");
    const after = await lineState(calm.event.id);
    expect(after.redis.size).toBe(0);
    expectNothingRecorded(before, after, { attemptCounted: false });
  });
});
