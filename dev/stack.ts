/**
 * The local stack `npm run dev` runs the Worker against: real Postgres and
 * Redis (data kept under `.data/`), with PgBouncer (transaction mode, as
 * Neon's `-pooler` endpoint), the Neon WebSocket relay and the Upstash REST
 * bridge in front of them, exactly as the Worker reaches Neon and Upstash in
 * production; and stand-ins for what cannot be reached from here: a mail
 * outbox (email provider API) and Turnstile's siteverify. Migrations are
 * applied on every start (straight to Postgres, not through the pooler).
 */
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations } from "./migrate.ts";
import { startNeonRelay } from "./neon-relay.ts";
import { startPgBouncer } from "./pgbouncer.ts";
import { findFreePort } from "./ports.ts";
import { reachableFromPostgresUser, startPostgres } from "./postgres.ts";
import { startRedis } from "./redis.ts";
import { startUpstashBridge } from "./upstash-bridge.ts";
import { startMailOutbox } from "./mail-outbox.ts";
import { startTurnstileStandIn } from "./turnstile.ts";

/** The repository root, where `.data/` and `.dev.vars` live. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Where the local stack keeps its data by default (git-ignored). */
export const DEFAULT_DATA_DIR = path.join(REPO_ROOT, ".data");

/** The ports the stack prefers, so URLs stay the same from one run to the next. */
export const DEFAULT_PORTS = { postgres: 15432, relay: 15433, pgbouncer: 15434, redis: 16379, bridge: 16380, mailOutbox: 18025, turnstile: 18026 } as const;

/** The token the Upstash bridge asks for; it only guards loopback. */
export const LOCAL_BRIDGE_TOKEN = "local-dev-token";

/** The API key the mail outbox asks for; it only guards loopback. */
export const LOCAL_MAIL_API_KEY = "local-mail-key";

const DATABASE_NAME = "tickets";
const STOP_TIMEOUT_MS = 15_000;

/** How to start the stack; every field has a default. */
export interface LocalStackOptions {
  /** Where Postgres and Redis keep their data. Default: `.data/` in the repository. */
  dataDir?: string;
  /** An existing Postgres to use instead of starting one. Default: `DATABASE_URL`. */
  databaseUrl?: string;
  /** An existing Redis to use instead of starting one. Default: `REDIS_URL`. */
  redisUrl?: string;
  /** Preferred ports; a taken one falls back to a free port (and says so). */
  ports?: Partial<Record<keyof typeof DEFAULT_PORTS, number>>;
  /** Receives one line per notable step. Default: stderr. */
  log?: (line: string) => void;
}

/** A running stack: where each piece listens, and how to stop what was started. */
export interface LocalStack {
  /** Postgres itself: migrations, seeding, and whatever watches it. */
  databaseUrl: string;
  /**
   * What the Worker's DATABASE_URL names: PgBouncer in transaction mode in
   * front of the stack's own Postgres, as production names Neon's `-pooler`
   * endpoint; `databaseUrl` itself when DATABASE_URL pointed elsewhere.
   */
  pooledDatabaseUrl: string;
  /** The PgBouncer the stack started (its admin console, process and pool size). */
  pgbouncer: { adminUrl: string; pid: number | undefined; poolSize: number } | undefined;
  /** host:port of the Neon WebSocket relay (the Worker's `NEON_WS_PROXY`). */
  neonWsProxy: string;
  relayPort: number;
  redisUrl: string;
  bridgeUrl: string;
  bridgeToken: string;
  /** The mail outbox: the Worker's `MAIL_API_URL`, and the page listing what it sent. */
  mailOutboxUrl: string;
  mailApiKey: string;
  /** The Turnstile stand-in's siteverify endpoint (the Worker's `TURNSTILE_VERIFY_URL`). */
  turnstileVerifyUrl: string;
  /** Which servers this stack started (false: it reused DATABASE_URL / REDIS_URL). */
  started: { postgres: boolean; redis: boolean };
  /** The process id of the Postgres it started (undefined when it reused DATABASE_URL). */
  postgresPid: number | undefined;
  /** Stops everything this call started, newest first. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts Postgres (unless a database URL is given), Redis (unless a Redis URL
 * is given), the Neon relay, the Upstash bridge, the mail outbox and the
 * Turnstile stand-in, and applies migrations.
 * If any step fails, whatever already started is stopped before the error is
 * rethrown.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const dataDir = path.resolve(options.dataDir ?? DEFAULT_DATA_DIR);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const ports = { ...DEFAULT_PORTS, ...options.ports };
  const existingDatabaseUrl = options.databaseUrl ?? (process.env.DATABASE_URL || undefined);
  const existingRedisUrl = options.redisUrl ?? (process.env.REDIS_URL || undefined);
  const stops: { name: string; stop: () => Promise<void> }[] = [];
  const stopAll = async () => {
    for (const { name, stop } of stops.splice(0).reverse()) {
      await withTimeout(stop(), STOP_TIMEOUT_MS).catch((error: unknown) => log(`could not stop ${name}: ${String(error)}`));
    }
  };

  try {
    // Postgres runs as the `postgres` user when we are root: it must be able to enter the data folder.
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o755);

    let databaseUrl: string;
    let postgresPid: number | undefined;
    /** Next to Postgres' data: where the postgres user (PgBouncer runs as it when we are root) can reach it. */
    let pgbouncerDir: string | undefined;
    if (existingDatabaseUrl) {
      databaseUrl = existingDatabaseUrl;
      log(`Postgres: using DATABASE_URL (${redact(databaseUrl)})`);
    } else {
      const postgresDir = await postgresDataDir(dataDir, log);
      pgbouncerDir = path.join(path.dirname(postgresDir), "pgbouncer");
      await refuseRunningPostgres(postgresDir);
      const port = await pickPort("Postgres", ports.postgres, log);
      const postgresLog = new RecentLines(30);
      const postgres = await startPostgres({ dataDir: postgresDir, port, database: DATABASE_NAME, onLog: (message) => postgresLog.add(message) }).catch(
        (error: unknown) => {
          throw new Error(`Postgres did not start (${error instanceof Error ? error.message : "it exited"}). Its last output:\n${postgresLog.text()}`);
        },
      );
      stops.push({ name: "Postgres", stop: postgres.stop });
      databaseUrl = postgres.url;
      postgresPid = postgres.pid;
      log(`Postgres: started on 127.0.0.1:${port}, data in ${postgresDir.startsWith(`${REPO_ROOT}${path.sep}`) ? path.relative(REPO_ROOT, postgresDir) : postgresDir}`);
    }
    await applyMigrations(databaseUrl);

    let pgbouncer: LocalStack["pgbouncer"];
    let pooledDatabaseUrl = databaseUrl;
    if (pgbouncerDir) {
      const port = await pickPort("PgBouncer", ports.pgbouncer, log);
      const bouncer = await startPgBouncer({ dir: pgbouncerDir, port, postgresUrl: databaseUrl });
      stops.push({ name: "PgBouncer", stop: bouncer.stop });
      pooledDatabaseUrl = bouncer.url;
      pgbouncer = { adminUrl: bouncer.adminUrl, pid: bouncer.pid, poolSize: bouncer.poolSize };
      log(`PgBouncer: started on 127.0.0.1:${port} (transaction mode, ${bouncer.poolSize} server connections), the Worker's DATABASE_URL`);
    }

    let redisUrl: string;
    if (existingRedisUrl) {
      redisUrl = existingRedisUrl;
      log(`Redis: using REDIS_URL (${redact(redisUrl)})`);
    } else {
      const port = await pickPort("Redis", ports.redis, log);
      const redis = await startRedis({ dataDir: path.join(dataDir, "redis"), port, persist: true });
      stops.push({ name: "Redis", stop: redis.stop });
      redisUrl = redis.url;
      log(`Redis: started on 127.0.0.1:${port}`);
    }

    const databaseHost = new URL(databaseUrl).hostname.replace(/^\[(.*)\]$/, "$1");
    const relay = await startNeonRelay({
      port: await pickPort("Neon relay", ports.relay, log),
      allowedHosts: ["127.0.0.1", "localhost", databaseHost],
    });
    stops.push({ name: "Neon relay", stop: relay.close });

    const bridge = await startUpstashBridge({ port: await pickPort("Upstash bridge", ports.bridge, log), redisUrl, token: LOCAL_BRIDGE_TOKEN });
    stops.push({ name: "Upstash bridge", stop: bridge.close });

    const outbox = await startMailOutbox({ port: await pickPort("Mail outbox", ports.mailOutbox, log), apiKey: LOCAL_MAIL_API_KEY });
    stops.push({ name: "Mail outbox", stop: outbox.close });

    const turnstile = await startTurnstileStandIn({ port: await pickPort("Turnstile stand-in", ports.turnstile, log), hostname: "localhost" });
    stops.push({ name: "Turnstile stand-in", stop: turnstile.close });

    return {
      databaseUrl,
      pooledDatabaseUrl,
      pgbouncer,
      neonWsProxy: `127.0.0.1:${relay.port}`,
      relayPort: relay.port,
      redisUrl,
      bridgeUrl: bridge.url,
      bridgeToken: LOCAL_BRIDGE_TOKEN,
      mailOutboxUrl: outbox.url,
      mailApiKey: LOCAL_MAIL_API_KEY,
      turnstileVerifyUrl: turnstile.verifyUrl,
      started: { postgres: !existingDatabaseUrl, redis: !existingRedisUrl },
      postgresPid,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The preferred port when it is free, otherwise a free one, said out loud. */
async function pickPort(service: string, preferred: number, log: (line: string) => void): Promise<number> {
  const port = await findFreePort(preferred);
  if (port !== preferred) log(`${service}: port ${preferred} is taken, using ${port} instead`);
  return port;
}

/**
 * A Postgres left running on this data directory (an earlier run that was
 * killed, or `npm run dev` in another terminal) would make ours fail with a
 * lock-file error; say what to do instead.
 */
async function refuseRunningPostgres(postgresDir: string): Promise<void> {
  const pid = await postmasterPid(postgresDir);
  if (pid === undefined || !isAlive(pid)) return;
  throw new Error(
    `A Postgres (pid ${pid}) is already running on ${postgresDir}: is \`npm run dev\` running in another terminal? ` +
      `Stop that one, or if it is left over from a killed run, stop it with \`kill -INT ${pid}\`.`,
  );
}

/**
 * Where Postgres keeps its data: `<dataDir>/postgres`, unless we are root and
 * the `postgres` user (which Postgres runs as) cannot enter the checkout, as in
 * a home directory (0700). Then a folder of its own under /var/tmp, the same
 * one for the same checkout on every run, said out loud.
 */
async function postgresDataDir(dataDir: string, log: (line: string) => void): Promise<string> {
  if (await reachableFromPostgresUser(dataDir)) return path.join(dataDir, "postgres");
  const outside = path.join("/var/tmp", `edge-tickets-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
  await mkdir(outside, { recursive: true });
  await chmod(outside, 0o755);
  log(`Postgres: ${dataDir} is closed to the postgres user (Postgres cannot run as root), so its data lives in ${outside}/postgres`);
  return path.join(outside, "postgres");
}

async function postmasterPid(postgresDir: string): Promise<number | undefined> {
  const contents = await readFile(path.join(postgresDir, "postmaster.pid"), "utf8").catch(() => undefined);
  const pid = Number(contents?.split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True while a process with this pid exists (EPERM: it exists but belongs to another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}

function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** A URL with its password hidden, fit for a log line. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** Keeps the last few lines of a server's output, to explain a failed start. */
class RecentLines {
  private readonly lines: string[] = [];

  constructor(private readonly limit: number) {}

  add(message: unknown): void {
    this.lines.push(...String(message).split("\n").filter((line) => line.trim() !== ""));
    this.lines.splice(0, Math.max(0, this.lines.length - this.limit));
  }

  text(): string {
    return this.lines.join("\n");
  }
}
