/**
 * The Worker under test: workerd on a free loopback port, driven by Miniflare
 * in a process of its own (lib/miniflare-host.ts: the production bundle and
 * wrangler.toml's bindings, without the reload proxy `wrangler dev` puts in
 * front), run from a snapshot of the project taken at start (a benchmark must
 * not pick up files saved halfway), with its secrets from an env file of the
 * benchmark's own (the project's `.dev.vars` is neither read nor touched) and
 * its Durable Object storage in the benchmark's temporary folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { cp, mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { findFreePort } from "../../dev/ports.ts";
import { generateAdmissionKey } from "../../dev/signing-key.ts";
import type { LocalStack } from "../../dev/stack.ts";
import { dotenvLines, stackVars } from "../../dev/worker-vars.ts";
import type { HostConfig } from "./miniflare-host.ts";
import { descendants, processStat, treeCpuByName } from "./processes.ts";
import { say, sleep, stopping } from "./scenario.ts";

const HEALTH_TIMEOUT_MS = 120_000;
/** Top-level entries of the project not copied into the snapshot (node_modules is linked). */
const NOT_SNAPSHOTTED = new Set(["node_modules", ".git", ".data", ".wrangler", "dist", ".dev.vars"]);
const STOP_TIMEOUT_MS = 10_000;
/** Lines of the host's output kept to explain a failure. */
const RECENT_LINES = 200;
/** The Worker's name in wrangler.toml (and the inspector target of a single host). */
export const WORKER_NAME = "edge-tickets";

/** A running Worker (one host, one workerd). */
export interface BenchApp {
  url: string;
  /** The host process's pid (its workerd runs below it). */
  pid: number;
  /** The V8 inspector of the Worker (see lib/profiler.ts). */
  inspectorPort: number;
  /** The Worker's name: the inspector's target is `core:user:<name>`. */
  workerName: string;
  /** CPU milliseconds used so far by the workerd below the host, and by the host's own Node process (reported as "wrangler"). */
  cpuMs(): { workerd: number; wrangler: number };
  /** The host's latest output lines (they also go to stderr as they come). */
  recentOutput(): string[];
  stop(): Promise<void>;
}

/** The Worker's two token keys (TOKEN_SIGNING_KEY and ADMISSION_TOKEN_KEY). */
export interface TokenKeys {
  TOKEN_SIGNING_KEY: string;
  ADMISSION_TOKEN_KEY: string;
}

/** Copies the project (its node_modules linked) to `dir`, for the Worker to be built and run from. */
export async function snapshotProject(repoRoot: string, dir: string): Promise<void> {
  await cp(repoRoot, dir, {
    recursive: true,
    filter: (source) => !NOT_SNAPSHOTTED.has(path.relative(repoRoot, source).split(path.sep)[0] ?? ""),
  });
  await symlink(path.join(repoRoot, "node_modules"), path.join(dir, "node_modules"));
}

/** The environment a host process (or wrangler) runs with. */
function hostEnv(repoRoot: string, logDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // wrangler 4 needs Node >= 22.12: the `node` devDependency provides it.
    PATH: `${path.join(repoRoot, "node_modules", ".bin")}${path.delimiter}${process.env.PATH ?? ""}`,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_LOG_PATH: logDir,
  };
}

/** Builds the production bundle of the snapshot (`wrangler deploy --dry-run`) into `outDir`; `entry` replaces wrangler.toml's `main`. */
export async function buildBundle(repoRoot: string, projectDir: string, outDir: string, entry?: string): Promise<void> {
  const wrangler = spawn(path.join(repoRoot, "node_modules", ".bin", "wrangler"), ["deploy", ...(entry ? [entry] : []), "--dry-run", "--outdir", outDir], {
    cwd: projectDir,
    stdio: ["ignore", "pipe", "pipe"],
    env: hostEnv(repoRoot, path.join(outDir, "..", "logs")),
  });
  let output = "";
  wrangler.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  wrangler.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(wrangler, "exit")) as [number | null];
  if (code !== 0) throw new Error(`wrangler could not build the Worker (exit code ${code}):\n${output.slice(-3_000)}`);
}

/** Writes the Worker's env file (the stack's settings and the token keys) into `runDir`; returns its path. */
export async function writeWorkerEnv(runDir: string, stack: LocalStack, keys: TokenKeys, vars: Record<string, string> = {}): Promise<string> {
  await mkdir(runDir, { recursive: true });
  const envFile = path.join(runDir, "worker.env");
  await writeFile(envFile, `${dotenvLines({ ...stackVars(stack), ...keys, ...vars }).join("\n")}\n`, { mode: 0o600 });
  return envFile;
}

/** What every host started from one snapshot shares: the snapshot, its bundle and the Worker's env file. */
export interface WorkerSource {
  repoRoot: string;
  projectDir: string;
  bundle: string;
  envFile: string;
}

/**
 * Writes the Worker's env file into `envDir` and builds the snapshot's bundle
 * into `bundle` (with `entry` instead of wrangler.toml's `main`): the steps
 * before any host starts, shared by startApp and the benches that start hosts
 * themselves (lib/topology.ts, lib/room-probe.ts).
 */
export async function prepareWorker(options: {
  repoRoot: string;
  projectDir: string;
  stack: LocalStack;
  keys: TokenKeys;
  envDir: string;
  bundle: string;
  entry?: string;
  vars?: Record<string, string>;
}): Promise<WorkerSource> {
  const envFile = await writeWorkerEnv(options.envDir, options.stack, options.keys, options.vars);
  await buildBundle(options.repoRoot, options.projectDir, options.bundle, options.entry);
  return { repoRoot: options.repoRoot, projectDir: options.projectDir, bundle: options.bundle, envFile };
}

/** TOKEN_SIGNING_KEY as given, and ADMISSION_TOKEN_KEY as given or fresh (the caller then signs no admission tokens itself). */
export async function tokenKeys(signingKey: string, admissionKey?: string): Promise<TokenKeys> {
  return { TOKEN_SIGNING_KEY: signingKey, ADMISSION_TOKEN_KEY: admissionKey ?? (await generateAdmissionKey("bench")) };
}

/**
 * Starts the Worker (lib/miniflare-host.ts) from the snapshot in
 * `projectDir` against `stack`, with its env file, bundle and storage in
 * `runDir`, and waits until /api/health answers 200.
 */
export async function startApp(options: {
  repoRoot: string;
  projectDir: string;
  runDir: string;
  stack: LocalStack;
  signingKey: string;
  /** ADMISSION_TOKEN_KEY; a fresh one when not given (the caller then signs no admission tokens itself). */
  admissionKey?: string;
  /** A Worker entry (relative to projectDir) instead of wrangler.toml's `main`, e.g. a bench probe wrapping it. */
  entry?: string;
  /** Extra vars for the Worker (e.g. OBJECT_REQUEST_LOG: "1" to have the objects count their requests). */
  vars?: Record<string, string>;
}): Promise<BenchApp> {
  const { bundle, envFile } = await prepareWorker({
    ...options,
    keys: await tokenKeys(options.signingKey, options.admissionKey),
    envDir: options.runDir,
    bundle: path.join(options.runDir, "dist"),
  });
  return startHost(options.repoRoot, { projectDir: options.projectDir, bundle, envFile, runDir: options.runDir, workerName: WORKER_NAME });
}

/** Starts one host on free ports and waits until /api/health answers 200 (`healthPath` for a host with no routes of its own). */
export async function startHost(
  repoRoot: string,
  config: Omit<HostConfig, "port" | "inspectorPort">,
  options: { healthPath?: string } = {},
): Promise<BenchApp> {
  await mkdir(config.runDir, { recursive: true });
  const full: HostConfig = { ...config, port: await findFreePort(), inspectorPort: await findFreePort() };
  const host = path.join(config.projectDir, "bench", "lib", "miniflare-host.ts");
  const child = spawn(path.join(repoRoot, "node_modules", ".bin", "node"), ["--import", "tsx", host, JSON.stringify(full)], {
    cwd: config.projectDir,
    stdio: ["ignore", "pipe", "pipe"],
    env: hostEnv(repoRoot, path.join(config.runDir, "logs")),
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("the Worker host did not start");
  const recent: string[] = [];
  const relay = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (line.trim() === "") continue;
      process.stderr.write(`[${config.workerName}] ${line}\n`);
      recent.push(line);
    }
    recent.splice(0, Math.max(0, recent.length - RECENT_LINES));
  };
  child.stdout.on("data", relay);
  child.stderr.on("data", relay);

  const url = `http://127.0.0.1:${full.port}`;
  const app: BenchApp = {
    url,
    pid,
    inspectorPort: full.inspectorPort,
    workerName: config.workerName,
    cpuMs() {
      const byName = treeCpuByName(pid);
      return { workerd: byName.get("workerd") ?? 0, wrangler: byName.get("node") ?? 0 };
    },
    recentOutput: () => [...recent],
    stop: () => stopHost(child),
  };
  try {
    await waitForHealth(`${url}${options.healthPath ?? "/api/health"}`, child);
  } catch (error) {
    await app.stop();
    throw error;
  }
  return app;
}

async function waitForHealth(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline && !stopping()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the Worker host exited (${child.signalCode ?? `code ${child.exitCode}`}) before it was healthy`);
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    if (response) {
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer 200 within ${HEALTH_TIMEOUT_MS / 1000} s (last: ${last.slice(0, 300)})`);
}

/** Stops the host, then any of its processes (workerd) that outlived it, by pid. */
async function stopHost(child: ChildProcess): Promise<void> {
  const running = () => child.exitCode === null && child.signalCode === null;
  if (child.pid === undefined) return;
  const below = descendants(child.pid);
  if (running()) {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
    if (running()) child.kill("SIGKILL");
  }
  await sleep(500);
  for (const p of below) {
    // Gone, or its pid already belongs to something else.
    if (processStat(p.pid)?.name !== p.name) continue;
    say(`killing leftover ${p.name} (pid ${p.pid})`);
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // it exited meanwhile
    }
  }
}
