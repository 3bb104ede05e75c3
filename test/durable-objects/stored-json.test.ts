/**
 * JSON the objects read back from their own storage is checked against its
 * schema: a corrupt row makes the call fail with a message naming the
 * column, instead of acting on a wrong shape. The calls run inside the
 * object (`runInDurableObject`) so the test catches the error itself.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventInventory } from "../../durable-objects/event-inventory";
import type { WaitingRoom } from "../../durable-objects/waiting-room";
import type { LobbyShard } from "../../durable-objects/waiting-room/lobby-shard";
import { shardOf } from "../../core/waiting-room/lobby-shards";
import { openEvent } from "./fixtures";
import { hotSale, lobbyJoin, roomOf, shardOfAccount, startFakeClock } from "./waiting-room-fixtures";

afterEach(() => {
  vi.useRealTimers();
});

/** What `fn` throws (a failed test if it returns). */
function thrownBy(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error("expected a failure, got none");
}

describe("EventInventory reads of stored JSON", () => {
  it("fails on a hold whose stored seat or general-admission list is corrupt", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const [a = "", b = ""] = accounts;
    const stub = env.EVENT_INVENTORY.getByName(event.id);
    await stub.prepare(event.id);
    const seated = await stub.hold({ kind: "seats", accountId: a, attemptKey: "k1", requestId: "req-json-1", seatIndexes: [0, 1] });
    const pit = await stub.hold({ kind: "best", accountId: b, attemptKey: "k2", requestId: "req-json-2", quantity: 2, priceTier: "GA", allowSplit: false });
    if (!seated.ok || !pit.ok) throw new Error("hold refused");
    expect((await stub.getHold(seated.hold.holdId))?.seats.map((s) => s.seatIndex)).toEqual([0, 1]);

    await runInDurableObject(stub, (_instance: EventInventory, state) => {
      state.storage.sql.exec(`UPDATE holds SET seat_list = '[0, "1"]' WHERE hold_id = ?`, seated.hold.holdId);
      state.storage.sql.exec(`UPDATE holds SET ga_list = '[{"sectionId": 7, "quantity": 2}]' WHERE hold_id = ?`, pit.hold.holdId);
    });
    const errors = await runInDurableObject(stub, (instance: EventInventory) => [thrownBy(() => instance.getHold(seated.hold.holdId)), thrownBy(() => instance.getHold(pit.hold.holdId))]);
    expect(errors[0]).toMatch(/stored seat list does not match its schema/);
    expect(errors[1]).toMatch(/stored general-admission list does not match its schema/);
  });

  it("replays a stored refusal, and fails on a corrupt one", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const [a = ""] = accounts;
    const stub = env.EVENT_INVENTORY.getByName(event.id);
    await stub.prepare(event.id);
    const request = { kind: "seats" as const, accountId: a, attemptKey: "k1", requestId: "req-json-3", seatIndexes: [9_999] };
    const refused = await stub.hold(request);
    expect(refused).toMatchObject({ ok: false, reason: "invalid_seat" });
    expect(await stub.hold(request)).toEqual(refused);

    await runInDurableObject(stub, (_instance: EventInventory, state) => {
      state.storage.sql.exec(`UPDATE requests SET result = '{"ok": false, "reason": "no_such_reason", "message": "?"}'`);
    });
    expect(await runInDurableObject(stub, (instance: EventInventory) => thrownBy(() => instance.hold(request)))).toMatch(/stored request result does not match its schema/);
  });
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
