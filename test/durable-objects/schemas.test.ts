/**
 * Each object's SQLite schema is versioned: a fresh object reaches the last
 * migration's version and stores it, migrating again changes nothing, and
 * storage written before versions existed is adopted as version 1.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventInventory } from "../../durable-objects/event-inventory";
import { INVENTORY_MIGRATIONS } from "../../durable-objects/event-inventory/schema";
import { migrateSchema, storedSchemaVersion, type Migration } from "../../durable-objects/lib/schema-migrations";
import { SEAT_MAP_FEED_MIGRATIONS } from "../../durable-objects/seat-map-feed";
import { WAITING_ROOM_MIGRATIONS } from "../../durable-objects/waiting-room/schema";
import { restartObject } from "../fixtures/objects";
import { openEvent } from "../fixtures/seeding";

/** The schema as SQLite describes it. */
function schemaOf(storage: DurableObjectStorage): string[] {
  return storage.sql
    .exec<{ name: string; sql: string | null }>("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE '_cf_%' ORDER BY name")
    .toArray()
    .map((t) => `${t.name}: ${t.sql ?? ""}`);
}

const OBJECTS: { name: string; stub: () => DurableObjectStub; migrations: readonly Migration[] }[] = [
  { name: "EventInventory", stub: () => env.EVENT_INVENTORY.getByName(crypto.randomUUID()), migrations: INVENTORY_MIGRATIONS },
  { name: "WaitingRoom", stub: () => env.WAITING_ROOM.getByName(crypto.randomUUID()), migrations: WAITING_ROOM_MIGRATIONS },
  { name: "SeatMapFeed", stub: () => env.SEAT_MAP_FEED.getByName(crypto.randomUUID()), migrations: SEAT_MAP_FEED_MIGRATIONS },
];

describe.each(OBJECTS)("$name schema", ({ stub, migrations }) => {
  it("reaches the latest version on a fresh object and stores it; migrating again changes nothing", async () => {
    const seen = await runInDurableObject(stub(), (_instance, state) => {
      const version = storedSchemaVersion(state.storage.sql);
      const before = schemaOf(state.storage);
      const again = migrateSchema(state.storage, migrations);
      return { version, again, unchanged: JSON.stringify(schemaOf(state.storage)) === JSON.stringify(before), tables: before.length };
    });
    expect(seen).toEqual({ version: migrations.length, again: { from: migrations.length, to: migrations.length }, unchanged: true, tables: seen.tables });
    expect(seen.tables).toBeGreaterThan(1);
  });
});

describe("EventInventory storage from before schema versions", () => {
  it("is adopted as version 1 and migrated to the latest, with its holds and claims as they were", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const [fan = "", other = ""] = accounts;
    const stub = env.EVENT_INVENTORY.getByName(event.id);
    await stub.prepare(event.id);
    const held = await stub.hold({ kind: "best", accountId: fan, attemptKey: "k1", requestId: "req-unversioned-1", quantity: 2, priceTier: "A", allowSplit: false });
    if (!held.ok) throw new Error(held.message);
    const seats = held.hold.seats.map((s) => s.seatIndex);
    await runInDurableObject(stub, (_instance: EventInventory, state) => state.storage.sql.exec("DROP TABLE schema_version"));

    await restartObject(stub);
    const after = env.EVENT_INVENTORY.getByName(event.id);
    expect(await runInDurableObject(after, (_instance: EventInventory, state) => storedSchemaVersion(state.storage.sql))).toBe(INVENTORY_MIGRATIONS.length);
    expect((await after.getHold(held.hold.holdId))?.seats.map((s) => s.seatIndex)).toEqual(seats);
    const taken = await after.hold({ kind: "seats", accountId: other, attemptKey: "k2", requestId: "req-unversioned-2", seatIndexes: seats });
    expect(taken).toMatchObject({ ok: false, reason: "seat_taken" });
  });
});

describe("WaitingRoom migration 4 (admissions not yet recorded, a row per shard)", () => {
  it("carries each shard's pending admissions over as its list, and drops the row-per-fan table", async () => {
    const [, v2, , v4] = WAITING_ROOM_MIGRATIONS;
    const pendingTable = v2?.statements.find((statement) => statement.startsWith("CREATE TABLE pending"));
    if (!v4 || !pendingTable) throw new Error("the migrations changed: this test reads version 2's pending table and version 4");
    // A lobby shard's storage, which has neither table: the room's constructor would have migrated its own already.
    const seen = await runInDurableObject(env.LOBBY_SHARD.getByName(crypto.randomUUID()), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec(pendingTable);
      for (const [account, shard] of [["a", 0], ["b", 2], ["c", 0], ["d", 5]] as const) sql.exec("INSERT INTO pending (account_id, shard, order_key) VALUES (?, ?, 1)", account, shard);
      for (const statement of v4.statements) sql.exec(statement);
      const rows = sql.exec<{ shard: number; account_ids: string }>("SELECT shard, account_ids FROM unrecorded ORDER BY shard").toArray();
      const pendingLeft = sql.exec("SELECT name FROM sqlite_master WHERE name = 'pending'").toArray().length;
      return { rows: rows.map((row) => [row.shard, (JSON.parse(row.account_ids) as string[]).sort()]), pendingLeft };
    });
    expect(seen).toEqual({ rows: [[0, ["a", "c"]], [2, ["b"]], [5, ["d"]]], pendingLeft: 0 });
  });
});
