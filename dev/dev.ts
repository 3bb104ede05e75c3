/**
 * `npm run dev`: starts the local stack (Postgres, PgBouncer, Redis, Neon relay,
 * Upstash bridge, mail outbox, Turnstile stand-in), seeds the demo data, writes
 * `.dev.vars` and runs `wrangler dev` against it. Ctrl-C (or SIGTERM) stops
 * wrangler and everything started here.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { startCronTicker, type CronTicker } from "./cron-ticker.ts";
import { findFreePort } from "./ports.ts";
import { descendantsOf, listProcesses } from "./processes.ts";
import { DEMO_ORGANIZER, describeSeed, openDb, seedDemoData } from "./seed.ts";
import type { SeedResult } from "./seed.ts";
import { generateAdmissionKey, generateSigningKey } from "./signing-key.ts";
import { startStripeGateway, type StripeGateway } from "./stripe-gateway/index.ts";
import type { LocalStack } from "./stack.ts";
import { dotenvLines, stackVars } from "./worker-vars.ts";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const HEALTH_TIMEOUT_MS = 60_000;
const WRANGLER_STOP_TIMEOUT_MS = 10_000;

const startedAt = Date.now();
const say = (line: string) => process.stdout.write(`[dev] ${line}\n`);

let stack: Promise<LocalStack> | undefined;
let wrangler: ChildProcess | undefined;
let gateway: StripeGateway | undefined;
let cron: CronTicker | undefined;
/** wrangler.toml's cron trigger, which production runs every minute. */
const CRON = "* * * * *";
const STRIPE_GATEWAY_PORT = 12111;
const LOCAL_STRIPE_WEBHOOK_SECRET = "whsec_local_dev";
let stopping: Promise<void> | undefined;

async function main(): Promise<void> {
  const stackModule = await import("./stack.ts");
  for (const signal of SIGNALS) process.on(signal, () => stopEverything(`${signal} received`, 0));

  stack = stackModule.startLocalStack({ log: say });
  const local = await stack;
  if (stopping) return;

  // Without demo data the app is still worth running: say why, and go on.
  const seed = await seedLocalStack(local, path.join(stackModule.DEFAULT_DATA_DIR, "demo-api-key")).catch((error: unknown) => {
    say(`seeding the demo data failed, continuing without it: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  });
  if (seed) say(describeSeed(seed));
  const tokenKeys = {
    TOKEN_SIGNING_KEY: await localKey(path.join(stackModule.DEFAULT_DATA_DIR, "token-signing-key"), () => generateSigningKey("local-dev")),
    ADMISSION_TOKEN_KEY: await localKey(path.join(stackModule.DEFAULT_DATA_DIR, "admission-token-key"), () => generateAdmissionKey("local-dev")),
  };
  const port = await appPort();
  const appUrl = `http://127.0.0.1:${port}`;
  // The local payment gateway (Stripe's API for the calls we use), posting signed webhooks to the app.
  gateway = await startStripeGateway({ port: await findFreePort(STRIPE_GATEWAY_PORT), webhookUrl: `${appUrl}/webhooks/stripe`, webhookSecret: LOCAL_STRIPE_WEBHOOK_SECRET });
  await writeDevVars(path.join(stackModule.REPO_ROOT, ".dev.vars"), local, tokenKeys, gateway.url, appUrl);
  if (stopping) return;

  const bin = path.join(stackModule.REPO_ROOT, "node_modules", ".bin");
  wrangler = spawn(path.join(bin, "wrangler"), ["dev", "--ip", "127.0.0.1", "--port", String(port)], {
    cwd: stackModule.REPO_ROOT,
    stdio: "inherit",
    env: {
      ...process.env,
      // wrangler 4 needs Node >= 22.12: the `node` devDependency provides it.
      PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}`,
      WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? "false",
      CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
    },
  });
  wrangler.once("exit", (code, signal) => stopEverything(`wrangler exited (${signal ?? `code ${code}`})`, code ?? 1));

  const healthy = await waitForHealth(`${appUrl}/api/health`, wrangler);
  if (stopping) return;
  if (healthy) {
    // wrangler dev never fires the cron by itself: run it every minute, as production does.
    cron = startCronTicker({ appUrl, cron: CRON, log: say });
    printBanner(appUrl, local, seed);
  }
  else say(`/api/health did not answer 200 within ${HEALTH_TIMEOUT_MS / 1000} s; see wrangler's output above.`);
}

async function seedLocalStack(local: LocalStack, apiKeyFile: string): Promise<SeedResult> {
  const { db, close } = await openDb(local.databaseUrl, local.neonWsProxy);
  try {
    return await seedDemoData(db, { apiKeyFile });
  } finally {
    await close();
  }
}

/** A local token key (TOKEN_SIGNING_KEY, ADMISSION_TOKEN_KEY), kept across runs so sessions, admissions and tickets stay valid after a restart. */
async function localKey(file: string, generate: () => Promise<string>): Promise<string> {
  const saved = (await readFile(file, "utf8").catch(() => "")).trim();
  if (saved) return saved;
  const key = await generate();
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/** wrangler reads the Worker's secrets from `.dev.vars`; these point it at the local stack. */
async function writeDevVars(
  file: string,
  local: LocalStack,
  tokenKeys: { TOKEN_SIGNING_KEY: string; ADMISSION_TOKEN_KEY: string },
  stripeApiBase: string,
  appUrl: string,
): Promise<void> {
  const vars = {
    ...stackVars(local),
    ...tokenKeys,
    STRIPE_SECRET_KEY: "sk_test_local",
    STRIPE_WEBHOOK_SECRET: LOCAL_STRIPE_WEBHOOK_SECRET,
    STRIPE_API_BASE: stripeApiBase,
    STRIPE_PUBLISHABLE_KEY: "pk_test_local",
    STRIPE_JS_URL: `${stripeApiBase}/v3/`,
    OPS_TOKEN: "local-ops-token",
    // Links in emails point at this server (its port may not be wrangler.toml's default).
    PUBLIC_ORIGIN: appUrl,
    // Organizer webhooks may go to receivers on this machine (http, loopback).
    WEBHOOKS_ALLOW_LOCAL: "1",
  };
  const lines = ["# Written by `npm run dev` for the local stack; rewritten on every run.", ...dotenvLines(vars)];
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
}

/** PORT, or 8787; a free port when that one is taken. */
async function appPort(): Promise<number> {
  const preferred = Number(process.env.PORT || 8787);
  if (!Number.isInteger(preferred) || preferred < 1 || preferred > 65_535) throw new Error(`PORT=${process.env.PORT} is not a port number`);
  const port = await findFreePort(preferred);
  if (port !== preferred) say(`app: port ${preferred} is taken, using ${port} instead`);
  return port;
}

/** Polls /api/health until it answers 200; false on timeout or when wrangler is gone. */
async function waitForHealth(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null && !stopping) {
    const status = await fetch(url, { signal: AbortSignal.timeout(3_000) }).then(
      async (response) => (await response.arrayBuffer(), response.status),
      () => 0,
    );
    if (status === 200) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

function printBanner(appUrl: string, local: LocalStack, seed: SeedResult | undefined): void {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  const redis = `${local.redisUrl} (Upstash REST bridge ${local.bridgeUrl}, token ${local.bridgeToken})`;
  const lines = [
    "",
    `Edge Tickets is running (healthy after ${seconds} s)`,
    `  App           ${appUrl}/`,
    `  Health        ${appUrl}/api/health`,
    `  Events        ${appUrl}/api/events`,
    `  Admin docs    ${appUrl}/admin/docs`,
    `  Postgres      ${local.databaseUrl}${local.pgbouncer ? ` (the Worker goes through PgBouncer: ${local.pooledDatabaseUrl})` : ""}`,
    `  Redis         ${redis}`,
    `  Mail outbox   ${local.mailOutboxUrl}/  (every email the app sends, sign-in codes included)`,
    `  Turnstile     ${local.turnstileVerifyUrl}  (stand-in; Cloudflare's always-pass test keys)`,
    `  Cron          "${CRON}" at the start of every minute, as production runs it (${appUrl}/cdn-cgi/local/scheduled)`,
    `  Payments      ${gateway?.url ?? "-"}  (Stripe-compatible gateway; test cards pm_card_visa, pm_card_chargeDeclined)`,
    ...(seed
      ? [`  Demo API key  ${seed.apiKey}  (${DEMO_ORGANIZER})`, "", `  curl -H "Authorization: Bearer ${seed.apiKey}" ${appUrl}/admin/events`]
      : ["  Demo data     none (seeding failed, see above); create an organizer with npm run organizer:create"]),
    "",
    "Press Ctrl-C to stop everything.",
    "",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * Stops wrangler, then the stack, then exits. Runs once: a Ctrl-C in a terminal
 * reaches this process several times (from the terminal, npm and tsx).
 */
function stopEverything(reason: string, exitCode: number): void {
  stopping ??= (async () => {
    say(`${reason}: stopping...`);
    cron?.stop();
    if (wrangler) await stopWrangler(wrangler);
    await gateway?.close();
    const local = await stack?.catch(() => undefined);
    await local?.stop();
    say("stopped");
    process.exit(exitCode);
  })();
}

/**
 * Asks wrangler to stop, then makes sure nothing it started (workerd,
 * esbuild) outlives it: survivors that still run the same command are killed.
 */
async function stopWrangler(child: ChildProcess): Promise<void> {
  const running = () => child.exitCode === null && child.signalCode === null;
  if (!running() || child.pid === undefined) return;
  const descendants = descendantsOf(child.pid, listProcesses());
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timeout = new Promise((resolve) => setTimeout(resolve, WRANGLER_STOP_TIMEOUT_MS).unref());
  await Promise.race([exited, timeout]);
  if (running()) child.kill("SIGKILL");
  // Its helpers (esbuild's service) notice on their own, a moment later.
  let survivors = descendants;
  for (const deadline = Date.now() + 1_000; survivors.length > 0 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const current = new Map(listProcesses().map((p) => [p.pid, p.command]));
    survivors = survivors.filter(({ pid, command }) => current.get(pid) === command);
  }
  for (const { pid, command } of survivors) {
    say(`killing leftover ${command.split(" ")[0]} (pid ${pid})`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // it exited meanwhile
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[dev] ${error instanceof Error ? error.message : String(error)}\n`);
  stopEverything("start-up failed", 1);
});
