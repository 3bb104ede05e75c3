import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventInventory } from "../../durable-objects/event-inventory";
import { migrateInventorySchema } from "../../durable-objects/inventory-schema";
import { readInventoryStorage } from "../inventory-model/durable-object-subject";
import { openEvent } from "./fixtures";

afterEach(() => {
  vi.useRealTimers();
});

describe("EventInventory", () => {
  it("holds best available adjacent seats and expires them on the alarm", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const stub = env.EVENT_INVENTORY.getByName(event.id);
    const prepared = await stub.prepare(event.id);
    expect(prepared).toMatchObject({ seatCount: 36, available: 46, rebuilt: true });
    const fan = accounts[0] ?? "";
    const result = await stub.hold({ kind: "best", accountId: fan, attemptKey: "k1", requestId: "req-00001", quantity: 2, priceTier: "A", allowSplit: false });
    if (!result.ok) throw new Error(result.message);
    expect(result.hold.seats.map((s) => `${s.section}-${s.row}-${s.seat}`)).toEqual(["A-1-3", "A-1-4"]);
    const expiresAt = result.hold.expiresAt;
    expect(expiresAt - result.hold.createdAt).toBeGreaterThanOrEqual(600_000);
    expect(expiresAt - result.hold.createdAt).toBeLessThan(660_000);

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(expiresAt + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = await stub.getHold(result.hold.holdId);
    expect(after?.status).toBe("expired");
    const availability = await stub.availability();
    expect(availability.sections.find((s) => s.label === "A")?.available).toBe(18);
  });
});

describe("EventInventory storage of the first layout", () => {
  it("is converted in place: the same holds keep the same seats, and the seats stay taken", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const stub = env.EVENT_INVENTORY.getByName(event.id);
    await stub.prepare(event.id);
    const [fan = "", other = ""] = accounts;
    const held = await stub.hold({ kind: "best", accountId: fan, attemptKey: "k1", requestId: "req-first-1", quantity: 2, priceTier: "A", allowSplit: false });
    if (!held.ok) throw new Error(held.message);
    const seats = held.hold.seats.map((s) => s.seatIndex);

    // Rewrite the storage the way the first layout kept it, then convert it as the constructor does after a deploy.
    const converted = await runInDurableObject(stub, (_instance: EventInventory, state) => {
      const { sql } = state.storage;
      sql.exec("DROP TABLE seat_claims");
      sql.exec("ALTER TABLE holds DROP COLUMN seat_list");
      sql.exec("ALTER TABLE holds DROP COLUMN ga_list");
      sql.exec("ALTER TABLE requests DROP COLUMN attempt_key");
      sql.exec("ALTER TABLE seats ADD COLUMN state INTEGER NOT NULL DEFAULT 0");
      sql.exec("ALTER TABLE seats ADD COLUMN hold_id TEXT");
      sql.exec("CREATE INDEX seats_by_hold ON seats (hold_id) WHERE hold_id IS NOT NULL");
      sql.exec("CREATE TABLE hold_seats (hold_id TEXT NOT NULL, seat_index INTEGER NOT NULL, PRIMARY KEY (hold_id, seat_index)) WITHOUT ROWID");
      sql.exec("CREATE TABLE hold_ga (hold_id TEXT NOT NULL, section_id TEXT NOT NULL, quantity INTEGER NOT NULL, PRIMARY KEY (hold_id, section_id))");
      sql.exec("CREATE TABLE attempts (attempt_key TEXT PRIMARY KEY, last_at INTEGER NOT NULL)");
      for (const seat of seats) {
        sql.exec("UPDATE seats SET state = 1, hold_id = ? WHERE seat_index = ?", held.hold.holdId, seat);
        sql.exec("INSERT INTO hold_seats (hold_id, seat_index) VALUES (?, ?)", held.hold.holdId, seat);
      }
      migrateInventorySchema(state.storage);
      return readInventoryStorage(sql, Date.now());
    });
    expect(converted.problems).toEqual([]);
    expect(converted.holds.map((h) => ({ holdId: h.holdId, seats: h.seats }))).toEqual([{ holdId: held.hold.holdId, seats }]);

    await evictDurableObject(stub);
    const after = env.EVENT_INVENTORY.getByName(event.id);
    expect((await after.getHold(held.hold.holdId))?.seats.map((s) => s.seatIndex)).toEqual(seats);
    const taken = await after.hold({ kind: "seats", accountId: other, attemptKey: "k2", requestId: "req-first-2", seatIndexes: seats });
    expect(taken).toMatchObject({ ok: false, reason: "seat_taken" });
  });
});
