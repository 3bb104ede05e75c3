/**
 * The browser project's global setup: the Worker with its static assets, run
 * once for the project the way the benches run it (bench/lib/miniflare-host.ts:
 * the production bundle of `wrangler deploy --dry-run` under Miniflare, with
 * wrangler.toml's bindings and no `wrangler dev` proxy in front), against the
 * local stack test/setup/global.ts started (listed before this file). It also
 * creates one organizer, whose API key the tests use to set up venues and
 * events through the admin API.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { buildBundle } from "../../../bench/lib/app.ts";
import type { HostConfig } from "../../../bench/lib/miniflare-host.ts";
import { descendants, processStat } from "../../../bench/lib/processes.ts";
import { findFreePort } from "../../../dev/ports.ts";
import pg from "pg";
import { applyMigrations } from "../../../dev/migrate.ts";
import { openDb } from "../../../dev/seed.ts";
import { TURNSTILE_TEST_SECRETS, TURNSTILE_TEST_SITE_KEY } from "../../../dev/turnstile.ts";
import { widgetScriptUrl } from "../../../dev/turnstile-widget.ts";
import { createOrganizer } from "../../../workers/organizers/api-keys.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Where the Worker and its pages answer, e.g. http://127.0.0.1:23456. */
    appUrl: string;
    /** An organizer's API key for the admin API. */
    organizerApiKey: string;
    /** The Worker's own database (direct, not pooled), for tests comparing what it stored. */
    browserPostgresUrl: string;
  }
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 10_000;
/** The operator token of the Worker under test (no browser test uses it yet). */
const OPS_TOKEN = "browser-test-ops-token";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stack = project.getProvidedContext();
  const runDir = await mkdtemp(path.join(tmpdir(), "edge-tickets-browser-"));
  const port = await findFreePort();
  const appUrl = `http://127.0.0.1:${port}`;
  // A database of the browser tests' own on the run's Postgres: the pages list what is in it (the home
  // page shows the next 500 events), so the events the workers tests leave behind must not crowd it.
  const database = `tickets_browser_${crypto.randomUUID().replaceAll("-", "")}`;
  const inDatabase = (url: string) => Object.assign(new URL(url), { pathname: `/${database}` }).toString();
  await onServer(stack.postgresUrl, `create database "${database}"`);
  await applyMigrations(inDatabase(stack.postgresUrl));
  const vars = {
    // Through PgBouncer in transaction mode, as production reaches Neon's pooled endpoint.
    DATABASE_URL: inDatabase(stack.pooledPostgresUrl),
    NEON_WS_PROXY: `127.0.0.1:${stack.relayPort}`,
    UPSTASH_REDIS_REST_URL: stack.bridgeUrl,
    UPSTASH_REDIS_REST_TOKEN: stack.bridgeToken,
    TOKEN_SIGNING_KEY: stack.tokenSigningKey,
    ADMISSION_TOKEN_KEY: stack.admissionTokenKey,
    MAIL_API_URL: stack.mailOutboxUrl,
    MAIL_API_KEY: stack.mailApiKey,
    MAIL_FROM: "Edge Tickets <no-reply@edge-tickets.test>",
    TURNSTILE_SITE_KEY: TURNSTILE_TEST_SITE_KEY,
    TURNSTILE_SECRET_KEY: TURNSTILE_TEST_SECRETS.passes,
    TURNSTILE_VERIFY_URL: stack.turnstileVerifyUrl,
    TURNSTILE_SCRIPT_URL: widgetScriptUrl(stack.turnstileVerifyUrl),
    STRIPE_SECRET_KEY: "sk_test_local",
    STRIPE_WEBHOOK_SECRET: stack.stripeWebhookSecret,
    STRIPE_API_BASE: stack.stripeApiBase,
    STRIPE_PUBLISHABLE_KEY: "pk_test_local",
    STRIPE_JS_URL: `${stack.stripeApiBase}/v3/`,
    OPS_TOKEN,
    PUBLIC_ORIGIN: appUrl,
    // As the local stack: organizer webhooks may reach a receiver on this machine (the console's webhooks test runs one).
    WEBHOOKS_ALLOW_LOCAL: "1",
  };
  const envFile = path.join(runDir, "worker.env");
  // Single quotes: the host takes the value between them literally (the signing key is JSON).
  await writeFile(envFile, Object.entries(vars).map(([name, value]) => `${name}='${value}'\n`).join(""), { mode: 0o600 });

  const host = await startHost({ envFile, port, runDir });
  try {
    await waitForHealth(`${appUrl}/api/health`, host);
    const { db, close } = await openDb(inDatabase(stack.postgresUrl), `127.0.0.1:${stack.relayPort}`);
    try {
      const { apiKey } = await createOrganizer(db, `Browser tests ${crypto.randomUUID().slice(0, 8)}`);
      project.provide("organizerApiKey", apiKey);
    } finally {
      await close();
    }
  } catch (error) {
    await stopHost(host.child);
    await rm(runDir, { recursive: true, force: true });
    await onServer(stack.postgresUrl, `drop database if exists "${database}" with (force)`);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nThe Worker's last output:\n${host.recent.join("\n")}`);
  }
  project.provide("appUrl", appUrl);
  project.provide("browserPostgresUrl", inDatabase(stack.postgresUrl));
  return async () => {
    await stopHost(host.child);
    await rm(runDir, { recursive: true, force: true });
    await onServer(stack.postgresUrl, `drop database if exists "${database}" with (force)`);
  };
}

/** Runs one statement on the server of `url`, connected to its `postgres` database. */
async function onServer(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: Object.assign(new URL(url), { pathname: "/postgres" }).toString() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Lines of the host's output kept to explain a failure. */
const RECENT_LINES = 80;

interface Host {
  child: ChildProcess;
  recent: string[];
}

/** Builds the production bundle and runs it with bench/lib/miniflare-host.ts on Node 22 (the `node` devDependency; wrangler needs it). */
async function startHost(options: { envFile: string; port: number; runDir: string }): Promise<Host> {
  const bin = path.join(REPO_ROOT, "node_modules", ".bin");
  const script = path.join(REPO_ROOT, "bench", "lib", "miniflare-host.ts");
  const bundle = path.join(options.runDir, "dist");
  await buildBundle(REPO_ROOT, REPO_ROOT, bundle);
  const config: HostConfig = {
    projectDir: REPO_ROOT,
    bundle,
    envFile: options.envFile,
    port: options.port,
    inspectorPort: await findFreePort(),
    runDir: options.runDir,
    workerName: "edge-tickets",
  };
  const child = spawn(path.join(bin, "node"), ["--import", "tsx", script, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}`,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      WRANGLER_LOG_PATH: path.join(options.runDir, "logs"),
    },
  });
  const recent: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) if (line.trim() !== "") recent.push(line);
    recent.splice(0, Math.max(0, recent.length - RECENT_LINES));
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return { child, recent };
}

async function waitForHealth(url: string, host: Host): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "no answer";
  while (Date.now() < deadline) {
    const { child } = host;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the Worker host exited (${child.signalCode ?? `code ${child.exitCode}`}) before it was healthy`);
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    if (response) {
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS / 1000} s (last: ${last.slice(0, 300)})`);
}

/** Stops the host (it disposes Miniflare on SIGTERM), then any process of its tree that outlived it, by pid. */
async function stopHost(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  const below = descendants(child.pid);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  for (const leftover of below) {
    // Gone, or its pid now belongs to something else.
    if (processStat(leftover.pid)?.name !== leftover.name) continue;
    try {
      process.kill(leftover.pid, "SIGKILL");
    } catch {
      // it exited meanwhile
    }
  }
}
