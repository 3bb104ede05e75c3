/**
 * The reference design running: a Redis of its own (appendonly, fsync every
 * second: a Redis that keeps its holds across a restart) and the node:http
 * server (server.ts) in a process of its own, so each one's CPU is counted apart.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findFreePort } from "../../dev/ports.ts";
import { startRedis } from "../../dev/redis.ts";
import { processStat, totalCpu, treeCpuByName } from "../lib/processes.ts";
import { sleep, stopping } from "../lib/scenario.ts";

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "server.ts");
const READY_TIMEOUT_MS = 60_000;

/** A running reference. */
export interface Reference {
  url: string;
  redisUrl: string;
  /** CPU milliseconds so far of the server process and of Redis. */
  cpuMs(): { reference_node: number; reference_redis: number };
  stop(): Promise<void>;
}

/** Starts Redis (data in `dir`) and the server, which reads ADMISSION_TOKEN_KEY from `envFile`. */
export async function startReference(repoRoot: string, dir: string, envFile: string): Promise<Reference> {
  const redis = await startRedis({ dataDir: dir, port: await findFreePort(), persist: true });
  const port = await findFreePort();
  const server = spawn(path.join(repoRoot, "node_modules", ".bin", "node"), ["--import", "tsx", SERVER, String(port), redis.url, envFile], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const relay = (chunk: Buffer) => {
    output += chunk.toString();
    for (const line of chunk.toString().split("\n")) if (line.trim() !== "" && !line.startsWith("READY")) process.stderr.write(`[reference] ${line}\n`);
  };
  server.stdout.on("data", relay);
  server.stderr.on("data", relay);
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = once(server, "exit");
      server.kill("SIGTERM");
      await exited;
    }
    await redis.stop();
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!output.includes("READY")) {
    if (server.exitCode !== null || Date.now() > deadline || stopping()) {
      await stop();
      throw new Error(`the reference server did not start: ${output.slice(-500)}`);
    }
    await sleep(100);
  }
  const serverPid = server.pid ?? -1;
  return {
    url: `http://127.0.0.1:${port}`,
    redisUrl: redis.url,
    cpuMs: () => ({
      reference_node: totalCpu(treeCpuByName(serverPid)),
      reference_redis: redis.pid === undefined ? 0 : (processStat(redis.pid)?.cpuMs ?? 0),
    }),
    stop,
  };
}
