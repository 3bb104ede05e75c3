/**
 * The benchmark's own line to Postgres, for watching and checking: one
 * node-postgres connection, straight to the server (not through the relay the
 * Worker uses), opened before the load and kept, so it still answers when the
 * app under test has used up every connection slot.
 */
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";

/** What the checks need: drizzle `sql` queries with typed rows. */
export interface Observer {
  execute<T extends Record<string, unknown>>(query: SQL): Promise<{ rows: T[] }>;
}

const dialect = new PgDialect();

/** Opens the observer connection; `close()` ends it. */
export async function openObserver(databaseUrl: string): Promise<{ observer: Observer; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  client.on("error", () => undefined); // a lost connection surfaces on the next query
  const observer: Observer = {
    async execute<T extends Record<string, unknown>>(query: SQL) {
      const { sql, params } = dialect.sqlToQuery(query);
      return { rows: (await client.query<T>(sql, params)).rows };
    },
  };
  return { observer, close: () => client.end() };
}
