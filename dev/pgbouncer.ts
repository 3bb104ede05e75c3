/**
 * PgBouncer in front of the local Postgres, in transaction mode, as Neon's
 * pooled endpoint (`-pooler`) runs it in production: the Worker's
 * connections (one per request or queue batch, through the Neon relay) become
 * cheap client connections, and their transactions run on a few backends
 * PgBouncer keeps open, instead of each connection forking, authenticating and
 * warming a Postgres backend of its own. Debian's `pgbouncer` package,
 * installed with apt when missing.
 *
 * Clients authenticate with a cleartext password (`auth_type = plain`), as the
 * local Postgres asks them to (dev/postgres.ts) and as Neon's proxy does; the
 * admin console (database `pgbouncer`) answers SHOW STATS / POOLS to the same
 * user. Session state does not survive a transaction under this mode: our
 * queries use none (unnamed statements only, transaction-scoped advisory
 * locks), and test/dev/pgbouncer.test.ts runs the Worker's driver through it.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { ensureCommand } from "./apt.ts";
import { waitForPort } from "./redis.ts";

/** A running PgBouncer. */
export interface LocalPgBouncer {
  /** The pooled connection string: the database through PgBouncer. */
  url: string;
  /** Its admin console (SHOW STATS, SHOW POOLS...). */
  adminUrl: string;
  port: number;
  pid: number | undefined;
  /** Server connections per database and user. */
  poolSize: number;
  stop(): Promise<void>;
}

/** Server connections PgBouncer keeps per database and user: more than the consumer's 8 invocations and the Worker's concurrent requests need here. */
export const DEFAULT_POOL_SIZE = 20;

/** Debian installs it in /usr/sbin, outside a normal user's PATH. */
function pgbouncerBinary(): string {
  if (existsSync("/usr/sbin/pgbouncer")) return "/usr/sbin/pgbouncer";
  return ensureCommand("pgbouncer", "pgbouncer", "pgbouncer was not found. Install it (Debian/Ubuntu: apt-get install pgbouncer).");
}

/**
 * Starts PgBouncer on 127.0.0.1:`port` in front of the Postgres `postgresUrl`
 * names (its user and password are the ones clients use), with its files in
 * `dir`. As root it runs as the `postgres` user (PgBouncer refuses root).
 */
export async function startPgBouncer(options: { dir: string; port: number; postgresUrl: string; poolSize?: number }): Promise<LocalPgBouncer> {
  const binary = pgbouncerBinary();
  const upstream = new URL(options.postgresUrl);
  const user = decodeURIComponent(upstream.username);
  const password = decodeURIComponent(upstream.password);
  const database = upstream.pathname.slice(1);
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const quote = (value: string) => `"${value.replaceAll('"', '""')}"`;
  const config = [
    "[databases]",
    `${database} = host=${upstream.hostname} port=${upstream.port || 5432} dbname=${database}`,
    // Any other database name goes to the same-named database of that server (the browser tests' own database).
    `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${options.port}`,
    "unix_socket_dir =",
    "auth_type = plain",
    `auth_file = ${path.join(dir, "userlist.txt")}`,
    "pool_mode = transaction",
    `default_pool_size = ${poolSize}`,
    "max_client_conn = 2000",
    // node-postgres (and so the Neon driver) may send these at start-up; PgBouncer refuses unknown ones.
    "ignore_startup_parameters = extra_float_digits,options",
    `admin_users = ${user}`,
    `stats_users = ${user}`,
    `logfile = ${path.join(dir, "pgbouncer.log")}`,
    `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
    "log_connections = 0",
    "log_disconnections = 0",
    "",
  ];
  await writeFile(path.join(dir, "pgbouncer.ini"), config.join("\n"));
  await writeFile(path.join(dir, "userlist.txt"), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    // It drops to the postgres user, which must read its files and write its log.
    const ids = postgresIds();
    await chmod(dir, 0o755);
    for (const file of ["", "pgbouncer.ini", "userlist.txt"]) await chown(path.join(dir, file), ids.uid, ids.gid);
  }
  const child = spawn(binary, [...(asRoot ? ["-u", "postgres"] : []), path.join(dir, "pgbouncer.ini")], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    await exited;
  };
  // A PgBouncer must not outlive the process that started it.
  const stopOnExit = () => child.kill("SIGINT");
  process.on("exit", stopOnExit);
  void exited.then(() => process.removeListener("exit", stopOnExit));
  try {
    await waitForPort(options.port, () => (child.exitCode !== null ? `pgbouncer exited (${child.exitCode}): ${output.trim().slice(-1_000)}` : undefined));
  } catch (error) {
    await stop();
    throw error;
  }
  const pooled = new URL(options.postgresUrl);
  pooled.hostname = "127.0.0.1";
  pooled.port = String(options.port);
  const admin = new URL(pooled);
  admin.pathname = "/pgbouncer";
  return { url: pooled.toString(), adminUrl: admin.toString(), port: options.port, pid: child.pid, poolSize, stop };
}

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(spawnSync("id", [flag, "postgres"], { encoding: "utf8" }).stdout.trim());
  const uid = id("-u");
  const gid = id("-g");
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0) throw new Error("PgBouncer cannot run as root and there is no postgres user to run it as");
  return { uid, gid };
}
