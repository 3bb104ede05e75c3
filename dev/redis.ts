import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { ensureCommand } from "./apt.ts";

/** A running local Redis and how to reach it. */
export interface LocalRedis {
  url: string;
  port: number;
  /** The server's process id (benchmarks count its CPU). */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Starts `redis-server` on loopback with its data kept in `dataDir`. */
export async function startRedis(options: { dataDir: string; port: number; persist: boolean }): Promise<LocalRedis> {
  const binary = ensureCommand("redis-server", "redis-server", "redis-server was not found. Install Redis (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to an existing server.");
  const dataDir = path.resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const args = ["--port", String(options.port), "--bind", "127.0.0.1", "--dir", dataDir, "--daemonize", "no", "--protected-mode", "no"];
  if (options.persist) args.push("--appendonly", "yes", "--save", "60 1");
  else args.push("--save", "", "--appendonly", "no");
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await waitForPort(options.port, () => (child.exitCode !== null ? `redis-server exited: ${stderr}` : undefined));
  return {
    url: `redis://127.0.0.1:${options.port}`,
    port: options.port,
    pid: child.pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, failed: () => string | undefined, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason) throw new Error(reason);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
