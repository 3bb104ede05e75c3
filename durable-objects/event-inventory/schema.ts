/**
 * The SQLite schema of the `EventInventory` object, as numbered migrations
 * (see ../lib/schema-migrations.ts). Each table belongs to one part of the
 * object:
 *
 * | tables | part |
 * |---|---|
 * | `config`, `prices`, `sections`, `seats` | places.ts: settings, chart, general-admission counters |
 * | `holds`, `seat_claims`, `requests` | holds.ts |
 * | `promises` | promises.ts |
 * | `returns`, `waitlist_watch` | returns.ts |
 *
 * The hot path writes as little as it can: a hold is one row in `holds`
 * (its seats and general-admission places as JSON, its request id and
 * attempt key) and one row per seat in `seat_claims` (whose primary key
 * makes a second claim on a seat impossible); a refused request is one row
 * in `requests`. Everything else the object needs on every call (free seats,
 * places per account, attempt times, promises, whether the waitlist has fans
 * waiting) lives in memory and is rebuilt from these tables after a restart. `holds.version` and
 * `holds.mirrored_version` tell postgres-mirror.ts which holds Postgres has
 * not heard of yet.
 */
import type { Migration } from "../lib/schema-migrations";

/** Append a migration to change the schema; never edit one that has shipped. */
export const INVENTORY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "settings, chart, holds with their seat claims, refused requests, promises, the outbox of returns",
    statements: [
      `CREATE TABLE IF NOT EXISTS config (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         event_id TEXT NOT NULL,
         status TEXT NOT NULL,
         sale_starts_at INTEGER NOT NULL,
         sale_ends_at INTEGER NOT NULL,
         hold_ttl_ms INTEGER NOT NULL,
         purchase_limit INTEGER NOT NULL,
         seat_count INTEGER NOT NULL,
         prepared_at INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS prices (price_tier TEXT PRIMARY KEY, price_cents INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS sections (
         section_id TEXT PRIMARY KEY,
         label TEXT NOT NULL,
         kind TEXT NOT NULL,
         price_tier TEXT,
         sort_order INTEGER NOT NULL,
         capacity INTEGER NOT NULL,
         ga_available INTEGER NOT NULL DEFAULT 0 CHECK (ga_available >= 0))`,
      // The chart: never changes once prepared.
      `CREATE TABLE IF NOT EXISTS seats (
         seat_index INTEGER PRIMARY KEY,
         section_id TEXT NOT NULL,
         row_id TEXT NOT NULL,
         row_label TEXT NOT NULL,
         label TEXT NOT NULL,
         position INTEGER NOT NULL,
         best_rank INTEGER NOT NULL,
         price_tier TEXT NOT NULL)`,
      // The seats a live or confirmed hold claims: one row per seat, so no seat is ever claimed twice.
      `CREATE TABLE IF NOT EXISTS seat_claims (seat_index INTEGER PRIMARY KEY, hold_id TEXT NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS seat_claims_by_hold ON seat_claims (hold_id)`,
      // seat_list: JSON array of seat indexes; ga_list: JSON array of {sectionId, quantity}.
      `CREATE TABLE IF NOT EXISTS holds (
         hold_id TEXT PRIMARY KEY,
         account_id TEXT NOT NULL,
         request_id TEXT NOT NULL,
         status TEXT NOT NULL,
         places INTEGER NOT NULL,
         total_cents INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         created_at INTEGER NOT NULL,
         version INTEGER NOT NULL DEFAULT 1,
         mirrored_version INTEGER NOT NULL DEFAULT 0,
         seat_list TEXT NOT NULL DEFAULT '[]',
         ga_list TEXT NOT NULL DEFAULT '[]',
         attempt_key TEXT)`,
      `CREATE INDEX IF NOT EXISTS holds_due ON holds (expires_at) WHERE status = 'live'`,
      // A retried request finds its hold by (account, request id); an account's holds are listed by it too.
      `CREATE INDEX IF NOT EXISTS holds_by_request ON holds (account_id, request_id)`,
      `CREATE INDEX IF NOT EXISTS holds_unmirrored ON holds (hold_id) WHERE mirrored_version < version`,
      // Refused hold requests, so a retry gets the first answer (a hold is found by its request id); with holds, the attempt-rate record.
      `CREATE TABLE IF NOT EXISTS requests (request_key TEXT PRIMARY KEY, result TEXT NOT NULL, created_at INTEGER NOT NULL, attempt_key TEXT)`,
      `CREATE INDEX IF NOT EXISTS requests_by_age ON requests (created_at)`,
      // Places promised to fans the waiting room admitted who have not held yet (they expire when idle).
      `CREATE TABLE IF NOT EXISTS promises (account_id TEXT PRIMARY KEY, places INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS promises_by_expiry ON promises (expires_at)`,
      // Places returned to the pool, for the waitlist to offer (an outbox, drained by takeReturns once the waitlist's pass has offered them).
      `CREATE TABLE IF NOT EXISTS returns (id INTEGER PRIMARY KEY AUTOINCREMENT, hold_id TEXT NOT NULL, places INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL)`,
      // While the room is sold out, recent returns are the waitlist's (grantAdmissions sums them by time).
      `CREATE INDEX IF NOT EXISTS returns_by_time ON returns (at)`,
    ],
  },
  {
    version: 2,
    description: "promises in grant order (a row id, no index on the account: memory maps accounts to rows), so a tick's grant writes a page or two, not a page per fan",
    statements: [
      `CREATE TABLE promises_in_order (id INTEGER PRIMARY KEY, account_id TEXT NOT NULL, places INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
      `INSERT INTO promises_in_order (account_id, places, expires_at) SELECT account_id, places, expires_at FROM promises ORDER BY expires_at`,
      `DROP TABLE promises`,
      `ALTER TABLE promises_in_order RENAME TO promises`,
      `CREATE INDEX promises_by_expiry ON promises (expires_at)`,
    ],
  },
  {
    version: 3,
    description: "whether the waitlist has fans waiting (until when its last pass or join said so): returns are kept for it only then",
    statements: [`CREATE TABLE IF NOT EXISTS waitlist_watch (id INTEGER PRIMARY KEY CHECK (id = 1), waiting_until INTEGER NOT NULL)`],
  },
  {
    version: 4,
    description: "the waitlist's word counts the joins heard (watch), so a pass's word that nobody waits, older than a join, is ignored",
    // The table made anew (not ALTER TABLE ... ADD COLUMN): storage from before schema versions runs every migration again.
    statements: [
      `CREATE TABLE waitlist_watch_counted (id INTEGER PRIMARY KEY CHECK (id = 1), waiting_until INTEGER NOT NULL, watch INTEGER NOT NULL DEFAULT 0)`,
      `INSERT INTO waitlist_watch_counted (id, waiting_until) SELECT id, waiting_until FROM waitlist_watch`,
      `DROP TABLE waitlist_watch`,
      `ALTER TABLE waitlist_watch_counted RENAME TO waitlist_watch`,
    ],
  },
];
