/**
 * A clean start as root. Postgres refuses to run as root, so dev/postgres.ts
 * runs it as the `postgres` user, and that user cannot enter a folder closed
 * to others (a home directory, `mktemp -d`: mode 0700). As root (as CI runs)
 * these tests put the data below such a folder; as anyone else Postgres runs
 * as its owner and the same calls simply work, which is checked instead.
 */
import { chmod, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { findFreePort } from "../../dev/ports.ts";
import { startPostgres } from "../../dev/postgres.ts";
import { DEFAULT_PORTS, startLocalStack } from "../../dev/stack.ts";
import { withClient } from "./databases.ts";

const asRoot = userInfo().uid === 0;
/** A folder only its owner may enter, as `mktemp -d` makes it. */
let closed: string;
/** A folder anyone may enter. */
let open: string;

beforeAll(async () => {
  closed = await mkdtemp(path.join(tmpdir(), "closed-"));
  open = await mkdtemp(path.join(tmpdir(), "open-"));
  await chmod(open, 0o755);
});

afterAll(async () => {
  await rm(closed, { recursive: true, force: true });
  await rm(open, { recursive: true, force: true });
});

async function selectOne(url: string): Promise<unknown> {
  return withClient(url, async (client) => (await client.query("select 1 as one")).rows);
}

describe("startPostgres", () => {
  it("starts below a folder closed to others only when it runs as their owner; as root it refuses at once, naming the fix", async () => {
    expect((await stat(closed)).mode & 0o777).toBe(0o700);
    const dataDir = path.join(closed, "postgres");
    const starting = startPostgres({ dataDir, port: await findFreePort(), database: "closed_test" });
    if (!asRoot) {
      const postgres = await starting;
      await postgres.stop();
      return;
    }
    const startedAt = Date.now();
    await expect(starting).rejects.toThrow(/postgres user .*cannot enter the data folder .*closed-.*DATABASE_URL/s);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(await readdir(closed)).toEqual([]);
  });

  it("starts in a new data folder however deep below an open folder", { timeout: 60_000 }, async () => {
    const postgres = await startPostgres({ dataDir: path.join(open, "a", "b", "postgres"), port: await findFreePort(), database: "deep_test" });
    try {
      expect(await selectOne(postgres.url)).toEqual([{ one: 1 }]);
    } finally {
      await postgres.stop();
    }
  });
});

describe("startLocalStack", () => {
  it("keeps Postgres' data where the postgres user can reach it when the checkout is closed to others, and starts", { timeout: 90_000 }, async () => {
    const dataDir = path.join(closed, "checkout", ".data");
    const lines: string[] = [];
    const ports = Object.fromEntries(await Promise.all(Object.keys(DEFAULT_PORTS).map(async (service) => [service, await findFreePort()] as const)));
    const stack = await startLocalStack({ dataDir, redisUrl: inject("redisUrl"), ports, log: (line) => lines.push(line) });
    const moved = lines.join("\n").match(/its data lives in (\S+)\/postgres/)?.[1];
    try {
      expect(stack.started.postgres).toBe(true);
      expect(await selectOne(stack.databaseUrl)).toEqual([{ one: 1 }]);
      // The Worker's URL: the same database through PgBouncer, whose files sit next to Postgres' data.
      expect(stack.pooledDatabaseUrl).not.toBe(stack.databaseUrl);
      expect(await selectOne(stack.pooledDatabaseUrl)).toEqual([{ one: 1 }]);
      if (asRoot) {
        expect(moved).toMatch(/^\/var\/tmp\/edge-tickets-[0-9a-f]{12}$/);
        expect(await readdir(path.join(moved ?? "", "postgres"))).toContain("PG_VERSION");
        expect(await readdir(dataDir)).not.toContain("postgres");
      } else {
        expect(moved).toBeUndefined();
        expect(await readdir(path.join(dataDir, "postgres"))).toContain("PG_VERSION");
      }
    } finally {
      await stack.stop();
      if (moved) await rm(moved, { recursive: true, force: true });
    }
  });
});
