/**
 * Numbered schema migrations for a Durable Object's SQLite, run from its
 * constructor under `blockConcurrencyWhile`.
 *
 * The storage records the version it is at (`schema_version`); migrations
 * above it run in order, all in one transaction with the new version, so an
 * object is always at one version or the next, never between. An object at
 * the latest version runs no DDL at all. Migration 1 of each object creates
 * its tables with `IF NOT EXISTS`, so storage written before versions existed
 * is adopted as version 1.
 */
import { sqlOver, type Sql } from "./sql";

/** One step of an object's schema. */
export interface Migration {
  /** 1, 2, 3...: its place in the list. */
  version: number;
  /** What it changes, for people reading the list. */
  description: string;
  /** Statements run in order (DDL, or SQL that moves data). */
  statements: readonly string[];
}

/** Where a migration run started and ended. */
export interface MigrationOutcome {
  from: number;
  to: number;
}

const VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)";

/** The version stored in `sql` (0: none yet). */
export function storedSchemaVersion(sql: SqlStorage): number {
  const tables = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").toArray();
  if (tables.length === 0) return 0;
  return sql.exec<{ version: number }>("SELECT version FROM schema_version WHERE id = 1").toArray()[0]?.version ?? 0;
}

/**
 * Brings the storage to the last migration's version. Throws, changing
 * nothing, when the list is not numbered 1, 2, 3... or when the storage is at
 * a version this code does not know (written by newer code).
 */
export function migrateSchema(storage: DurableObjectStorage, migrations: readonly Migration[]): MigrationOutcome {
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) throw new Error(`migration ${i + 1} is numbered ${migration.version}: number them 1, 2, 3...`);
  });
  const latest = migrations.length;
  const { sql } = storage;
  const from = storedSchemaVersion(sql);
  if (from > latest) throw new Error(`storage is at schema version ${from}, newer than this code's ${latest}`);
  if (from === latest) return { from, to: latest };
  storage.transactionSync(() => {
    sql.exec(VERSION_TABLE);
    for (const migration of migrations.slice(from)) {
      for (const statement of migration.statements) sql.exec(statement);
    }
    sql.exec("INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version", latest);
  });
  return { from, to: latest };
}

/**
 * For an object's constructor: migrates its storage before any request or
 * alarm reaches it (`blockConcurrencyWhile`), and returns the `sql` tag over
 * that storage.
 */
export function migratedSql(ctx: DurableObjectState, migrations: readonly Migration[]): Sql {
  void ctx.blockConcurrencyWhile(async () => migrateSchema(ctx.storage, migrations));
  return sqlOver(ctx.storage.sql);
}
