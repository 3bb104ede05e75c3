/**
 * Fairness against a bot farm (issue 15): 1,000 bot accounts on 10 addresses,
 * rotating their device ids, among 10,000 real fans, 2,000 of whom share 20
 * addresses (carrier NAT, a campus). Real objects (the room, its shards, the
 * inventory), the real Redis and Postgres; the room admits the first 5,000 by
 * its own ticks.
 *
 * - The farm: 10 machines, each behind its own address, 100 accounts each,
 *   created in a burst (100 within the hour from one address, three days
 *   ago). Each join reports a fresh device id; Turnstile is solved on the
 *   machine, so siteverify's ephemeral id (the local stand-in derives it from
 *   the machine, as Cloudflare does on Enterprise) is shared by its 100
 *   accounts.
 * - Real fans: accounts made over the last two years (a tenth of them this
 *   week), each on a device of its own; 2,000 of them 100 to an address, the
 *   other 8,000 on addresses of their own.
 *
 * Joins: the 1,000 bots, the 2,000 fans on shared addresses and 500 of the
 * others go through the Worker's real lobby route (session, rate limits,
 * Turnstile, bot signals in Redis, the shard), one after another; the other
 * 7,500 fans join their shards inside the shard (`join`, as the route calls
 * it after its checks) with the evidence the route would gather for a fan
 * alone on its address and device: one account on each, its own age. That is
 * for volume only: an HTTP join costs tens of milliseconds here.
 *
 * The checks, each a stated test at α = 0.01 with its counts printed:
 * - bots: their share of the first 5,000 admissions is no more than their
 *   share of the accounts in line (all joined: the policy "deprioritize"
 *   refuses none), one-sided z-test of a proportion: z ≤ 2.326;
 * - shared addresses: fans behind them are admitted at the same rate as the
 *   other real fans, χ² test of independence on the 2 × 2 table (admitted or
 *   not, shared address or not; equivalent to the two-sided two-proportion
 *   z-test): p > 0.01.
 *
 * Deterministic: the account ids, the arrival order and the order keys
 * (crypto.getRandomValues, where the shards draw them) come from one seeded
 * stream, and the joins run one at a time.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { turnstileTokenOnDevice } from "../../../dev/turnstile";
import { chiSquareSurvival, independenceTest, seeded } from "../../../bench/lib/statistics";
import { NEW_ACCOUNT_MS, type LobbyEvidence } from "../../../core/waiting-room/bot-evidence";
import { shardName, shardOf } from "../../../core/waiting-room/lobby-shards";
import type { LobbyShard } from "../../../durable-objects/waiting-room/lobby-shard";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { withDb } from "../../fixtures/db";
import { hotSale } from "../../fixtures/hot-sale";
import { entrantsOf, roomOf } from "../../fixtures/objects";
import { useSeededCrypto } from "../../fixtures/random";
import { fanSession } from "../../fixtures/tokens";
import { joinLobby } from "../../fixtures/waiting-room";

const BOT_ADDRESSES = 10;
const BOTS_PER_ADDRESS = 100;
const SHARED_ADDRESSES = 20;
const FANS_PER_SHARED_ADDRESS = 100;
const FANS_ALONE = 8_000;
/** Fans alone on their address who join through the route (the rest join inside their shards). */
const FANS_ALONE_BY_ROUTE = 500;
const FIRST_ADMISSIONS = 5_000;
const ADMISSION_RATE = 500;
/** A tenth of the real fans made their account this week (weak evidence, alone worth nothing). */
const NEW_FAN_SHARE = 0.1;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** One-sided z at α = 0.01. */
const Z_ONE_SIDED_001 = 2.326;

type Kind = "bot" | "shared" | "alone";

interface Account {
  id: string;
  kind: Kind;
  ip: string;
  /** The machine Turnstile sees solve the challenge. */
  machine: string;
  createdAt: number;
  byRoute: boolean;
}

const random = seeded(15);

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** A UUID from the seeded stream (the account's id decides its shard). */
function seededUuid(): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = "4";
  hex[16] = (8 + Math.floor(random() * 4)).toString(16);
  const s = hex.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** Fisher-Yates with the seeded stream. */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** The crowd: the farm's accounts and the real fans, with their addresses, machines and account ages. */
function crowd(now: number): Account[] {
  const accounts: Account[] = [];
  for (let a = 0; a < BOT_ADDRESSES; a++) {
    const burstStart = now - 3 * DAY_MS + a * HOUR_MS;
    for (let i = 0; i < BOTS_PER_ADDRESS; i++) {
      accounts.push({ id: seededUuid(), kind: "bot", ip: `203.0.113.${a + 1}`, machine: `farm-${a}`, createdAt: burstStart + i * 20_000, byRoute: true });
    }
  }
  const fanAge = () => (random() < NEW_FAN_SHARE ? Math.floor(random() * 6 * DAY_MS) + DAY_MS : Math.floor(random() * 700 * DAY_MS) + 30 * DAY_MS);
  for (let a = 0; a < SHARED_ADDRESSES; a++) {
    for (let i = 0; i < FANS_PER_SHARED_ADDRESS; i++) {
      const n = a * FANS_PER_SHARED_ADDRESS + i;
      accounts.push({ id: seededUuid(), kind: "shared", ip: `100.64.${a}.1`, machine: `shared-fan-${n}`, createdAt: now - fanAge(), byRoute: true });
    }
  }
  for (let i = 0; i < FANS_ALONE; i++) {
    accounts.push({ id: seededUuid(), kind: "alone", ip: `10.${(i >> 8) & 255}.${i & 255}.7`, machine: `fan-${i}`, createdAt: now - fanAge(), byRoute: i < FANS_ALONE_BY_ROUTE });
  }
  return accounts;
}

/** The accounts in Postgres, with their creation times (the lobby reads an account's age there). */
async function insertAccounts(accounts: Account[]): Promise<void> {
  const rows = JSON.stringify(accounts.map((a) => ({ id: a.id, email: `farm-test-${a.id}@example.test`, at: new Date(a.createdAt).toISOString() })));
  await withDb((db) => db.execute(sql`insert into accounts (id, email, created_at) select (r->>'id')::uuid, r->>'email', (r->>'at')::timestamptz from jsonb_array_elements(${rows}::jsonb) r`));
}

/** What the route gathers for a fan alone on its address and device. */
function aloneEvidence(account: Account, now: number): LobbyEvidence {
  return {
    ip: account.ip,
    device: `device-${account.machine}`,
    deviceReported: true,
    ephemeralId: `eph-${account.machine}`,
    accountCreatedAt: account.createdAt,
    accountsOnDevice: 1,
    accountsOnEphemeralId: 1,
    accountsOnIp: 1,
    accountsInCreationBurst: now - account.createdAt < NEW_ACCOUNT_MS ? 1 : 0,
  };
}

describe("a bot farm rotating device ids, and fans behind shared addresses", () => {
  it(
    `admits no more bots among the first ${FIRST_ADMISSIONS.toLocaleString("en")} than their share of the line, and fans behind shared addresses at the others' rate`,
    async () => {
      startFakeClock();
      const sale = await hotSale({
        saleStartsInMs: 2 * HOUR_MS,
        lobbyOpensMinutes: 90,
        accounts: 0,
        chart: smallChart(3, 6, 2 * FIRST_ADMISSIONS),
        purchaseLimit: 2,
        admissionRatePerSecond: ADMISSION_RATE,
        botPolicy: "deprioritize",
        expectedDemand: 200_000,
      });
      const accounts = crowd(Date.now());
      await insertAccounts(accounts);
      useSeededCrypto(random);

      // Everyone arrives over the lobby's first 80 minutes, in a seeded order; the route's joins one at a time.
      const order = shuffled(accounts);
      const windowStart = sale.lobbyOpensAt + 60_000;
      const step = (80 * 60_000) / order.length;
      const bulk: { account: Account; at: number }[] = [];
      for (const [i, account] of order.entries()) {
        const at = Math.floor(windowStart + i * step);
        if (!account.byRoute) {
          bulk.push({ account, at });
          continue;
        }
        setClock(at);
        const deviceId = account.kind === "bot" ? `rotated-${seededUuid()}` : `device-${account.machine}`;
        const answer = await joinLobby(sale.eventId, { token: await fanSession(account.id), ip: account.ip }, { turnstileToken: turnstileTokenOnDevice(account.machine), deviceId });
        expect(answer.status, answer.text).toBe(200);
      }
      const shards = await roomOf(sale.eventId).lobbyShards(sale.eventId);
      for (let shard = 0; shard < shards; shard++) {
        const mine = bulk.filter(({ account }) => shardOf(account.id, shards) === shard);
        const stub = env.LOBBY_SHARD.getByName(shardName(sale.eventId, shard));
        await runInDurableObject(stub, async (instance: LobbyShard) => {
          for (const { account, at } of mine) {
            setClock(at);
            const joined = await instance.join({ eventId: sale.eventId, shard, accountId: account.id, evidence: aloneEvidence(account, at) });
            if (!joined.ok) throw new Error(`a fan alone was turned away: ${joined.reason}`);
          }
        });
      }

      const kindOf = new Map(accounts.map((a) => [a.id, a.kind]));
      const entrants = await entrantsOf(sale.eventId);
      expect(entrants).toHaveLength(accounts.length);

      // The sale: the room ticks every second until it has admitted the first 5,000.
      const room = roomOf(sale.eventId);
      let admitted = 0;
      for (let tick = 0; admitted < FIRST_ADMISSIONS && tick < 4 * (FIRST_ADMISSIONS / ADMISSION_RATE); tick++) {
        setClock(sale.saleStartsAt + tick * 1_000);
        expect(await runDurableObjectAlarm(room)).toBe(true);
        admitted = (await room.snapshot()).admitted;
      }
      const admittedRows = (await entrantsOf(sale.eventId)).filter((e) => e.admitted === 1).sort((a, b) => a.order_key - b.order_key);
      expect(admittedRows.length).toBeGreaterThanOrEqual(FIRST_ADMISSIONS);
      const first = admittedRows.slice(0, FIRST_ADMISSIONS);
      const count = (kind: Kind, rows: { account_id: string }[]) => rows.filter((r) => kindOf.get(r.account_id) === kind).length;
      const inLine = (kind: Kind) => entrants.filter((e) => kindOf.get(e.account_id) === kind).length;

      // Bots: share of the first admissions against their share of the line, one-sided z-test of a proportion.
      const bots = count("bot", first);
      const botShare = inLine("bot") / entrants.length;
      const z = (bots - FIRST_ADMISSIONS * botShare) / Math.sqrt(FIRST_ADMISSIONS * botShare * (1 - botShare));
      // Shared addresses against the other real fans: χ² on the 2 × 2 table (admitted or not).
      const shared = count("shared", first);
      const alone = count("alone", first);
      const table = [
        [shared, inLine("shared") - shared],
        [alone, inLine("alone") - alone],
      ];
      const independence = independenceTest(table);
      console.log(
        JSON.stringify({
          first_admissions: FIRST_ADMISSIONS,
          bots: { admitted: bots, in_line: inLine("bot"), share_of_line: round(botShare), share_admitted: round(bots / FIRST_ADMISSIONS), z: round(z), p_one_sided: round(z > 0 ? chiSquareSurvival(z * z, 1) / 2 : 1 - chiSquareSurvival(z * z, 1) / 2) },
          shared_addresses: { admitted: shared, in_line: inLine("shared"), rate: round(shared / inLine("shared")) },
          own_addresses: { admitted: alone, in_line: inLine("alone"), rate: round(alone / inLine("alone")) },
          chi2: round(independence.statistic), degrees: independence.degrees, p: round(independence.p),
        }),
      );
      expect(z, `bots: ${bots} of the first ${FIRST_ADMISSIONS} against a share of ${botShare.toFixed(4)} of the line`).toBeLessThanOrEqual(Z_ONE_SIDED_001);
      expect(independence.p, `shared addresses ${shared}/${inLine("shared")} admitted against ${alone}/${inLine("alone")}: χ² = ${independence.statistic.toFixed(2)}`).toBeGreaterThan(0.01);

      // Every bot is flagged, by the one signal the farm cannot rotate; no real fan is.
      const flagged = (kind: Kind) => entrants.filter((e) => kindOf.get(e.account_id) === kind && e.flagged !== null);
      expect(flagged("bot").length, "bots flagged").toBe(BOT_ADDRESSES * BOTS_PER_ADDRESS);
      expect(new Set(flagged("bot").map((e) => e.flagged))).toEqual(new Set(["shared_turnstile_device"]));
      expect(flagged("shared").length + flagged("alone").length, "real fans flagged").toBe(0);
    },
    900_000,
  );
});

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
