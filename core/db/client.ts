import { Pool, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import type { NeonQueryResultHKT } from "drizzle-orm/neon-serverless";
import type { PgDatabase } from "drizzle-orm/pg-core";
import type { Config } from "../config";

/**
 * The drizzle database handle used by request handlers, or an open transaction
 * on it: capability code written against `Db` also runs inside a caller's
 * transaction (the audit log commits with the change it records).
 */
export type Db = PgDatabase<NeonQueryResultHKT>;

/** Pool settings a caller may change (node-postgres's `PoolConfig`). */
export interface PoolOptions {
  /** Most connections open at once (default 4). */
  max?: number;
  /** How long a connection may sit unused before the pool closes it (node-postgres's default: 10 s). */
  idleTimeoutMillis?: number;
  /** How long connecting may take before it fails ("Connection terminated due to connection timeout"); default: no limit. */
  connectionTimeoutMillis?: number;
  /** How long a query may wait for its answer before it fails ("Query read timeout"); default: no limit. */
  queryTimeoutMillis?: number;
}

/**
 * Opens a database handle for one request. Workers cannot share sockets across
 * requests, so each request gets its own pool; `close()` must run when the
 * request is done (the hono middleware does it in `waitUntil`). A Durable
 * Object may keep one across its requests (durable-objects/lib/kept-db.ts).
 */
export function createDb(config: Pick<Config, "databaseUrl" | "neonWsProxy">, options: PoolOptions = {}) {
  if (config.neonWsProxy) {
    // The local stack: the driver speaks to Postgres through our WebSocket relay,
    // in plain text on loopback, exactly as it speaks to Neon's proxy. Not
    // pipelined, so a Postgres asking for SCRAM (DATABASE_URL pointing elsewhere)
    // still works; the stack's own asks for a cleartext password, as Neon's
    // proxy does (dev/postgres.ts), and measured no slower this way.
    const relay = config.neonWsProxy;
    neonConfig.wsProxy = (host, port) => `${relay}/v2?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const { queryTimeoutMillis, ...poolOptions } = options;
  const pool = new Pool({ connectionString: config.databaseUrl, max: 4, ...poolOptions, ...(queryTimeoutMillis === undefined ? {} : { query_timeout: queryTimeoutMillis }) });
  pool.on("error", () => undefined); // idle-client errors surface on the next query instead
  // No `schema`: we use the query builder only, and building the relational config cost ~15% of a hold.
  const db: Db = drizzle({ client: pool, casing: "snake_case" });
  return { db, pool, close: () => pool.end() };
}
