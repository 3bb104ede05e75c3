import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startPostgres } from "../../dev/postgres.ts";
import { startRedis } from "../../dev/redis.ts";

/** Ports of the test stack: fixed, below 32768, apart from the dev stack's. */
export const TEST_PORTS = { postgres: 25432, redis: 26379, relay: 25433, bridge: 26380 } as const;

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    postgresPort: number;
    redisUrl: string;
    redisPort: number;
  }
}

/**
 * Starts real Postgres (fresh, empty data directory) and real Redis for the
 * whole test run, and stops them afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(path.join(tmpdir(), "edge-tickets-test-"));
  await chmod(root, 0o755); // Postgres runs as its own user when we are root
  const postgres = await startPostgres({ dataDir: path.join(root, "postgres"), port: TEST_PORTS.postgres, database: "tickets" });
  const redis = await startRedis({ dataDir: path.join(root, "redis"), port: TEST_PORTS.redis, persist: false });
  project.provide("postgresUrl", postgres.url);
  project.provide("postgresPort", postgres.port);
  project.provide("redisUrl", redis.url);
  project.provide("redisPort", redis.port);
  return async () => {
    await Promise.allSettled([postgres.stop(), redis.stop()]);
    await rm(root, { recursive: true, force: true });
  };
}
