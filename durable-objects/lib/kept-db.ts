/**
 * A Postgres handle a Durable Object keeps open across its requests, so the
 * connection (a WebSocket to Neon's proxy, then the pooler and its
 * authentication) is set up once, not on every statement.
 *
 * A stateless Worker may not use an I/O object from another request, but all
 * the requests of one Durable Object run in the object's own I/O context: a
 * socket one of them opens serves the later ones ("Cannot perform I/O on
 * behalf of a different Durable Object" is what workerd refuses: sharing
 * between objects). The handle lives as long as the object is in memory; when
 * the object is evicted its sockets close with it.
 *
 * - Opened lazily, by the first statement.
 * - Closed after KEPT_DB_IDLE_MS without a statement, so an idle object holds
 *   no server connection. node-postgres's pool does it with a timer; a timer
 *   is sound here because what it guards dies with it: if the object is
 *   evicted first, the socket is gone anyway.
 * - Each statement is bounded by KEPT_DB_TIMEOUT_MS: a stalled connection
 *   (no answer) fails the statement instead of hanging its callers.
 * - Any failure drops the handle (the next statement opens a fresh one). A
 *   statement that failed on a connection opened by an earlier one runs once
 *   more on a fresh connection (the old one may have broken while idle:
 *   Postgres or the pooler restarted, the proxy closed the socket); one that
 *   timed out, or failed on a fresh connection, is not retried here: the
 *   caller's own retry takes over.
 */
import type { Config } from "../../core/config";
import { POSTGRES_UNREACHABLE } from "../../core/errors";
import { createDb, type Db } from "../../core/db/client";

/** How long the connection may sit unused before it is closed. */
export const KEPT_DB_IDLE_MS = 30_000;

/**
 * How long one statement may take before it fails and its connection is
 * dropped. Far above what the slowest statement takes on a loaded CI machine
 * (a 2,000-hold upsert or a stadium's snapshot: well under a second quiet, a
 * few seconds with both cores busy), and under the 30 s a test may run, so
 * a stall shows up as a failed send there, never as a hung test.
 */
export const KEPT_DB_TIMEOUT_MS = 20_000;

/** How long a connection may sit unused, and a statement take. */
export interface KeptDbLimits {
  idleMs: number;
  timeoutMs: number;
}

const KEPT_DB_LIMITS: KeptDbLimits = { idleMs: KEPT_DB_IDLE_MS, timeoutMs: KEPT_DB_TIMEOUT_MS };

/** A statement that got no answer within its timeout. */
export class KeptDbTimeout extends Error {
  constructor(ms: number) {
    super(`${POSTGRES_UNREACHABLE}: no answer within ${ms} ms; the connection was dropped`);
    this.name = "KeptDbTimeout";
  }
}

type Handle = ReturnType<typeof createDb>;

/** One Postgres handle kept across an object's requests (see the file's header). */
export class KeptDb {
  private handle: Handle | undefined;

  /**
   * @param config where Postgres is (read when a connection is opened).
   * @param applicationName the name the connection shows in `pg_stat_activity` and the pooler's SHOW CLIENTS.
   */
  constructor(
    private readonly config: () => Pick<Config, "databaseUrl" | "neonWsProxy">,
    private readonly applicationName: string,
    private readonly limits: KeptDbLimits = KEPT_DB_LIMITS,
  ) {}

  /** Runs one statement (or a few, read together) on the kept connection, opening it if needed. */
  async run<T>(work: (db: Db) => Promise<T>): Promise<T> {
    const reused = this.handle !== undefined;
    try {
      return await this.attempt(work);
    } catch (error) {
      if (!reused || error instanceof KeptDbTimeout) throw error;
      return this.attempt(work);
    }
  }

  private async attempt<T>(work: (db: Db) => Promise<T>): Promise<T> {
    const handle = (this.handle ??= this.open());
    const { timeoutMs } = this.limits;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new KeptDbTimeout(timeoutMs)), timeoutMs);
    });
    try {
      return await Promise.race([work(handle.db), stalled]);
    } catch (error) {
      this.drop(handle);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private open(): Handle {
    const config = this.config();
    const url = new URL(config.databaseUrl);
    url.searchParams.set("application_name", this.applicationName);
    // Statements never overlap on the hot path (the mirror sends one batch at a time); a second connection only serves a load during a send.
    return createDb({ ...config, databaseUrl: url.toString() }, { max: 2, idleTimeoutMillis: this.limits.idleMs });
  }

  /** Forgets a failed handle and closes it without waiting (a stalled socket may never finish closing). */
  private drop(handle: Handle): void {
    if (this.handle === handle) this.handle = undefined;
    void handle.close().catch(() => undefined);
  }
}
