/**
 * The `WaitingRoom` object and its lobby shards: the first burst of joins
 * loads the event once, the published document lets each fan place its own
 * key (exact while a block is small, close when it is large), admission keeps
 * to the rate however often the alarm runs, and it does not wait for an
 * operator to prepare the inventory.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { JoinResult, WaitingRoom } from "../../../durable-objects/waiting-room";
import type { LobbyShard } from "../../../durable-objects/waiting-room/lobby-shard";
import { shardName, shardOf } from "../../../core/waiting-room/lobby-shards";
import { fansAhead, type QueueState } from "../../../core/waiting-room/queue-state";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { hotSale } from "../../fixtures/hot-sale";
import { inventoryOf, lobbyJoin, publishedState, roomOf } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

function keyOf(result: JoinResult): number {
  if (!result.ok) throw new Error(`join refused: ${result.reason}`);
  return result.orderKey;
}

/** Runs the room's alarm at `at` and returns the document it published. */
async function tickAt(room: DurableObjectStub<WaitingRoom>, eventId: string, at: number): Promise<QueueState> {
  setClock(at);
  expect(await runDurableObjectAlarm(room)).toBe(true);
  const state = await publishedState(eventId);
  if (!state) throw new Error("nothing published");
  return state;
}

describe("WaitingRoom", () => {
  it("loads the event from Postgres once when the first joins arrive together", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 0, saleStartsInMs: 600_000 });
    const room = roomOf(sale.eventId);
    const keys = await Promise.all(Array.from({ length: 50 }, (_, i) => lobbyJoin(sale.eventId, `fan-${i}`).then(keyOf)));
    expect(new Set(keys).size).toBe(50);
    const counts = await room.requestCounts();
    expect(counts.filter((c) => c.kind === "configure").reduce((sum, c) => sum + c.n, 0)).toBe(1);
  });

  it("publishes what lets every fan count the fans ahead: exactly in a small lobby, and after the lobby block", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 0, saleStartsInMs: 600_000, admissionRatePerSecond: 3 });
    const room = roomOf(sale.eventId);
    const lobby = [];
    for (let i = 0; i < 25; i++) lobby.push({ id: `lobby-${i}`, key: keyOf(await lobbyJoin(sale.eventId, `lobby-${i}`)) });
    const before = await tickAt(room, sale.eventId, sale.saleStartsAt - 1_000);
    const ranked = [...lobby].sort((a, b) => a.key - b.key);
    ranked.forEach((fan, rank) => expect(fansAhead(before, fan.key), `rank ${rank}`).toBe(rank));

    // Late keys follow arrival time (to the millisecond; arrivals within one millisecond are ordered at random).
    const late = [];
    for (let i = 0; i < 5; i++) {
      setClock(sale.saleStartsAt + 10 + i);
      late.push(keyOf(await lobbyJoin(sale.eventId, `late-${i}`)));
    }
    const after = await tickAt(room, sale.eventId, sale.saleStartsAt + 1_000);
    expect(after.admitted).toBe(3);
    ranked.forEach((fan, rank) => expect(fansAhead(after, fan.key)).toBe(Math.max(0, rank - 3)));
    late.forEach((key, i) => expect(fansAhead(after, key)).toBe(25 + i - 3));
    expect(after.lateQuantiles).toEqual(late);
  });

  it("estimates the fans ahead in a large lobby within a small share of it", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 0, saleStartsInMs: 600_000 });
    const room = roomOf(sale.eventId);
    const shards = await room.lobbyShards(sale.eventId);
    const size = 5_000;
    const keys: number[] = [];
    // In batches inside each shard (one RPC per join would make this test slow), every fan at its own shard.
    for (let shard = 0; shard < shards; shard++) {
      const mine = Array.from({ length: size }, (_, i) => `fan-${i}`).filter((accountId) => shardOf(accountId, shards) === shard);
      const stub = env.LOBBY_SHARD.getByName(shardName(sale.eventId, shard));
      keys.push(
        ...(await runInDurableObject(stub, async (instance: LobbyShard) => {
          const out: number[] = [];
          for (const accountId of mine) out.push(keyOf(await instance.join({ eventId: sale.eventId, shard, accountId, evidence: null })));
          return out;
        })),
      );
    }
    const state = await tickAt(room, sale.eventId, sale.saleStartsAt - 1_000);
    expect(state.entrants.lobby).toBe(size);
    const sorted = [...keys].sort((a, b) => a - b);
    const errors = sorted.map((key, rank) => Math.abs(fansAhead(state, key) - rank));
    // Between two published quantiles (a step of about size / 32 fans) the keys are uniform, so the
    // interpolation is off by a few dozen at most.
    expect(Math.max(...errors)).toBeLessThan(size / 32);
    expect(errors.reduce((a, b) => a + b, 0) / size).toBeLessThan(size / 32 / 4);
  });

  it("admits at the configured rate however often its alarm runs, without waiting for the inventory to be prepared", async () => {
    startFakeClock();
    // One place per fan, 46 places: the inventory's budget does not cap these few admissions.
    const sale = await hotSale({ accounts: 0, saleStartsInMs: 600_000, admissionRatePerSecond: 4, purchaseLimit: 1 });
    const room = roomOf(sale.eventId);
    for (let i = 0; i < 40; i++) await lobbyJoin(sale.eventId, `fan-${i}`);
    expect(await runInDurableObject(inventoryOf(sale.eventId), (_inventory, state) => state.storage.sql.exec("SELECT 1 FROM config").toArray().length)).toBe(0);

    let state = await tickAt(room, sale.eventId, sale.saleStartsAt + 1_000);
    expect(state.admitted).toBe(4);
    // The same instant again (a retried alarm): nobody more.
    await runInDurableObject(room, (instance: WaitingRoom) => instance.alarm());
    expect((await room.snapshot()).admitted).toBe(4);
    // Then 2.5 s in irregular steps: 10 more.
    for (const at of [1_250, 2_000, 2_500, 3_500]) state = await tickAt(room, sale.eventId, sale.saleStartsAt + at);
    expect(state.admitted).toBe(4 + Math.floor((3_500 - 1_000) * 4 / 1_000));
  });
});
