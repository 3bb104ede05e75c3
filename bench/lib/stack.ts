/**
 * A scenario's own local stack: in a temporary folder, never the servers
 * DATABASE_URL or REDIS_URL name, on free ports (not the dev stack's), and
 * stopped and removed by the scenario's clean-up, also when it is
 * interrupted while starting.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { findFreePort } from "../../dev/ports.ts";
import { DEFAULT_PORTS, startLocalStack, type LocalStack } from "../../dev/stack.ts";
import { say, type Cleanup } from "./scenario.ts";

/** A started stack and the scenario's temporary folder (for its own files). */
export interface BenchStack {
  workDir: string;
  stack: LocalStack;
}

/** Starts a fresh stack in a new temporary folder; `cleanup` stops and removes both. */
export async function startBenchStack(cleanup: Cleanup): Promise<BenchStack> {
  const workDir = await mkdtemp(path.join(tmpdir(), "edge-tickets-bench-"));
  cleanup.add("temporary files", () => rm(workDir, { recursive: true, force: true }));
  // As root, Postgres runs as `postgres` and must be able to enter its data folder below this one.
  await chmod(workDir, 0o755);
  const services = Object.keys(DEFAULT_PORTS);
  const free = new Set<number>();
  while (free.size < services.length) free.add(await findFreePort());
  const ports = Object.fromEntries(services.map((service, i) => [service, [...free][i]]));
  // Empty strings: start a Postgres and a Redis of its own, whatever the environment names.
  const starting = startLocalStack({ dataDir: path.join(workDir, "stack"), databaseUrl: "", redisUrl: "", ports, log: say });
  cleanup.add("local stack", async () => (await starting.catch(() => undefined))?.stop());
  return { workDir, stack: await starting };
}
