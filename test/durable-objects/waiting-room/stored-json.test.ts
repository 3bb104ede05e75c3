/**
 * JSON the waiting room reads back from its own storage is checked against
 * its schema: a corrupt row makes the call fail with a message naming the
 * column, instead of acting on a wrong shape. The calls run inside the
 * object (`runInDurableObject`) so the test catches the error itself.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { WaitingRoom } from "../../../durable-objects/waiting-room";
import { startFakeClock } from "../../fixtures/clocks";
import { hotSale } from "../../fixtures/hot-sale";
import { roomOf, thrownBy } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

describe("WaitingRoom reads of stored JSON", () => {
  it("fails on corrupt stored settings or key quantiles", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 0, saleStartsInMs: 600_000 });
    const room = roomOf(sale.eventId);
    const joined = await room.join(sale.eventId, "fan-1");
    expect(joined).toMatchObject({ ok: true });
    expect((await room.snapshot()).quantiles).toHaveLength(1);

    await runInDurableObject(room, (_room: WaitingRoom, state) => state.storage.sql.exec(`UPDATE quantiles SET json = '["not a key"]'`));
    expect(await runInDurableObject(room, (instance: WaitingRoom) => thrownBy(() => instance.snapshot()))).toMatch(/stored key quantiles does not match its schema/);

    await runInDurableObject(room, (_room: WaitingRoom, state) => state.storage.sql.exec(`UPDATE config SET json = '{"eventId": 42}'`));
    await evictDurableObject(room); // the settings are read from storage again
    expect(await runInDurableObject(roomOf(sale.eventId), (instance: WaitingRoom) => thrownBy(() => instance.snapshot()))).toMatch(/stored waiting-room settings does not match its schema/);
  });
});
