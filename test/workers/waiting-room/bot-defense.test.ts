/**
 * Lobby defenses through the Worker, against the real Redis and Postgres:
 * a hundred accounts from one device are flagged (bot_flags rows, shown to the
 * organizer) and, by the event's policy, either queued behind every unflagged
 * fan or refused and taken out of the room; rate limits answer 429 with
 * Retry-After; a failed, spent or unverifiable Turnstile check answers 400.
 */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN, TURNSTILE_TEST_SECRETS } from "../../../dev/turnstile";
import { FLAGGED_BLOCK_START, LATE_BLOCK_START } from "../../../core/waiting-room/queue-state";
import { startFakeClock } from "../../fixtures/clocks";
import { withDb } from "../../fixtures/db";
import { hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, expectApiError, uniqueIp } from "../../fixtures/http";
import { entrantsOf, roomStorage } from "../../fixtures/objects";
import { fanSession } from "../../fixtures/tokens";
import { joined, joinLobby, joinLobbyWith } from "../../fixtures/waiting-room";

const BOTS = 100;
const HUMANS = 10;

afterEach(() => {
  vi.useRealTimers();
});

const flagsSchema = z.object({
  flags: z.array(z.object({ accountId: z.uuid(), email: z.string(), reason: z.string(), deprioritized: z.boolean(), detail: z.record(z.string(), z.unknown()), createdAt: z.string() })),
});

/** The event's bot_flags rows, straight from Postgres. */
function flagRows(eventId: string): Promise<{ account_id: string; reason: string; deprioritized: boolean }[]> {
  return withDb(async (db) => (await db.execute<{ account_id: string; reason: string; deprioritized: boolean }>(sql`select account_id, reason, deprioritized from bot_flags where event_id = ${eventId}`)).rows);
}

/** Humans join from their own devices and networks; then every bot joins from one device (each from its own IP). */
async function crowd(sale: HotSale, device: string) {
  const humans = sale.accounts.slice(0, HUMANS);
  const bots = sale.accounts.slice(HUMANS, HUMANS + BOTS);
  for (const accountId of humans) await joined(sale.eventId, { token: await fanSession(accountId) });
  const answers = [];
  for (const accountId of bots) {
    answers.push(await joinLobby(sale.eventId, { token: await fanSession(accountId), ip: uniqueIp() }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device }));
  }
  return { humans, bots, answers };
}

describe("bots in the lobby", () => {
  it(
    `flags ${BOTS} accounts sharing one device and, with policy "deprioritize", queues them all behind every unflagged fan`,
    async () => {
      startFakeClock();
      const sale = await hotSale({ accounts: HUMANS + BOTS, botPolicy: "deprioritize", maxAccountsPerDevice: 3 });
      const { humans, bots, answers } = await crowd(sale, `device-${crypto.randomUUID()}`);

      answers.forEach((answer, i) => {
        expect(answer.status, answer.text).toBe(200);
        // The first three are within the limit when they join; the rest join flagged.
        expect(z.object({ block: z.string() }).parse(answer.json).block).toBe(i < 3 ? "lobby" : "flagged");
      });

      const { entrants } = await roomStorage(sale.eventId);
      const keyOf = new Map(entrants.map((e) => [e.account_id, e]));
      const humanKeys = humans.map((a) => keyOf.get(a)?.order_key ?? Infinity);
      const botKeys = bots.map((a) => keyOf.get(a)?.order_key ?? -1);
      expect(Math.max(...humanKeys)).toBeLessThan(LATE_BLOCK_START);
      expect(Math.min(...botKeys)).toBeGreaterThanOrEqual(FLAGGED_BLOCK_START);
      expect(bots.every((a) => keyOf.get(a)?.flagged === "shared_device")).toBe(true);
      expect(humans.every((a) => keyOf.get(a)?.flagged === null)).toBe(true);

      const rows = await flagRows(sale.eventId);
      expect(rows.map((r) => r.account_id).sort()).toEqual([...bots].sort());
      expect(rows.every((r) => r.reason === "shared_device" && r.deprioritized)).toBe(true);

      const listed = await adminRequest(sale.apiKey, "GET", `/events/${sale.eventId}/bot-flags`);
      expect(listed.status, listed.text).toBe(200);
      const flags = flagsSchema.parse(listed.json).flags;
      expect(flags.map((f) => f.accountId).sort()).toEqual([...bots].sort());
      expect(flags[0]?.detail).toMatchObject({ accounts: expect.any(Number) });

      // A flagged bot joining again, from anywhere, keeps its place at the back.
      const again = await joined(sale.eventId, { token: await fanSession(bots[0] ?? "") });
      expect(again).toMatchObject({ block: "flagged", rejoined: true, orderKey: keyOf.get(bots[0] ?? "")?.order_key });
    },
    120_000,
  );

  it(
    `with policy "refuse", answers 403 beyond the limit and takes every flagged account out of the room`,
    async () => {
      startFakeClock();
      const sale = await hotSale({ accounts: HUMANS + BOTS, botPolicy: "refuse", maxAccountsPerDevice: 3 });
      const { humans, bots, answers } = await crowd(sale, `device-${crypto.randomUUID()}`);

      answers.forEach((answer, i) => {
        if (i < 3) expect(answer.status, answer.text).toBe(200);
        else expectApiError(answer, 403, "refused");
      });
      const { entrants } = await roomStorage(sale.eventId);
      expect(entrants.map((e) => e.account_id).sort()).toEqual([...humans].sort());

      const rows = await flagRows(sale.eventId);
      expect(rows.map((r) => r.account_id).sort()).toEqual([...bots].sort());
      expect(rows.every((r) => r.reason === "shared_device" && !r.deprioritized)).toBe(true);
      const listed = await adminRequest(sale.apiKey, "GET", `/events/${sale.eventId}/bot-flags`);
      expect(flagsSchema.parse(listed.json).flags).toHaveLength(BOTS);
    },
    120_000,
  );
});

describe("joins from one device at the same time", () => {
  it("end with every account flagged behind everyone (policy deprioritize) or out of the line (refuse), whatever the interleaving", async () => {
    startFakeClock();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 4, max: 12 }), fc.constantFrom("deprioritize" as const, "refuse" as const), async (accounts, botPolicy) => {
        const sale = await hotSale({ accounts, botPolicy, maxAccountsPerDevice: 3 });
        const device = `device-${crypto.randomUUID()}`;
        const answers = await Promise.all(
          sale.accounts.map(async (accountId) => joinLobby(sale.eventId, { token: await fanSession(accountId), ip: uniqueIp() }, { turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: device })),
        );
        for (const answer of answers) expect([200, 403], answer.text).toContain(answer.status);
        const entrants = await entrantsOf(sale.eventId);
        if (botPolicy === "refuse") expect(entrants).toEqual([]);
        else expect(entrants.map((e) => [e.flagged, e.order_key >= FLAGGED_BLOCK_START])).toEqual(sale.accounts.map(() => ["shared_device", true]));
        const rows = await flagRows(sale.eventId);
        expect(rows.map((r) => r.account_id).sort()).toEqual([...sale.accounts].sort());
      }),
      { numRuns: 10 },
    );
  }, 120_000);
});

describe("lobby rate limits", () => {
  it("answers 429 with Retry-After after 5 joins a minute by one account, and the room does not change", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 1 });
    const token = await fanSession(sale.accounts[0] ?? "");
    const first = await joined(sale.eventId, { token });
    for (let i = 0; i < 4; i++) expect(await joined(sale.eventId, { token })).toMatchObject({ orderKey: first.orderKey, rejoined: true });
    const before = await roomStorage(sale.eventId);
    const limited = await joinLobby(sale.eventId, { token });
    expectApiError(limited, 429, "rate_limited");
    const retryAfter = Number(limited.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await roomStorage(sale.eventId)).toEqual(before);
  });

  it("answers 429 with Retry-After after 30 joins a minute from one IP, and the room does not change", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 31, maxAccountsPerIp: 1_000 });
    const ip = uniqueIp();
    for (const accountId of sale.accounts.slice(0, 30)) await joined(sale.eventId, { token: await fanSession(accountId), ip });
    const before = await roomStorage(sale.eventId);
    const limited = await joinLobby(sale.eventId, { token: await fanSession(sale.accounts[30] ?? ""), ip });
    expectApiError(limited, 429, "rate_limited");
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await roomStorage(sale.eventId)).toEqual(before);
  });
});

describe("Turnstile at the lobby", () => {
  const joinWith = async (overrides: Partial<Env>, eventId: string, accountId: string) => joinLobbyWith(overrides, eventId, { token: await fanSession(accountId) });

  it("answers 400 when siteverify says the token failed or was already spent, or gives no usable answer, and the room does not change", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 4 });
    const before = await roomStorage(sale.eventId);
    const settings: Partial<Env>[] = [
      { TURNSTILE_SECRET_KEY: TURNSTILE_TEST_SECRETS.fails },
      { TURNSTILE_SECRET_KEY: TURNSTILE_TEST_SECRETS.spent },
      // An endpoint that answers something other than siteverify's JSON: the check fails closed.
      { TURNSTILE_VERIFY_URL: new URL("/not-siteverify", env.TURNSTILE_VERIFY_URL).toString() },
    ];
    for (const [i, overrides] of settings.entries()) {
      expectApiError(await joinWith(overrides, sale.eventId, sale.accounts[i] ?? ""), 400, "turnstile_failed");
    }
    expect(await roomStorage(sale.eventId)).toEqual(before);
    // The same request with the shared bindings passes: the failures above were Turnstile's.
    expect((await joinWith({}, sale.eventId, sale.accounts[3] ?? "")).status).toBe(200);
  });
});
