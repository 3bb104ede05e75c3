/**
 * One visit to the shards a tick: the room merges the lists of next fans that
 * its previous visit took, and the visit that records a tick's admissions takes
 * the lists for the next one. A list goes stale when a key changes inside it
 * before the merge (a join in the last second before the sale, an organizer's
 * decision, new evidence); the shard tells the room before the change answers,
 * and the tick visits the shards again. Admission follows the keys exactly as
 * if every tick listed the shards afresh.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JoinResult } from "../../../durable-objects/waiting-room";
import { LobbyShard, type ShardStep } from "../../../durable-objects/waiting-room/lobby-shard";
import { FANS_PER_SHARD } from "../../../core/waiting-room/lobby-shards";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { hotSale, type HotSale } from "../../fixtures/hot-sale";
import { entrantsOf, lobbyJoin, lobbyShardIndex, restartObject, roomOf, roomStorage, shardRequestTotal, shardsOf } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

const RATE = 20;

function keyOf(result: JoinResult): number {
  if (!result.ok) throw new Error(`join refused: ${result.reason}`);
  return result.orderKey;
}

async function tickAt(sale: HotSale, at: number): Promise<void> {
  setClock(at);
  expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
}

/** The accounts admitted so far, sorted. */
async function admittedAccounts(sale: HotSale): Promise<string[]> {
  return (await entrantsOf(sale.eventId)).filter((row) => row.admitted === 1).map((row) => row.account_id).sort();
}

/** The `n` accounts with the lowest keys, sorted. */
function lowest(keys: Map<string, number>, n: number): string[] {
  return [...keys].sort((a, b) => a[1] - b[1]).slice(0, n).map(([account]) => account).sort();
}

/** A hot sale with room for every fan admitted here (one place each), on 4 shards. */
function shardedSale(): Promise<HotSale> {
  return hotSale({ accounts: 0, admissionRatePerSecond: RATE, purchaseLimit: 1, chart: smallChart(10, 20, 200), expectedDemand: 4 * FANS_PER_SHARD });
}

/** `count` fans `<prefix>-<i>` join 1 ms apart from `from`; their keys go into `keys`. */
async function joinFrom(sale: HotSale, keys: Map<string, number>, prefix: string, count: number, from: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    setClock(from + i);
    keys.set(`${prefix}-${i}`, keyOf(await lobbyJoin(sale.eventId, `${prefix}-${i}`)));
  }
}

/** A sharded sale (on a fake clock) with `count` fans `<prefix>-<i>` in its lobby a minute before it starts. */
async function lobbyOf(prefix: string, count: number): Promise<{ sale: HotSale; keys: Map<string, number>; shards: number }> {
  startFakeClock();
  const sale = await shardedSale();
  const keys = new Map<string, number>();
  await joinFrom(sale, keys, prefix, count, sale.saleStartsAt - 60_000);
  return { sale, keys, shards: (await shardsOf(sale.eventId)).length };
}

describe("the room's lists of next fans, taken a visit ahead", () => {
  it("admits in key order when fans join inside the lists in the last second before the sale", async () => {
    const { sale, keys } = await lobbyOf("early", 100);
    // The last tick before the sale lists every shard's next fans for the first tick.
    await tickAt(sale, sale.saleStartsAt - 400);
    expect(await admittedAccounts(sale)).toEqual([]);
    // 100 more fans join in the last 300 ms: uniform keys, many of them inside those lists.
    await joinFrom(sale, keys, "last-second", 100, sale.saleStartsAt - 300);
    const newcomersFirst = lowest(keys, RATE).filter((account) => account.startsWith("last-second-"));
    expect(newcomersFirst.length, "none of 100 newcomers among the first 20 of 200: about once in a million runs").toBeGreaterThan(0);

    await tickAt(sale, sale.saleStartsAt + 1_000);
    expect(await admittedAccounts(sale)).toEqual(lowest(keys, RATE));
    await tickAt(sale, sale.saleStartsAt + 2_000);
    expect(await admittedAccounts(sale)).toEqual(lowest(keys, 2 * RATE));
  });

  it("admits in key order when a shard's first fan joins after the lists were taken", async () => {
    startFakeClock();
    const sale = await shardedSale();
    const keys = new Map<string, number>();
    // 30 fans on three of the four shards; the fourth has no fan yet, so the room does not visit it.
    const onShard = async (wanted: (index: number) => boolean, prefix: string, count: number) => {
      const accounts: string[] = [];
      for (let i = 0; accounts.length < count; i++) if (wanted((await lobbyShardIndex(sale.eventId, `${prefix}-${i}`)).index)) accounts.push(`${prefix}-${i}`);
      return accounts;
    };
    const joinAll = async (accounts: string[], from: number) => {
      for (const [i, account] of accounts.entries()) {
        setClock(from + i);
        keys.set(account, keyOf(await lobbyJoin(sale.eventId, account)));
      }
    };
    await joinAll(await onShard((index) => index !== 3, "early", 30), sale.saleStartsAt - 60_000);
    expect(await shardsOf(sale.eventId)).toHaveLength(3);
    await tickAt(sale, sale.saleStartsAt - 400);
    // 20 fans join the fourth shard before the sale: its first call tells the room that the lists lack it.
    await joinAll(await onShard((index) => index === 3, "fourth", 20), sale.saleStartsAt - 300);
    expect(await shardsOf(sale.eventId)).toHaveLength(4);
    const newcomersFirst = lowest(keys, RATE).filter((account) => account.startsWith("fourth-"));
    expect(newcomersFirst.length, "none of 20 newcomers among the first 20 of 50: about once in 1.6 million runs").toBeGreaterThan(0);

    await tickAt(sale, sale.saleStartsAt + 1_000);
    expect(await admittedAccounts(sale)).toEqual(lowest(keys, RATE));
  });

  it("visits every shard once a tick while the line is long and nothing changes inside the lists", async () => {
    const { sale, keys, shards } = await lobbyOf("fan", 200);
    expect(shards).toBe(4);
    await tickAt(sale, sale.saleStartsAt - 400);
    await tickAt(sale, sale.saleStartsAt);
    for (let s = 1; s <= 5; s++) {
      const before = await shardRequestTotal(sale.eventId, "step");
      await tickAt(sale, sale.saleStartsAt + s * 1_000);
      expect(await shardRequestTotal(sale.eventId, "step"), `tick ${s}`).toBe(before + shards);
      expect(await admittedAccounts(sale)).toEqual(lowest(keys, s * RATE));
    }
  });

  it("goes back to one visit a tick right after the room restarts, though a shard reports a list from before the restart stale", async () => {
    const { sale, keys, shards } = await lobbyOf("early", 100);
    // Many visits before the sale (each numbered), the last of which lists the shards.
    for (let s = 20; s >= 1; s--) await tickAt(sale, sale.saleStartsAt - s * 1_000 + 600);
    await restartObject(roomOf(sale.eventId));
    // Newcomers inside the old instance's lists: their shards tell the new instance that visit went stale.
    await joinFrom(sale, keys, "newcomer", 100, sale.saleStartsAt - 300);
    const steps = [await shardRequestTotal(sale.eventId, "step")];
    for (let s = 1; s <= 3; s++) {
      await tickAt(sale, sale.saleStartsAt + s * 1_000);
      steps.push(await shardRequestTotal(sale.eventId, "step"));
      expect(await admittedAccounts(sale)).toEqual(lowest(keys, s * RATE));
    }
    // The first tick lists the shards afresh (no lists in memory), then records: two visits; one a tick after that.
    expect(steps.slice(1).map((n, i) => (n - (steps[i] ?? 0)) / shards)).toEqual([2, 1, 1]);
  });

  it("hears from a shard restarted since the visit that took its list: the first change there makes the lists stale", async () => {
    const { sale, keys } = await lobbyOf("before", 40);
    await tickAt(sale, sale.saleStartsAt - 1_400);
    await tickAt(sale, sale.saleStartsAt - 400); // the last tick before the sale lists the shards
    for (const shard of await shardsOf(sale.eventId)) await restartObject(shard);
    // Newcomers before the sale draw uniform keys: they join until one lands among the fans the next tick admits.
    const nextTick = (RATE * 600) / 1_000;
    setClock(sale.saleStartsAt - 200);
    let inside: string | undefined;
    for (let i = 0; i < 200 && inside === undefined; i++) {
      const accountId = `newcomer-${i}`;
      keys.set(accountId, keyOf(await lobbyJoin(sale.eventId, accountId)));
      if (lowest(keys, nextTick).includes(accountId)) inside = accountId;
    }
    await tickAt(sale, sale.saleStartsAt + 600);
    const admitted = await admittedAccounts(sale);
    expect(admitted).toHaveLength(nextTick);
    expect(admitted).toEqual(lowest(keys, nextTick));
    expect(admitted).toContain(inside);
  });
});

describe("a newcomer and the flagged block", () => {
  it("admits a fan who arrives during the sale ahead of the flagged fans another shard listed, though its own shard's list was complete", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 0, admissionRatePerSecond: RATE, purchaseLimit: 1, chart: smallChart(10, 20, 200), expectedDemand: 4 * FANS_PER_SHARD, maxAccountsPerDevice: 1 });
    const keys = new Map<string, number>();
    const onShard = async (shard: number, prefix: string, count: number) => {
      const accounts: string[] = [];
      for (let i = 0; accounts.length < count; i++) if ((await lobbyShardIndex(sale.eventId, `${prefix}-${i}`)).index === shard) accounts.push(`${prefix}-${i}`);
      return accounts;
    };
    // Shard 0: five fans in the lobby block. Shard 1: forty accounts with strong evidence against them, behind everyone.
    setClock(sale.saleStartsAt - 60_000);
    for (const accountId of await onShard(0, "early", 5)) keys.set(accountId, keyOf(await lobbyJoin(sale.eventId, accountId)));
    for (const accountId of await onShard(1, "bot", 40)) {
      const joined = await lobbyJoin(sale.eventId, accountId, { ...FARM, ip: `203.0.113.${keys.size}` });
      expect(joined).toMatchObject({ ok: true, block: "flagged" });
      keys.set(accountId, keyOf(joined));
    }
    await tickAt(sale, sale.saleStartsAt - 400);
    // The first tick admits the five and fifteen flagged fans; its visit lists shard 0 whole (nobody waits there) and shard 1's next.
    await tickAt(sale, sale.saleStartsAt + 1_000);
    expect(await admittedAccounts(sale)).toEqual(lowest(keys, RATE));
    // A fan arrives at shard 0: a key in the late block, ahead of every flagged fan, and after every fan shard 0 listed.
    const [newcomer = ""] = await onShard(0, "newcomer", 1);
    setClock(sale.saleStartsAt + 1_500);
    keys.set(newcomer, keyOf(await lobbyJoin(sale.eventId, newcomer)));

    await tickAt(sale, sale.saleStartsAt + 2_000);
    expect(await admittedAccounts(sale)).toContain(newcomer);
    expect(await admittedAccounts(sale)).toEqual(lowest(keys, 2 * RATE));
  });
});

/** Evidence of many accounts on one reported device: behind everyone. */
const FARM = { ip: "", device: "farm", deviceReported: true, ephemeralId: null, accountCreatedAt: 0, accountsOnDevice: 50, accountsOnEphemeralId: 1, accountsOnIp: 1, accountsInCreationBurst: 1 };

// ---------------------------------------------------------------- property

/** One thing a fan or an organizer does, `dt` ms after the last. */
type LineOp = { kind: "join"; dt: number } | { kind: "confirm" | "clear"; fan: number; dt: number };

const lineOpArb: fc.Arbitrary<LineOp> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("join" as const), dt: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("confirm" as const, "clear" as const), fan: fc.nat(), dt: fc.integer({ min: 1, max: 400 }) }) },
);

/** The room ticks every second from 2.5 s before the sale: the tick at -0.5 s is the last before it. */
const FIRST_TICK_MS = -2_500;

describe("admission in key order, whatever happens between two visits", () => {
  it("admits, after every tick of the sale, exactly the first waiting fans in key order (joins before and during the sale, decisions)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.record({ early: fc.integer({ min: 0, max: 80 }), ops: fc.array(lineOpArb, { minLength: 10, maxLength: 60 }) }), async ({ early, ops }) => {
        startFakeClock();
        const sale = await shardedSale();
        const start = sale.saleStartsAt;
        const fans: string[] = [];
        const confirmed = new Set<string>();
        const join = async (at: number) => {
          const accountId = `fan-${fans.length}`;
          setClock(at);
          keyOf(await lobbyJoin(sale.eventId, accountId));
          fans.push(accountId);
        };
        // The room is configured (as the organizer's prepare does) whether or not anyone joins before its first tick.
        await roomOf(sale.eventId).lobbyShards(sale.eventId);
        for (let i = 0; i < early; i++) await join(start - 60_000 + i);

        /** The fans a tick admits come before every fan still waiting after it, in key order (confirmed fans wait for nothing). */
        const admittedNow = async () => new Set((await entrantsOf(sale.eventId)).filter((row) => row.admitted === 1).map((row) => row.account_id));
        const checkTick = async (at: number, before: Set<string>) => {
          const rows = await entrantsOf(sale.eventId);
          const admittedKeys = rows.filter((row) => row.admitted === 1 && !before.has(row.account_id)).map((row) => row.order_key);
          const waitingKeys = rows.filter((row) => row.admitted === 0 && !confirmed.has(row.account_id)).map((row) => row.order_key);
          if (admittedKeys.length === 0 || waitingKeys.length === 0) return;
          expect(Math.max(...admittedKeys), `the tick at ${at - start} ms admitted ${admittedKeys.length} past a waiting fan`).toBeLessThan(Math.min(...waitingKeys));
        };

        let now = start - 3_000;
        let nextTick = start + FIRST_TICK_MS;
        const tickUntil = async (until: number) => {
          while (nextTick <= until) {
            const before = await admittedNow();
            await tickAt(sale, nextTick);
            if (nextTick >= start) await checkTick(nextTick, before);
            nextTick += 1_000;
          }
        };
        for (const op of ops) {
          now += op.dt;
          await tickUntil(now);
          if (op.kind === "join") {
            await join(now);
            continue;
          }
          const accountId = fans.length > 0 ? fans[op.fan % fans.length] : undefined;
          if (accountId === undefined) continue;
          setClock(now);
          const { index, stub } = await lobbyShardIndex(sale.eventId, accountId);
          await stub.decide(sale.eventId, index, accountId, op.kind);
          if (op.kind === "confirm") confirmed.add(accountId);
          else confirmed.delete(accountId);
        }
        await tickUntil(Math.max(now, start) + 2_000);
      }),
      // Stops at the first failure: shrinking a run of RPCs can outlast the timeout.
      { numRuns: 12, endOnFailure: true },
    );
  }, 300_000);
});

describe("admissions a shard did not hear of", () => {
  /** The room's admissions not yet recorded by their shard, as it stores them: shard → accounts, sorted. */
  async function unrecorded(sale: HotSale): Promise<Map<number, string[]>> {
    const rows = await runInDurableObject(roomOf(sale.eventId), (_room, state) =>
      state.storage.sql.exec<{ shard: number; account_ids: string }>("SELECT shard, account_ids FROM unrecorded").toArray(),
    );
    return new Map(rows.map((row) => [row.shard, (JSON.parse(row.account_ids) as string[]).sort()]));
  }

  it("reach it with the next visit when it missed the one that recorded them, and only then does the room forget them", async () => {
    const { sale, keys } = await lobbyOf("missed", 2 * RATE);
    await tickAt(sale, sale.saleStartsAt - 1_000);
    await tickAt(sale, sale.saleStartsAt);
    // The first visit that brings a shard admissions fails there, as a shard the platform restarts under a call does.
    const step = LobbyShard.prototype.step;
    let failedWith: string[] | undefined;
    const spy = vi.spyOn(LobbyShard.prototype, "step").mockImplementation(function (this: LobbyShard, visit: ShardStep) {
      if (failedWith === undefined && visit.admit.length > 0) {
        failedWith = [...visit.admit].sort();
        throw new Error("shard unavailable");
      }
      return step.call(this, visit);
    });
    await tickAt(sale, sale.saleStartsAt + 1_000);
    spy.mockRestore();

    // The tick admitted the first RATE fans; the shard that failed has not recorded its share, and the room keeps it.
    const first = lowest(keys, RATE);
    expect(failedWith?.length).toBeGreaterThan(0);
    const missed = failedWith ?? [];
    expect(first).toEqual(expect.arrayContaining(missed));
    expect(await admittedAccounts(sale)).toEqual(first.filter((account) => !missed.includes(account)));
    expect([...(await unrecorded(sale)).values()]).toEqual([missed]);

    // The next tick's visit brings them again; they are recorded once, and the room forgets them.
    await tickAt(sale, sale.saleStartsAt + 2_000);
    const admitted = await admittedAccounts(sale);
    expect(admitted).toEqual(expect.arrayContaining(first));
    expect(admitted).toEqual(lowest(keys, admitted.length));
    expect((await unrecorded(sale)).size).toBe(0);
    const { state } = await roomStorage(sale.eventId);
    expect(state[0]?.admitted).toBe(admitted.length);
  });
});
