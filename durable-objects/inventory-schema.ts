/** SQLite schema of the `EventInventory` Durable Object, applied in its constructor. */

/** Seat states in the `seats` table. */
export const SEAT_FREE = 0;
export const SEAT_HELD = 1;
export const SEAT_SOLD = 2;

const STATEMENTS = [
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
  `CREATE TABLE IF NOT EXISTS seats (
     seat_index INTEGER PRIMARY KEY,
     section_id TEXT NOT NULL,
     row_id TEXT NOT NULL,
     row_label TEXT NOT NULL,
     label TEXT NOT NULL,
     position INTEGER NOT NULL,
     best_rank INTEGER NOT NULL,
     price_tier TEXT NOT NULL,
     state INTEGER NOT NULL DEFAULT 0,
     hold_id TEXT)`,
  `CREATE INDEX IF NOT EXISTS seats_by_hold ON seats (hold_id) WHERE hold_id IS NOT NULL`,
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
     mirrored_version INTEGER NOT NULL DEFAULT 0)`,
  `CREATE INDEX IF NOT EXISTS holds_due ON holds (expires_at) WHERE status = 'live'`,
  `CREATE INDEX IF NOT EXISTS holds_by_account ON holds (account_id, status)`,
  `CREATE INDEX IF NOT EXISTS holds_unmirrored ON holds (hold_id) WHERE mirrored_version < version`,
  // Every seat a hold ever claimed (seats.hold_id only says who holds a seat now).
  `CREATE TABLE IF NOT EXISTS hold_seats (hold_id TEXT NOT NULL, seat_index INTEGER NOT NULL, PRIMARY KEY (hold_id, seat_index)) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS hold_ga (
     hold_id TEXT NOT NULL,
     section_id TEXT NOT NULL,
     quantity INTEGER NOT NULL,
     PRIMARY KEY (hold_id, section_id))`,
  // Results of hold requests, so a retried request gets the first result.
  `CREATE TABLE IF NOT EXISTS requests (request_key TEXT PRIMARY KEY, result TEXT NOT NULL, created_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS requests_by_age ON requests (created_at)`,
  // Last hold attempt per attempt key (one per 5 s).
  `CREATE TABLE IF NOT EXISTS attempts (attempt_key TEXT PRIMARY KEY, last_at INTEGER NOT NULL)`,
  // Places promised to fans the waiting room admitted who have not held yet (they expire when idle).
  `CREATE TABLE IF NOT EXISTS promises (account_id TEXT PRIMARY KEY, places INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS promises_by_expiry ON promises (expires_at)`,
  // Places returned to the pool, for the waitlist to offer (an outbox, drained by takeReturns).
  `CREATE TABLE IF NOT EXISTS returns (id INTEGER PRIMARY KEY AUTOINCREMENT, hold_id TEXT NOT NULL, places INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL)`,
];

/** Creates the tables (idempotent). */
export function migrateInventorySchema(sql: SqlStorage): void {
  for (const statement of STATEMENTS) sql.exec(statement);
}
