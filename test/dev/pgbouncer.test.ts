/**
 * PgBouncer in the local stack (dev/pgbouncer.ts), in transaction mode as
 * Neon's pooled endpoint runs: the Worker's driver (Neon's, through the
 * relay) runs its kinds of statements through it, transactions keep their
 * backend and their transaction-scoped advisory locks, and many short-lived
 * client connections share a few warm server connections instead of each
 * starting a backend.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startNeonRelay, type NeonRelay } from "../../dev/neon-relay.ts";
import { startPgBouncer, type LocalPgBouncer } from "../../dev/pgbouncer.ts";
import { findFreePort } from "../../dev/ports.ts";
import { openDb } from "../../dev/seed.ts";
import { useScratchDatabase, withClient } from "./databases.ts";

const POOL_SIZE = 2;
const databaseUrl = useScratchDatabase("pgbouncer");
let dir: string;
let bouncer: LocalPgBouncer;
let relay: NeonRelay;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pgbouncer-test-"));
  await chmod(dir, 0o755); // as root PgBouncer runs as the postgres user, who must reach its files
  bouncer = await startPgBouncer({ dir: path.join(dir, "pgbouncer"), port: await findFreePort(), postgresUrl: databaseUrl, poolSize: POOL_SIZE });
  relay = await startNeonRelay({ port: await findFreePort() });
  await withClient(databaseUrl, (client) => client.query("create table notes (id serial primary key, body text not null)"));
});

afterAll(async () => {
  await relay?.close();
  await bouncer?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The Worker's driver (Neon's, through the relay) on the pooled URL. */
function pooled() {
  return openDb(bouncer.url, `127.0.0.1:${relay.port}`);
}

/** Backends Postgres has started for the scratch database so far. */
async function sessions(): Promise<number> {
  return withClient(databaseUrl, async (client) => {
    const result = await client.query<{ n: number }>("select sessions::int as n from pg_stat_database where datname = current_database()");
    return result.rows[0]?.n ?? 0;
  });
}

/** Resolves once some backend waits for advisory lock `key` (polls pg_locks straight on Postgres). */
async function waitForLockWaiter(key: number): Promise<void> {
  await withClient(databaseUrl, async (client) => {
    for (;;) {
      const waiting = await client.query("select 1 from pg_locks where locktype = 'advisory' and objid = $1 and not granted", [key]);
      if (waiting.rowCount) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
}

describe("PgBouncer in transaction mode", () => {
  it("runs the driver's statements: parameters, inserts returning rows, transactions that commit or roll back", async () => {
    const { db, close } = await pooled();
    try {
      const [row] = (await db.execute<{ one: number; text: string }>(sql`select 1::int as one, ${"a 'quoted' value"}::text as text`)).rows;
      expect(row).toEqual({ one: 1, text: "a 'quoted' value" });
      const inserted = await db.execute<{ id: number }>(sql`insert into notes (body) values (${"kept"}) returning id`);
      expect(inserted.rows).toHaveLength(1);
      await expect(
        db.transaction(async (tx) => {
          await tx.execute(sql`insert into notes (body) values (${"rolled back"})`);
          throw new Error("abort");
        }),
      ).rejects.toThrow("abort");
      const committed = await db.transaction(async (tx) => {
        await tx.execute(sql`insert into notes (body) values (${"committed"})`);
        return (await tx.execute<{ n: number }>(sql`select count(*)::int as n from notes`)).rows[0]?.n;
      });
      expect(committed).toBe(2);
      const bodies = (await db.execute<{ body: string }>(sql`select body from notes order by id`)).rows.map((r) => r.body);
      expect(bodies).toEqual(["kept", "committed"]);
    } finally {
      await close();
    }
  });

  it("keeps a transaction-scoped advisory lock for the whole transaction: a second one waits for the first to commit", async () => {
    const first = await pooled();
    const second = await pooled();
    try {
      const order: string[] = [];
      let releaseFirst: () => void = () => undefined;
      const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
      let firstLocked: () => void = () => undefined;
      const locked = new Promise<void>((resolve) => (firstLocked = resolve));
      const a = first.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(4242)`);
        firstLocked();
        await firstHolds;
        order.push("first commits");
      });
      await locked;
      const b = second.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(4242)`);
        order.push("second locked");
      });
      // The second transaction waits in Postgres on the lock the first one's backend still holds.
      await waitForLockWaiter(4242);
      order.push("first still holds");
      releaseFirst();
      await Promise.all([a, b]);
      expect(order).toEqual(["first still holds", "first commits", "second locked"]);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it("serves many short-lived connections on at most its pool's server connections", async () => {
    const before = await sessions();
    for (let i = 0; i < 20; i++) {
      const { db, close } = await pooled();
      try {
        await db.execute(sql`insert into notes (body) values (${`connection ${i}`})`);
      } finally {
        await close();
      }
    }
    const started = (await sessions()) - before;
    expect(started).toBeGreaterThanOrEqual(0);
    expect(started).toBeLessThanOrEqual(POOL_SIZE);
    // The admin console speaks the simple protocol only: a query without parameters.
    const pools = await withClient(bouncer.adminUrl, async (client) => (await client.query<{ database: string; pool_mode: string }>("SHOW POOLS")).rows);
    expect(pools.find((pool) => pool.database === new URL(databaseUrl).pathname.slice(1))?.pool_mode).toBe("transaction");
  });
});
