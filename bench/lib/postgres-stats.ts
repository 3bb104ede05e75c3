/**
 * What Postgres and PgBouncer say about a run, so that two runs can be told
 * apart from their output alone: the server's settings, its counters
 * (sessions started, commits, WAL, checkpoints, buffers), PgBouncer's pools
 * and counters, where Postgres' processes spent their CPU (backends or
 * background work), and a plan of one statement with per-node timing.
 */
import { readFileSync } from "node:fs";
import type { SQL } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import type { Observer } from "./observer.ts";
import { descendants, listProcesses, processStat } from "./processes.ts";

/** The settings that change what a write costs. */
const SETTINGS = [
  "server_version",
  "max_connections",
  "shared_buffers",
  "fsync",
  "synchronous_commit",
  "full_page_writes",
  "wal_level",
  "wal_buffers",
  "checkpoint_timeout",
  "max_wal_size",
  "work_mem",
  "jit",
  "huge_pages",
  "password_encryption",
];

/** Postgres' settings as `name: value unit`. */
export async function postgresSettings(observer: Observer): Promise<Record<string, string>> {
  const result = await observer.execute<{ name: string; setting: string; unit: string | null }>(
    sql`select name, setting, unit from pg_settings where name in (select jsonb_array_elements_text(${JSON.stringify(SETTINGS)}::jsonb)) order by name`,
  );
  return Object.fromEntries(result.rows.map((row) => [row.name, row.unit ? `${row.setting} ${row.unit}` : row.setting]));
}

/**
 * Postgres' counters for the database so far. Backends report theirs at most
 * once a second (and within a second of going idle), so read them a little
 * after a run ends (`COUNTERS_SETTLE_MS`); WAL is read from its position,
 * which is exact at any time.
 */
export interface PostgresCounters {
  sessions: number;
  commits: number;
  rowsInserted: number;
  blocksRead: number;
  blocksHit: number;
  walRecords: number;
  walBytes: number;
  walFullPages: number;
  checkpoints: number;
  buffersWrittenByCheckpoints: number;
}

/** How long after a run its backends' counters are all reported. */
export const COUNTERS_SETTLE_MS = 1_500;

export async function postgresCounters(observer: Observer): Promise<PostgresCounters> {
  const result = await observer.execute<{ [K in keyof PostgresCounters]: string }>(sql`
    select d.sessions::text as "sessions", d.xact_commit::text as "commits", d.tup_inserted::text as "rowsInserted",
           d.blks_read::text as "blocksRead", d.blks_hit::text as "blocksHit",
           w.wal_records::text as "walRecords", pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as "walBytes", w.wal_fpi::text as "walFullPages",
           (c.num_timed + c.num_requested)::text as "checkpoints", c.buffers_written::text as "buffersWrittenByCheckpoints"
    from pg_stat_database d, pg_stat_wal w, pg_stat_checkpointer c
    where d.datname = current_database()`);
  const row = result.rows[0];
  if (!row) throw new Error("no statistics for the current database");
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [key, Number(value)])) as unknown as PostgresCounters;
}

/** What changed between two readings, per `per` items (sales, connections...) where it says so. */
export function countersDelta(before: PostgresCounters, after: PostgresCounters, per: number) {
  const delta = (key: keyof PostgresCounters) => after[key] - before[key];
  return {
    sessions_started: delta("sessions"),
    commits: delta("commits"),
    checkpoints: delta("checkpoints"),
    buffers_written_by_checkpoints: delta("buffersWrittenByCheckpoints"),
    wal_bytes_per_item: Math.round(delta("walBytes") / Math.max(per, 1)),
    wal_full_pages: delta("walFullPages"),
    blocks_read: delta("blocksRead"),
    cache_hit_pct: Math.round((1000 * delta("blocksHit")) / Math.max(delta("blocksHit") + delta("blocksRead"), 1)) / 10,
    rows_inserted_per_item: Math.round((10 * delta("rowsInserted")) / Math.max(per, 1)) / 10,
  };
}

/** PgBouncer's pools and counters, from its admin console. */
export interface PoolerState {
  poolMode: string;
  /** Server connections open (active, idle, used, being tested or logging in). */
  serverConnections: number;
  clientsWaiting: number;
  transactions: number;
  queries: number;
  /** Microseconds clients spent waiting for a server connection, in total. */
  waitUs: number;
}

export async function poolerState(adminUrl: string, database: string): Promise<PoolerState> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // The admin console speaks the simple protocol only: queries without parameters.
    const pools = (await client.query<Record<string, string>>("SHOW POOLS")).rows.filter((row) => row.database === database);
    const stats = (await client.query<Record<string, string>>("SHOW STATS")).rows.find((row) => row.database === database);
    // A pool exists only once a client connected to it: the mode comes from the configuration.
    const config = (await client.query<Record<string, string>>("SHOW CONFIG")).rows.find((row) => row.key === "pool_mode");
    const sum = (key: string) => pools.reduce((total, row) => total + Number(row[key] ?? 0), 0);
    return {
      poolMode: pools[0]?.pool_mode ?? config?.value ?? "?",
      serverConnections: sum("sv_active") + sum("sv_idle") + sum("sv_used") + sum("sv_tested") + sum("sv_login"),
      clientsWaiting: sum("cl_waiting"),
      transactions: Number(stats?.total_xact_count ?? 0),
      queries: Number(stats?.total_query_count ?? 0),
      waitUs: Number(stats?.total_wait_time ?? 0),
    };
  } finally {
    await client.end();
  }
}

/**
 * CPU milliseconds so far of Postgres' processes by role: `backends` (those
 * serving connections, live or exited), `background` (checkpointer, WAL and
 * background writers, autovacuum, ...), and the postmaster itself.
 */
export function postgresCpuByRole(postmasterPid: number): { postgres_backends: number; postgres_background: number; postgres_postmaster: number } {
  const postmaster = processStat(postmasterPid);
  let backends = postmaster?.reapedChildrenCpuMs ?? 0;
  let background = 0;
  for (const child of descendants(postmasterPid, listProcesses())) {
    const command = readCommand(child.pid);
    const cpu = child.cpuMs + child.reapedChildrenCpuMs;
    if (/^postgres: (checkpointer|background writer|walwriter|autovacuum|logical replication|io worker|archiver|walsummarizer|startup)/.test(command)) background += cpu;
    else backends += cpu;
  }
  return { postgres_backends: backends, postgres_background: background, postgres_postmaster: postmaster?.cpuMs ?? 0 };
}

function readCommand(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

const dialect = new PgDialect();

/** A node of an EXPLAIN (FORMAT JSON) plan, with what this module reads of it. */
interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "CTE Name"?: string;
  "Function Name"?: string;
  "Actual Total Time"?: number;
  "Actual Loops"?: number;
  Plans?: PlanNode[];
}

/** One statement's plan timing: planning, execution, the costliest nodes (own time) and the triggers (foreign keys). */
export interface StatementProfile {
  planning_ms: number;
  execution_ms: number;
  nodes: { node: string; own_ms: number }[];
  triggers: { trigger: string; calls: number; ms: number }[];
}

/**
 * Runs `statement` under EXPLAIN (ANALYZE, BUFFERS, WAL) in a transaction that
 * is rolled back, on a connection of its own straight to Postgres, and says
 * where its time went.
 */
export async function profileStatement(databaseUrl: string, statement: SQL): Promise<StatementProfile> {
  const query = dialect.sqlToQuery(statement);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("begin");
    const result = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode; "Planning Time": number; "Execution Time": number; Triggers?: { "Trigger Name": string; Relation: string; Time: number; Calls: number }[] }] }>(
      `explain (analyze, buffers, wal, format json) ${query.sql}`,
      query.params,
    );
    await client.query("rollback");
    const [explained] = result.rows[0]?.["QUERY PLAN"] ?? [];
    if (!explained) throw new Error("EXPLAIN returned no plan");
    const nodes: { node: string; own_ms: number }[] = [];
    const visit = (node: PlanNode) => {
      const total = (node["Actual Total Time"] ?? 0) * (node["Actual Loops"] ?? 1);
      const children = (node.Plans ?? []).reduce((sum, child) => sum + (child["Actual Total Time"] ?? 0) * (child["Actual Loops"] ?? 1), 0);
      const name = [node["Node Type"], node["Relation Name"] ?? node["CTE Name"] ?? node["Function Name"]].filter(Boolean).join(" ");
      nodes.push({ node: name, own_ms: Math.round(1000 * Math.max(0, total - children)) / 1000 });
      for (const child of node.Plans ?? []) visit(child);
    };
    visit(explained.Plan);
    nodes.sort((a, b) => b.own_ms - a.own_ms);
    return {
      planning_ms: explained["Planning Time"],
      execution_ms: explained["Execution Time"],
      nodes: nodes.slice(0, 8),
      triggers: (explained.Triggers ?? []).map((t) => ({ trigger: `${t["Trigger Name"]} on ${t.Relation}`, calls: t.Calls, ms: Math.round(1000 * t.Time) / 1000 })),
    };
  } finally {
    await client.query("rollback").catch(() => undefined);
    await client.end();
  }
}
