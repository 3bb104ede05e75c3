/**
 * The SQLite schema of the `WaitingRoom` object, as numbered migrations (see
 * ../lib/schema-migrations.ts): its settings (`config`, JSON), the admission
 * state (`state`: threshold, counters, what the inventory last said), one row
 * per fan in line (`entrants`), and the cached key quantiles (`quantiles`).
 */
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
];
