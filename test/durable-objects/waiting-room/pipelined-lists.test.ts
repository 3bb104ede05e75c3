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
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JoinResult } from "../../../durable-objects/waiting-room";
import type { LobbyShard } from "../../../durable-objects/waiting-room/lobby-shard";
import { FANS_PER_SHARD } from "../../../core/waiting-room/lobby-shards";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { hotSale, type HotSale } from "../../fixtures/hot-sale";
import { entrantsOf, lobbyJoin, roomOf, shardsOf } from "../../fixtures/objects";

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

/** The `step` visits each shard has served, summed over the shards. */
async function shardSteps(sale: HotSale): Promise<number> {
  let steps = 0;
  for (const shard of await shardsOf(sale.eventId)) {
    const counts = await runInDurableObject(shard, (instance: LobbyShard) => instance.requestCounts());
    steps += counts.filter((count) => count.kind === "step").reduce((sum, count) => sum + count.n, 0);
  }
  return steps;
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

describe("the room's lists of next fans, taken a visit ahead", () => {
  it("admits in key order when fans join inside the lists in the last second before the sale", async () => {
    startFakeClock();
    const sale = await shardedSale();
    const keys = new Map<string, number>();
    await joinFrom(sale, keys, "early", 100, sale.saleStartsAt - 60_000);
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

  it("visits every shard once a tick while the line is long and nothing changes inside the lists", async () => {
    startFakeClock();
    const sale = await shardedSale();
    const keys = new Map<string, number>();
    await joinFrom(sale, keys, "fan", 200, sale.saleStartsAt - 60_000);
    const shards = (await shardsOf(sale.eventId)).length;
    expect(shards).toBe(4);
    await tickAt(sale, sale.saleStartsAt - 400);
    await tickAt(sale, sale.saleStartsAt);
    for (let s = 1; s <= 5; s++) {
      const before = await shardSteps(sale);
      await tickAt(sale, sale.saleStartsAt + s * 1_000);
      expect(await shardSteps(sale), `tick ${s}`).toBe(before + shards);
      expect(await admittedAccounts(sale)).toEqual(lowest(keys, s * RATE));
    }
  });
});
