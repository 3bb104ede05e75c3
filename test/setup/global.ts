import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { applyMigrations } from "../../dev/migrate.ts";
import { startNeonRelay } from "../../dev/neon-relay.ts";
import { startPostgres } from "../../dev/postgres.ts";
import { startRedis } from "../../dev/redis.ts";
import { startUpstashBridge } from "../../dev/upstash-bridge.ts";
import { findFreePort } from "../../dev/ports.ts";
import { generateSigningKey } from "../../dev/signing-key.ts";

const BRIDGE_TOKEN = "test-token";

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    postgresPort: number;
    redisUrl: string;
    redisPort: number;
    relayPort: number;
    bridgeUrl: string;
    bridgeToken: string;
    tokenSigningKey: string;
  }
}

/**
 * Starts the whole local stack once per test run: real Postgres (fresh, empty
 * data directory, migrations applied), real Redis, the Neon WebSocket relay and
 * the Upstash REST bridge. Stops it all afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(path.join(tmpdir(), "edge-tickets-test-"));
  await chmod(root, 0o755); // Postgres runs as its own user when we are root
  const postgres = await startPostgres({ dataDir: path.join(root, "postgres"), port: await findFreePort(), database: "tickets" });
  const redis = await startRedis({ dataDir: path.join(root, "redis"), port: await findFreePort(), persist: false });
  await applyMigrations(postgres.url);
  const relay = await startNeonRelay({ port: await findFreePort() });
  const bridge = await startUpstashBridge({ port: await findFreePort(), redisUrl: redis.url, token: BRIDGE_TOKEN });
  project.provide("postgresUrl", postgres.url);
  project.provide("postgresPort", postgres.port);
  project.provide("redisUrl", redis.url);
  project.provide("redisPort", redis.port);
  project.provide("relayPort", relay.port);
  project.provide("bridgeUrl", bridge.url);
  project.provide("bridgeToken", BRIDGE_TOKEN);
  project.provide("tokenSigningKey", await generateSigningKey("test-key-1"));
  return async () => {
    await Promise.allSettled([relay.close(), bridge.close()]);
    await Promise.allSettled([postgres.stop(), redis.stop()]);
    await rm(root, { recursive: true, force: true });
  };
}
