/** `database()`: the request's configuration and Postgres handle. */
import { createMiddleware } from "hono/factory";
import { loadConfig, type Config } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";

/** What `database` puts in the context. */
export interface DatabaseVariables {
  config: Config;
  db: Db;
}

/**
 * Sets `config` (failing fast, naming what is missing) and `db`, a handle
 * that connects on first use and is closed after the response: most requests
 * on the hot path (holds of a hot event, cached reads) never touch Postgres.
 */
export function database() {
  return createMiddleware<{ Bindings: Env; Variables: DatabaseVariables }>(async (c, next) => {
    const config = loadConfig(c.env);
    let opened: ReturnType<typeof createDb> | undefined;
    const db = new Proxy({} as Db, {
      get(_target, property) {
        // Bounded waits: a stalled Postgres answers 503 database_unavailable (workers/app.ts), not a request held open.
        opened ??= createDb(config, { connectionTimeoutMillis: config.databaseWaitMs, queryTimeoutMillis: config.databaseWaitMs });
        const value: unknown = Reflect.get(opened.db, property, opened.db);
        return typeof value === "function" ? value.bind(opened.db) : value;
      },
    });
    c.set("config", config);
    c.set("db", db);
    try {
      await next();
    } finally {
      if (opened) c.executionCtx.waitUntil(opened.close().catch(() => undefined));
    }
  });
}
