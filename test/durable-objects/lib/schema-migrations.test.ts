/**
 * Numbered schema migrations on a real object's storage. Each test takes a
 * fresh object and removes its own version record, so the test's migrations
 * start from an unversioned storage (the object's own tables stay, unused).
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { migrateSchema, storedSchemaVersion, type Migration } from "../../../durable-objects/lib/schema-migrations";

const MIGRATIONS: readonly Migration[] = [
  { version: 1, description: "widgets", statements: ["CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"] },
  // Not idempotent on purpose: run twice, it would insert twice.
  { version: 2, description: "a first widget", statements: ["INSERT INTO widgets (name) VALUES ('first')"] },
  { version: 3, description: "widget colours", statements: ["ALTER TABLE widgets ADD COLUMN colour TEXT", "CREATE INDEX widgets_by_colour ON widgets (colour)"] },
];

/** Runs `fn` on a fresh object's storage with no schema version recorded. */
function onUnversionedStorage<T>(fn: (storage: DurableObjectStorage) => T): Promise<T> {
  return runInDurableObject(env.SEAT_MAP_FEED.getByName(crypto.randomUUID()), (_feed, state) => {
    state.storage.sql.exec("DROP TABLE schema_version");
    return fn(state.storage);
  });
}

function tables(storage: DurableObjectStorage): string[] {
  return storage.sql
    .exec<{ name: string; sql: string | null }>("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE '_cf_%' ORDER BY name")
    .toArray()
    .map((t) => `${t.name}: ${t.sql ?? ""}`);
}

function widgets(storage: DurableObjectStorage): string[] {
  return storage.sql.exec<{ name: string }>("SELECT name FROM widgets ORDER BY id").toArray().map((w) => w.name);
}

describe("migrateSchema", () => {
  it("runs every migration in order on a fresh storage and records the version; running again is a no-op", async () => {
    const outcome = await onUnversionedStorage((storage) => {
      const first = migrateSchema(storage, MIGRATIONS);
      const after = { version: storedSchemaVersion(storage.sql), tables: tables(storage), widgets: widgets(storage) };
      const again = migrateSchema(storage, MIGRATIONS);
      return { first, again, after, afterAgain: { version: storedSchemaVersion(storage.sql), tables: tables(storage), widgets: widgets(storage) } };
    });
    expect(outcome.first).toEqual({ from: 0, to: 3 });
    expect(outcome.after.version).toBe(3);
    expect(outcome.after.widgets).toEqual(["first"]);
    expect(outcome.after.tables.some((t) => t.startsWith("widgets_by_colour"))).toBe(true);
    expect(outcome.again).toEqual({ from: 3, to: 3 });
    expect(outcome.afterAgain).toEqual(outcome.after);
  });

  it("runs only the migrations above the stored version", async () => {
    const outcome = await onUnversionedStorage((storage) => {
      migrateSchema(storage, MIGRATIONS.slice(0, 2));
      const between = storedSchemaVersion(storage.sql);
      const next = migrateSchema(storage, MIGRATIONS);
      return { between, next, version: storedSchemaVersion(storage.sql), widgets: widgets(storage) };
    });
    expect(outcome).toEqual({ between: 2, next: { from: 2, to: 3 }, version: 3, widgets: ["first"] });
  });

  it("rolls a failing run back whole: no table of it stays, the version stays where it was", async () => {
    const broken: readonly Migration[] = [...MIGRATIONS, { version: 4, description: "broken", statements: ["CREATE TABLE gadgets (id INTEGER PRIMARY KEY)", "ALTER TABLE nowhere ADD COLUMN x TEXT"] }];
    const outcome = await onUnversionedStorage((storage) => {
      migrateSchema(storage, MIGRATIONS.slice(0, 1));
      const before = tables(storage);
      let error = "";
      try {
        migrateSchema(storage, broken);
      } catch (thrown) {
        error = String(thrown);
      }
      return { error, version: storedSchemaVersion(storage.sql), unchanged: JSON.stringify(tables(storage)) === JSON.stringify(before) };
    });
    expect(outcome.error).toMatch(/nowhere/);
    expect(outcome).toMatchObject({ version: 1, unchanged: true });
  });

  it("refuses a list not numbered 1, 2, 3... and a storage newer than the code, changing nothing", async () => {
    const outcome = await onUnversionedStorage((storage) => {
      const attempt = (migrations: readonly Migration[]) => {
        try {
          migrateSchema(storage, migrations);
          return "ran";
        } catch (thrown) {
          return String(thrown);
        }
      };
      const gap = attempt([MIGRATIONS[0] ?? { version: 1, description: "", statements: [] }, { version: 3, description: "gap", statements: [] }]);
      const gapTables = tables(storage).filter((t) => t.startsWith("widgets"));
      migrateSchema(storage, MIGRATIONS);
      const before = tables(storage);
      const older = attempt(MIGRATIONS.slice(0, 2));
      return { gap, gapTables, older, version: storedSchemaVersion(storage.sql), unchanged: JSON.stringify(tables(storage)) === JSON.stringify(before) };
    });
    expect(outcome.gap).toMatch(/migration 2 is numbered 3/);
    expect(outcome.gapTables).toEqual([]);
    expect(outcome.older).toMatch(/schema version 3, newer than this code's 2/);
    expect(outcome).toMatchObject({ version: 3, unchanged: true });
  });
});
