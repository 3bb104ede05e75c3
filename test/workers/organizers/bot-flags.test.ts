/**
 * The organizer's decisions on bot flags (issue 14, "Bot flags"), on the real
 * room, shards, Redis and Postgres: clearing gives the account the place an
 * unflagged fan joining when it joined would have had (so it is admitted as
 * one), confirming keeps it out of every admission; the GET shows each
 * decision; a decision is idempotent; bad input, an account never flagged and
 * a read-only key change nothing.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { TURNSTILE_DUMMY_TOKEN } from "../../../dev/turnstile";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FLAGGED_BLOCK_START, LATE_BLOCK_START } from "../../../core/waiting-room/queue-state";
import { createKey } from "../../fixtures/api-keys";
import { botFlagsSchema, decide, decidedSchema, flagAccount } from "../../fixtures/bot-flags";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, expectApiError, expectInvalid, uniqueIp } from "../../fixtures/http";
import { entrantsOf, lobbyJoin, lobbyShardIndex, roomOf } from "../../fixtures/objects";
import { fanSession } from "../../fixtures/tokens";
import { joined, joinLobby } from "../../fixtures/waiting-room";

/** Evidence of four accounts on one reported device: behind everyone. */
const SHARED_DEVICE = { ip: "", device: "farm", deviceReported: true, ephemeralId: null, accountCreatedAt: 0, accountsOnDevice: 4, accountsOnEphemeralId: 1, accountsOnIp: 1, accountsInCreationBurst: 1 };

afterEach(() => {
  vi.useRealTimers();
});

/** Account `i` joins the lobby from `device` (its own unless told), from an address of its own. */
async function join(sale: HotSale, i: number, device = `own-${crypto.randomUUID()}`) {
  return joined(sale.eventId, { token: await fanSession(accountOf(sale, i)), ip: uniqueIp() }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device });
}

async function flags(sale: HotSale) {
  const listed = await adminRequest(sale.apiKey, "GET", `/events/${sale.eventId}/bot-flags`);
  expect(listed.status, listed.text).toBe(200);
  return botFlagsSchema.parse(listed.json).flags;
}

async function decided(sale: HotSale, accountId: string, decision: "clear" | "confirm") {
  const answer = await decide(sale.apiKey, sale.eventId, accountId, { decision });
  expect(answer.status, answer.text).toBe(200);
  return decidedSchema.parse(answer.json);
}

async function keyOf(sale: HotSale, accountId: string) {
  const row = (await entrantsOf(sale.eventId)).find((e) => e.account_id === accountId);
  if (!row) throw new Error(`${accountId} is not in line`);
  return row;
}

/** Four accounts on one device with a limit of one: the last three join flagged (behind everyone). */
async function sharedDevice(sale: HotSale, first: number) {
  const device = `farm-${crypto.randomUUID()}`;
  for (let i = first; i < first + 4; i++) await join(sale, i, device);
  const flagged = new Set((await flags(sale)).map((f) => f.accountId));
  const bots = [0, 1, 2, 3].map((n) => accountOf(sale, first + n)).filter((a) => flagged.has(a));
  expect(bots.length).toBeGreaterThanOrEqual(3);
  return Object.assign(bots, { device });
}

describe("bot flags: clear or confirm", () => {
  it("clearing puts a lobby account where an unflagged fan would be and it is admitted; confirming keeps it out; the GET shows both", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 8, botPolicy: "deprioritize", maxAccountsPerDevice: 1, admissionRatePerSecond: 500 });
    for (let i = 0; i < 4; i++) await join(sale, i);
    const farm = await sharedDevice(sale, 4);
    const [cleared = "", confirmed = "", untouched = ""] = farm;
    for (const bot of [cleared, confirmed, untouched]) expect((await keyOf(sale, bot)).order_key).toBeGreaterThanOrEqual(FLAGGED_BLOCK_START);

    expect(await decided(sale, cleared, "clear")).toEqual({ accountId: cleared, decision: "clear", line: "moved" });
    expect(await decided(sale, confirmed, "confirm")).toEqual({ accountId: confirmed, decision: "confirm", line: "unchanged" });
    const clearedRow = await keyOf(sale, cleared);
    // Joined before the sale: a key in the lobby block, as every unflagged fan who joined then has.
    expect(clearedRow).toMatchObject({ flagged: null, penalty_level: 0 });
    expect(clearedRow.order_key).toBeLessThan(LATE_BLOCK_START);
    // Deciding again changes nothing.
    expect(await decided(sale, cleared, "clear")).toMatchObject({ line: "unchanged" });
    expect((await keyOf(sale, cleared)).order_key).toBe(clearedRow.order_key);
    // Joining again (with the same evidence against it) does not move a cleared account back.
    const rejoined = await joined(sale.eventId, { token: await fanSession(cleared), ip: uniqueIp() }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: farm.device });
    expect(rejoined).toMatchObject({ orderKey: clearedRow.order_key, block: "lobby" });
    // Nor does new evidence weighed against it (as when a set it shares goes over its limit).
    const shard = await lobbyShardIndex(sale.eventId, cleared);
    const [weighed] = await shard.stub.penalize(sale.eventId, shard.index, [{ accountId: cleared, evidence: { ...SHARED_DEVICE, ip: uniqueIp() } }]);
    expect(weighed?.outcome).toBe("unchanged");
    expect((await keyOf(sale, cleared)).order_key).toBe(clearedRow.order_key);

    const listed = await flags(sale);
    const decisionOf = (accountId: string) => listed.filter((f) => f.accountId === accountId).map((f) => f.decision);
    expect(decisionOf(cleared).every((d) => d === "clear")).toBe(true);
    expect(decisionOf(confirmed).every((d) => d === "confirm")).toBe(true);
    expect(decisionOf(untouched).every((d) => d === null)).toBe(true);
    expect(listed.find((f) => f.accountId === cleared)?.decidedAt).not.toBeNull();

    // The sale: the room admits everyone in line but the confirmed account, however many ticks it takes.
    for (let tick = 0; tick < 5; tick++) {
      setClock(sale.saleStartsAt + tick * 1_000);
      expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
    }
    const line = await entrantsOf(sale.eventId);
    expect(line.filter((e) => e.admitted === 0).map((e) => e.account_id)).toEqual([confirmed]);
  });

  it("clearing a late arrival queues it by its own arrival time: behind those who came before it, ahead of those after", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 8, botPolicy: "deprioritize", maxAccountsPerDevice: 1, admissionRatePerSecond: 1 });
    const device = `farm-${crypto.randomUUID()}`;
    await join(sale, 0, device);
    setClock(sale.saleStartsAt + 60_000);
    const before = await join(sale, 1);
    setClock(sale.saleStartsAt + 61_000);
    const bot = await join(sale, 2, device);
    expect(bot.block).toBe("flagged");
    setClock(sale.saleStartsAt + 62_000);
    const after = await join(sale, 3);
    setClock(sale.saleStartsAt + 600_000);

    expect(await decided(sale, accountOf(sale, 2), "clear")).toMatchObject({ line: "moved" });
    const key = (await keyOf(sale, accountOf(sale, 2))).order_key;
    expect(key).toBeGreaterThan(before.orderKey);
    expect(key).toBeLessThan(after.orderKey);
  });

  it("confirming an account a lighter penalty left in the lobby moves it behind everyone", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 2, botPolicy: "deprioritize", maxAccountsPerIp: 5 });
    const accountId = accountOf(sale, 0);
    // A creation burst (2) on a shared address (1): the back half of the lobby block, not behind everyone.
    const evidence = { ip: uniqueIp(), device: "d", deviceReported: true, ephemeralId: null, accountCreatedAt: 0, accountsOnDevice: 1, accountsOnEphemeralId: 1, accountsOnIp: 6, accountsInCreationBurst: 10 };
    const joinedAt = await lobbyJoin(sale.eventId, accountId, evidence);
    expect(joinedAt).toMatchObject({ ok: true, block: "lobby", assessment: { level: 1 } });
    await flagAccount(sale.eventId, accountId);

    expect(await decided(sale, accountId, "confirm")).toMatchObject({ line: "moved" });
    expect((await keyOf(sale, accountId)).order_key).toBeGreaterThanOrEqual(FLAGGED_BLOCK_START);
  });

  it("clearing an account the policy \"refuse\" kept out lets it join as any fan", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 4, botPolicy: "refuse", maxAccountsPerDevice: 1 });
    const device = `farm-${crypto.randomUUID()}`;
    await join(sale, 0, device);
    const refused = await joinLobby(sale.eventId, { token: await fanSession(accountOf(sale, 1)), ip: uniqueIp() }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device });
    expectApiError(refused, 403, "refused");

    expect(await decided(sale, accountOf(sale, 1), "clear")).toMatchObject({ line: "absent" });
    expect(await join(sale, 1, device)).toMatchObject({ block: "lobby", rejoined: false });
  });

  it("answers 400 for bad input, 404 for an account not flagged there, 403 for a read-only key, and changes nothing", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 8, botPolicy: "deprioritize", maxAccountsPerDevice: 1 });
    await join(sale, 0);
    const [bot = ""] = await sharedDevice(sale, 1);
    const before = { flags: await flags(sale), line: await entrantsOf(sale.eventId) };

    expectInvalid(await decide(sale.apiKey, sale.eventId, bot, { decision: "ban" }), "decision");
    expectInvalid(await decide(sale.apiKey, sale.eventId, bot, {}), "decision");
    expectInvalid(await decide(sale.apiKey, sale.eventId, bot, { decision: "clear", extra: 1 }));
    expectInvalid(await decide(sale.apiKey, sale.eventId, "not-a-uuid", { decision: "clear" }));
    expectApiError(await decide(sale.apiKey, sale.eventId, accountOf(sale, 0), { decision: "clear" }), 404, "not_found");
    expectApiError(await decide(sale.apiKey, sale.eventId, crypto.randomUUID(), { decision: "confirm" }), 404, "not_found");
    expectApiError(await decide(sale.apiKey, crypto.randomUUID(), bot, { decision: "confirm" }), 404, "not_found");

    const reader = await createKey(sale.apiKey, { scope: "read" });
    expectApiError(await decide(reader.secret, sale.eventId, bot, { decision: "clear" }), 403, "forbidden");
    expect((await adminRequest(reader.secret, "GET", `/events/${sale.eventId}/bot-flags`)).status).toBe(200);

    expect({ flags: await flags(sale), line: await entrantsOf(sale.eventId) }).toEqual(before);
  });
});
