/**
 * The SQLite schemas of the waiting room's objects, as numbered migrations
 * (see ../lib/schema-migrations.ts).
 *
 * `WaitingRoom`: its settings (`config`, JSON), the admission state (`state`:
 * threshold, counters, what the inventory last said), the lobby shards that
 * exist (`shards`), admissions granted but not yet recorded by their shard
 * (`unrecorded`, a JSON list of accounts per shard), the last document it published (`published`), and, when
 * counting is on, its requests and tick times.
 *
 * `LobbyShard`: the room's settings as last pushed (`settings`), whether the
 * line is sold out right now (`status`), and one row per fan in this shard's
 * part of the line (`entrants`, in key order), with an index of those not yet admitted, and
 * the organizer's decisions on flagged accounts (`decisions`).
 */
import { REQUEST_LOG_TABLE } from "../lib/request-log";
import type { Migration } from "../lib/schema-migrations";

/** Append a migration to change the schema; never edit one that has shipped. */
export const WAITING_ROOM_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "settings, admission state, entrants, key quantiles",
    statements: [
      `CREATE TABLE IF NOT EXISTS config (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS state (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         threshold INTEGER NOT NULL DEFAULT -1,
         admitted INTEGER NOT NULL DEFAULT 0,
         carry REAL NOT NULL DEFAULT 0,
         last_tick INTEGER NOT NULL DEFAULT 0,
         late_seq INTEGER NOT NULL DEFAULT 0,
         flagged_seq INTEGER NOT NULL DEFAULT 0,
         sold_out INTEGER NOT NULL DEFAULT 0,
         available INTEGER NOT NULL DEFAULT -1,
         held INTEGER NOT NULL DEFAULT 0,
         rate_per_s REAL NOT NULL,
         paused INTEGER NOT NULL DEFAULT 0)`,
      `CREATE TABLE IF NOT EXISTS entrants (
         account_id TEXT PRIMARY KEY,
         order_key INTEGER NOT NULL UNIQUE,
         joined_at INTEGER NOT NULL,
         flagged TEXT,
         admission_id TEXT,
         admission_expires_at INTEGER)`,
      `CREATE TABLE IF NOT EXISTS quantiles (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL, at INTEGER NOT NULL, entrants INTEGER NOT NULL)`,
    ],
  },
  {
    version: 2,
    description: "entrants move to lobby shards: the room keeps its shards, pending admissions, the published document, request and tick logs",
    statements: [
      `DROP TABLE IF EXISTS entrants`,
      `DROP TABLE IF EXISTS quantiles`,
      `ALTER TABLE state ADD COLUMN kv_put_at INTEGER NOT NULL DEFAULT 0`,
      `CREATE TABLE shards (shard INTEGER PRIMARY KEY)`,
      `CREATE TABLE pending (account_id TEXT PRIMARY KEY, shard INTEGER NOT NULL, order_key INTEGER NOT NULL) WITHOUT ROWID`,
      `CREATE TABLE published (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)`,
      REQUEST_LOG_TABLE,
      `CREATE TABLE tick_log (at INTEGER NOT NULL, ms REAL NOT NULL, admitted INTEGER NOT NULL, waiting INTEGER NOT NULL)`,
    ],
  },
  {
    version: 3,
    description: "where each tick's time went (counting on)",
    statements: [`ALTER TABLE tick_log ADD COLUMN phases TEXT`],
  },
  {
    version: 4,
    description: "admissions not yet recorded, a row per shard (a JSON list of accounts), not a row per fan: a tick wrote, read and deleted 500 rows",
    statements: [
      `CREATE TABLE unrecorded (shard INTEGER PRIMARY KEY, account_ids TEXT NOT NULL)`,
      `INSERT INTO unrecorded (shard, account_ids) SELECT shard, json_group_array(account_id) FROM pending GROUP BY shard`,
      `DROP TABLE pending`,
    ],
  },
];

/** Append a migration to change the schema; never edit one that has shipped. */
export const LOBBY_SHARD_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "settings, status, entrants and the index of those waiting, request log",
    statements: [
      `CREATE TABLE IF NOT EXISTS settings (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS status (id INTEGER PRIMARY KEY CHECK (id = 1), sold_out INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS entrants (
         account_id TEXT PRIMARY KEY,
         order_key INTEGER NOT NULL UNIQUE,
         joined_at INTEGER NOT NULL,
         flagged TEXT,
         penalty_level INTEGER NOT NULL DEFAULT 0,
         admitted INTEGER NOT NULL DEFAULT 0,
         admission_id TEXT,
         admission_expires_at INTEGER) WITHOUT ROWID`,
      `CREATE INDEX IF NOT EXISTS entrants_waiting ON entrants (order_key) WHERE admitted = 0`,
      REQUEST_LOG_TABLE,
    ],
  },
  {
    version: 2,
    description: "the organizer's decisions on flagged accounts (clear or confirm)",
    statements: [`CREATE TABLE decisions (account_id TEXT PRIMARY KEY, decision TEXT NOT NULL CHECK (decision IN ('clear', 'confirm'))) WITHOUT ROWID`],
  },
  {
    version: 3,
    description: "entrants stored in key order (the order key is the row id), so a tick's admissions, consecutive keys, change a page or two, not a page each",
    statements: [
      `CREATE TABLE entrants_by_key (
         order_key INTEGER PRIMARY KEY,
         account_id TEXT NOT NULL UNIQUE,
         joined_at INTEGER NOT NULL,
         flagged TEXT,
         penalty_level INTEGER NOT NULL DEFAULT 0,
         admitted INTEGER NOT NULL DEFAULT 0,
         admission_id TEXT,
         admission_expires_at INTEGER)`,
      `INSERT INTO entrants_by_key (order_key, account_id, joined_at, flagged, penalty_level, admitted, admission_id, admission_expires_at)
         SELECT order_key, account_id, joined_at, flagged, penalty_level, admitted, admission_id, admission_expires_at FROM entrants`,
      `DROP TABLE entrants`,
      `ALTER TABLE entrants_by_key RENAME TO entrants`,
      // Covering (the tick's list reads nothing else): without it the planner walks the table in key order, past every admitted fan.
      `CREATE INDEX entrants_waiting ON entrants (order_key, account_id) WHERE admitted = 0`,
    ],
  },
];
