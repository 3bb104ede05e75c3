/**
 * The committed migrations build the whole schema on an empty database, match
 * core/db/schema.ts, and can be applied again without changing anything.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { is } from "drizzle-orm";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { applyMigrations } from "../../dev/migrate.ts";
import * as schema from "../../core/db/schema.ts";
import { useScratchDatabase, withClient } from "./databases.ts";

const JOURNAL = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "migrations", "meta", "_journal.json");
const databaseUrl = useScratchDatabase("migrations_test");

const catalogRow = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));

/** Everything the migrations define in `public`, plus drizzle's record of what it applied. */
async function describeDatabase() {
  return withClient(databaseUrl, async (client) => {
    const query = async (text: string) => z.array(catalogRow).parse((await client.query(text)).rows);
    return {
      columns: await query(`
        select table_name, column_name, data_type, is_nullable, column_default
        from information_schema.columns where table_schema = 'public' order by table_name, column_name`),
      indexes: await query(`select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by indexname`),
      constraints: await query(`
        select conrelid::regclass::text as table_name, conname, contype::text, pg_get_constraintdef(oid) as definition
        from pg_constraint where connamespace = 'public'::regnamespace order by conname`),
      applied: await query(`select id, hash, created_at::text from drizzle.__drizzle_migrations order by id`),
    };
  });
}

/** Every table declared in core/db/schema.ts. */
const declaredTables = Object.values(schema).flatMap((value) => (is(value, PgTable) ? [getTableConfig(value)] : []));

describe("applyMigrations on an empty database", () => {
  let first: Awaited<ReturnType<typeof describeDatabase>>;

  beforeAll(async () => {
    await applyMigrations(databaseUrl);
    first = await describeDatabase();
  });

  it("records every migration of the journal", async () => {
    const journal = z
      .object({ entries: z.array(z.object({ tag: z.string() })).min(1) })
      .parse(JSON.parse(await readFile(JOURNAL, "utf8")));
    expect(first.applied).toHaveLength(journal.entries.length);
  });

  it("creates every table, column, index and constraint that schema.ts declares", () => {
    expect(declaredTables.length).toBeGreaterThanOrEqual(17);
    const tables = new Set(first.columns.map((c) => c.table_name));
    const indexes = new Set(first.indexes.map((i) => i.indexname));
    const constraints = new Set(first.constraints.map((c) => c.conname));
    for (const table of declaredTables) {
      expect(tables, table.name).toContain(table.name);
      const columns = first.columns.filter((c) => c.table_name === table.name).map((c) => c.column_name);
      expect(columns.sort(), table.name).toEqual(table.columns.map((c) => c.name).sort());
      for (const index of table.indexes) expect(indexes, `${table.name} index`).toContain(index.config.name);
      for (const check of table.checks) expect(constraints, `${table.name} check`).toContain(check.name);
      for (const primaryKey of table.primaryKeys) expect(constraints, `${table.name} primary key`).toContain(primaryKey.getName());
      for (const foreignKey of table.foreignKeys) expect(constraints, `${table.name} foreign key`).toContain(foreignKey.getName());
    }
    // Nothing in the database that the schema does not declare (drizzle's own table lives in its own schema).
    expect([...tables].sort()).toEqual(declaredTables.map((t) => t.name).sort());
  });

  it("makes one live ticket per event seat a unique partial index", () => {
    const index = first.indexes.find((i) => i.indexname === "tickets_one_live_per_seat");
    expect(index?.tablename).toBe("tickets");
    expect(index?.indexdef).toMatch(/^CREATE UNIQUE INDEX tickets_one_live_per_seat ON public\.tickets USING btree \(event_id, seat_index\) WHERE/);
    expect(index?.indexdef).toMatch(/status <> 'void'/);
    expect(index?.indexdef).toMatch(/seat_index IS NOT NULL/);
  });

  it("guards orders, payments, general admission and seats with their key constraints", () => {
    const uniqueIndex = (name: string) => first.indexes.find((i) => i.indexname === name)?.indexdef;
    expect(uniqueIndex("orders_hold_key")).toMatch(/^CREATE UNIQUE INDEX .* \(hold_id\)$/);
    expect(uniqueIndex("payments_idempotency_key")).toMatch(/^CREATE UNIQUE INDEX .* \(idempotency_key\)$/);
    expect(uniqueIndex("holds_client_request_key")).toMatch(/^CREATE UNIQUE INDEX .* \(event_id, account_id, client_request_id\)$/);
    expect(uniqueIndex("waitlist_one_open_entry")).toMatch(/^CREATE UNIQUE INDEX .* WHERE/);
    expect(uniqueIndex("organizer_api_keys_key_hash_key")).toMatch(/^CREATE UNIQUE INDEX /);

    const constraint = (name: string) => first.constraints.find((c) => c.conname === name);
    expect(constraint("event_ga_sections_sold_range")).toMatchObject({ table_name: "event_ga_sections", contype: "c" });
    expect(constraint("event_ga_sections_sold_range")?.definition).toMatch(/sold >= 0.*sold <= capacity/);
    expect(constraint("seats_pkey")).toMatchObject({ table_name: "seats", contype: "p", definition: "PRIMARY KEY (venue_id, seat_index)" });
    expect(constraint("event_seats_pkey")).toMatchObject({ table_name: "event_seats", contype: "p", definition: "PRIMARY KEY (event_id, seat_index)" });
    expect(constraint("event_seats_held_has_hold")).toMatchObject({ table_name: "event_seats", contype: "c" });
    expect(constraint("events_sale_before_start")).toMatchObject({ table_name: "events", contype: "c" });
  });

  it("changes nothing when applied again", async () => {
    await applyMigrations(databaseUrl);
    expect(await describeDatabase()).toEqual(first);
  });
});
