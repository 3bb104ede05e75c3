/**
 * JSON the waiting room and its lobby shards read back from their own storage
 * is checked against its schema: a corrupt row makes the call fail with a message naming the
 * column, instead of acting on a wrong shape. The calls run inside the
 * object (`runInDurableObject`) so the test catches the error itself.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { shardOf } from "../../../core/waiting-room/lobby-shards";
import type { WaitingRoom } from "../../../durable-objects/waiting-room";
import type { LobbyShard } from "../../../durable-objects/waiting-room/lobby-shard";
import { startFakeClock } from "../../fixtures/clocks";
import { hotSale } from "../../fixtures/hot-sale";
import { lobbyJoin, roomOf, shardOfAccount, thrownBy } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

describe("WaitingRoom and LobbyShard reads of stored JSON", () => {
  it("fail on corrupt stored settings or a corrupt published document", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 0, saleStartsInMs: 600_000 });
    const room = roomOf(sale.eventId);
    const joined = await lobbyJoin(sale.eventId, "fan-1");
    expect(joined).toMatchObject({ ok: true });
    expect((await room.control({})).quantiles).toHaveLength(1);
    expect(await room.published()).toMatchObject({ eventId: sale.eventId });

    await runInDurableObject(room, (_room: WaitingRoom, state) => state.storage.sql.exec(`UPDATE published SET json = '{"eventId": "x", "threshold": "high"}'`));
    await evictDurableObject(room); // read from storage again
    expect(await runInDurableObject(roomOf(sale.eventId), (instance: WaitingRoom) => thrownBy(() => instance.published()))).toMatch(/stored published queue document does not match its schema/);

    const shard = await shardOfAccount(sale.eventId, "fan-1");
    const index = shardOf("fan-1", await room.lobbyShards(sale.eventId));
    await runInDurableObject(shard, (_shard: LobbyShard, state) => state.storage.sql.exec(`UPDATE settings SET json = '{"shards": "many"}'`));
    await evictDurableObject(shard);
    const again = await runInDurableObject(await shardOfAccount(sale.eventId, "fan-1"), (instance: LobbyShard) =>
      instance.join({ eventId: sale.eventId, shard: index, accountId: "fan-1", evidence: null }).then(
        () => "no error",
        (error: unknown) => String(error),
      ),
    );
    expect(again).toMatch(/stored lobby shard settings does not match its schema/);

    await runInDurableObject(roomOf(sale.eventId), (_room: WaitingRoom, state) => state.storage.sql.exec(`UPDATE config SET json = '{"eventId": 42}'`));
    await evictDurableObject(roomOf(sale.eventId)); // the settings are read from storage again
    expect(await runInDurableObject(roomOf(sale.eventId), (instance: WaitingRoom) => instance.snapshot().then(() => "no error", (error: unknown) => String(error)))).toMatch(
      /stored waiting-room settings does not match its schema/,
    );
  });
});
