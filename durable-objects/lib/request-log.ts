/**
 * Requests an object served, per second and kind, kept in the object's own
 * SQLite: tests and benchmarks read them to show an object stays inside
 * Cloudflare's ~1,000 requests per second, and that fans' polls do not reach
 * it. Kept in storage, not memory, so an object that workerd evicts and
 * restarts between requests loses no count. Off unless the Worker's var
 * OBJECT_REQUEST_LOG is "1" (tests and benchmarks); production writes nothing.
 */
import type { Sql } from "./sql";

/** The table, for an object's schema migrations. */
export const REQUEST_LOG_TABLE = `CREATE TABLE IF NOT EXISTS request_log (second INTEGER NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (second, kind))`;

/** Requests of one kind in one second. */
export interface RequestCount {
  second: number;
  kind: string;
  n: number;
}

/** An object's request counter. */
export class RequestLog {
  constructor(
    private readonly sql: Sql,
    readonly enabled: boolean,
  ) {}

  /** Counts `n` requests of `kind` in the current second. */
  count(kind: string, n = 1): void {
    if (!this.enabled || n <= 0) return;
    this.sql`INSERT INTO request_log (second, kind, n) VALUES (${Math.floor(Date.now() / 1000)}, ${kind}, ${n})
      ON CONFLICT (second, kind) DO UPDATE SET n = n + excluded.n`;
  }

  /** Every count kept, oldest first. */
  read(): RequestCount[] {
    return this.sql<{ second: number; kind: string; n: number }>`SELECT second, kind, n FROM request_log ORDER BY second, kind`.toArray();
  }
}

/** True when the env turns request counting on. */
export function requestLogEnabled(env: { OBJECT_REQUEST_LOG?: string }): boolean {
  return env.OBJECT_REQUEST_LOG === "1";
}
