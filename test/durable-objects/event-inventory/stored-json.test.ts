/**
 * JSON the inventory object reads back from its own storage is checked
 * against its schema: a corrupt row makes the call fail with a message naming
 * the column, instead of acting on a wrong shape. The calls run inside the
 * object (`runInDurableObject`) so the test catches the error itself.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventInventory } from "../../../durable-objects/event-inventory";
import { inventoryOf, rejectionOf } from "../../fixtures/objects";
import { openEvent } from "../../fixtures/seeding";

afterEach(() => {
  vi.useRealTimers();
});

describe("EventInventory reads of stored JSON", () => {
  it("fails on a hold whose stored seat or general-admission list is corrupt", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const [a = "", b = ""] = accounts;
    const stub = inventoryOf(event.id);
    await stub.prepare(event.id);
    const seated = await stub.hold({ kind: "seats", accountId: a, attemptKey: "k1", requestId: "req-json-1", seatIndexes: [0, 1] });
    const pit = await stub.hold({ kind: "best", accountId: b, attemptKey: "k2", requestId: "req-json-2", quantity: 2, priceTier: "GA", allowSplit: false });
    if (!seated.ok || !pit.ok) throw new Error("hold refused");
    expect((await stub.getHold(seated.hold.holdId))?.seats.map((s) => s.seatIndex)).toEqual([0, 1]);

    await runInDurableObject(stub, (_instance: EventInventory, state) => {
      state.storage.sql.exec(`UPDATE holds SET seat_list = '[0, "1"]' WHERE hold_id = ?`, seated.hold.holdId);
      state.storage.sql.exec(`UPDATE holds SET ga_list = '[{"sectionId": 7, "quantity": 2}]' WHERE hold_id = ?`, pit.hold.holdId);
    });
    const errors = await runInDurableObject(stub, (instance: EventInventory) => Promise.all([rejectionOf(instance.getHold(seated.hold.holdId)), rejectionOf(instance.getHold(pit.hold.holdId))]));
    expect(errors[0]).toMatch(/stored seat list does not match its schema/);
    expect(errors[1]).toMatch(/stored general-admission list does not match its schema/);
  });

  it("replays a stored refusal, and fails on a corrupt one", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const [a = "", b = ""] = accounts;
    const stub = inventoryOf(event.id);
    await stub.prepare(event.id);
    expect(await stub.hold({ kind: "seats", accountId: b, attemptKey: "k0", requestId: "req-json-2b", seatIndexes: [0] })).toMatchObject({ ok: true });
    const request = { kind: "seats" as const, accountId: a, attemptKey: "k1", requestId: "req-json-3", seatIndexes: [0] };
    const refused = await stub.hold(request);
    expect(refused).toMatchObject({ ok: false, reason: "seat_taken" });
    expect(await stub.hold(request)).toEqual(refused);

    await runInDurableObject(stub, (_instance: EventInventory, state) => {
      state.storage.sql.exec(`UPDATE requests SET result = '{"ok": false, "reason": "no_such_reason", "message": "?"}'`);
    });
    await expect(runInDurableObject(stub, (instance: EventInventory) => instance.hold(request))).rejects.toThrow(/stored request result does not match its schema/);
  });
});
