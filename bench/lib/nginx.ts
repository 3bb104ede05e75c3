/**
 * The load balancer of the split topology: Debian's nginx (installed with apt
 * when missing) round-robin over the stateless Worker processes, with kept-alive
 * upstream connections, as a real edge spreads requests over Worker isolates.
 * A Node proxy would cost about as much CPU per request as the Worker; nginx
 * costs a few µs. One worker process, no access log, everything under `dir`.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureCommand } from "../../dev/apt.ts";
import { findFreePort } from "../../dev/ports.ts";
import { waitForPort } from "../../dev/redis.ts";
import { totalCpu, treeCpuByName } from "./processes.ts";

/** A running nginx. */
export interface LoadBalancer {
  url: string;
  pid: number;
  /** CPU milliseconds used so far by its master and worker processes. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** Starts nginx on a free port in front of `upstreams` (127.0.0.1 ports). */
export async function startLoadBalancer(dir: string, upstreams: number[]): Promise<LoadBalancer> {
  const binary = ensureCommand("nginx", "nginx-light", "nginx was not found. Install it (Debian/Ubuntu: apt-get install nginx-light).");
  await mkdir(path.join(dir, "temp"), { recursive: true });
  const port = await findFreePort();
  const temp = (name: string) => `${name}_temp_path ${path.join(dir, "temp", name)};`;
  const config = [
    // As root, nginx's workers would otherwise drop to `nobody`, who cannot write the temp folders.
    ...(process.getuid?.() === 0 ? ["user root;"] : []),
    "worker_processes 1;",
    "daemon off;",
    `pid ${path.join(dir, "nginx.pid")};`,
    `error_log ${path.join(dir, "error.log")} warn;`,
    "events { worker_connections 4096; }",
    "http {",
    "  access_log off;",
    `  ${temp("client_body")} ${temp("proxy")} ${temp("fastcgi")} ${temp("uwsgi")} ${temp("scgi")}`,
    "  keepalive_requests 1000000;",
    "  keepalive_timeout 300s;",
    "  upstream workers {",
    ...upstreams.map((upstream) => `    server 127.0.0.1:${upstream};`),
    "    keepalive 256;",
    "    keepalive_requests 1000000;",
    "    keepalive_timeout 300s;",
    "  }",
    "  server {",
    `    listen 127.0.0.1:${port};`,
    "    location / {",
    "      proxy_pass http://workers;",
    "      proxy_http_version 1.1;",
    '      proxy_set_header Connection "";',
    "      proxy_set_header Host $http_host;",
    "      proxy_read_timeout 300s;",
    "    }",
    "  }",
    "}",
  ];
  const configFile = path.join(dir, "nginx.conf");
  await writeFile(configFile, `${config.join("\n")}\n`);
  const child = spawn(binary, ["-p", dir, "-c", configFile], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const pid = child.pid;
  if (pid === undefined) throw new Error("nginx did not start");
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  try {
    await waitForPort(port, () => (child.exitCode !== null ? `nginx exited (${child.exitCode}): ${stderr}` : undefined));
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, pid, cpuMs: () => totalCpu(treeCpuByName(pid)), stop };
}
