/**
 * The live seat map of one calm event: viewers hold a hibernatable WebSocket,
 * the Worker publishes seat changes after each hold, release or confirmation,
 * and one alarm pushes them out in batches (at most one message per
 * `FLUSH_INTERVAL_MS`, last state per seat wins). Calm holds lapse lazily in
 * Postgres, so publishers also say when held seats fall free; the same alarm
 * announces those at their time unless a newer change to the seat came first.
 *
 * Everything not yet sent lives in SQLite: the object may hibernate or be
 * evicted between a publish and its flush.
 */
import { DurableObject } from "cloudflare:workers";
import { AlarmScheduler, type AlarmSource } from "./lib/alarm-scheduler";
import { migratedSql, type Migration } from "./lib/schema-migrations";
import type { Sql, SqlRow } from "./lib/sql";

/** Shortest gap between two `seats` messages (about 10 a second). */
export const FLUSH_INTERVAL_MS = 100;
/** How long flushed changes are replayed to new viewers (covers the bitmap's edge cache). */
export const RECENT_WINDOW_MS = 5_000;

/** One seat's new state. */
export interface SeatChange {
  seatIndex: number;
  available: boolean;
}

/** Seats of a live hold that fall free at `at` unless something newer happens to them first. */
export interface SeatExpiry {
  holdId: string;
  seatIndexes: number[];
  /** Epoch milliseconds. */
  at: number;
}

/** A seat on the wire: `[seatIndex, 1]` available, `[seatIndex, 0]` taken. */
export type WireSeat = [seatIndex: number, available: 0 | 1];

/** What viewers receive. */
export type SeatFeedMessage =
  /**
   * First message on every connection. The viewer then fetches the bitmap
   * (GET /api/events/:id/availability), overlays `recent` (seats changed in
   * the last `RECENT_WINDOW_MS`, which an edge-cached bitmap may miss), then
   * applies every `seats` message in order.
   */
  | { type: "hello"; at: number; recent: WireSeat[] }
  /** Seats that changed since the previous message, one entry per seat. */
  | { type: "seats"; changes: WireSeat[]; at: number };

/** The feed's SQLite schema (see lib/schema-migrations.ts); append to change it. */
export const SEAT_MAP_FEED_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "pending changes, scheduled seat expiries, recently sent changes, the last flush",
    statements: [
      // Changes not yet sent, one row per seat: a later publish overwrites an earlier one.
      `CREATE TABLE IF NOT EXISTS pending (seat_index INTEGER PRIMARY KEY, available INTEGER NOT NULL)`,
      // Held seats that fall free at `at` (Postgres expires calm holds lazily, so nobody else says so).
      `CREATE TABLE IF NOT EXISTS expiries (
         hold_id TEXT NOT NULL,
         seat_index INTEGER NOT NULL,
         at INTEGER NOT NULL,
         PRIMARY KEY (hold_id, seat_index)) WITHOUT ROWID`,
      `CREATE INDEX IF NOT EXISTS expiries_due ON expiries (at)`,
      `CREATE INDEX IF NOT EXISTS expiries_by_seat ON expiries (seat_index)`,
      // Last flushed state of recently changed seats, replayed in `hello`.
      `CREATE TABLE IF NOT EXISTS recent (seat_index INTEGER PRIMARY KEY, available INTEGER NOT NULL, at INTEGER NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS recent_by_age ON recent (at)`,
      `CREATE TABLE IF NOT EXISTS flushes (id INTEGER PRIMARY KEY CHECK (id = 1), last_at INTEGER NOT NULL)`,
    ],
  },
];

interface SeatRow extends SqlRow {
  seat_index: number;
  available: number;
}

/** The live seat map feed of one calm event, addressed by event id. */
export class SeatMapFeed extends DurableObject<Env> {
  private readonly sql: Sql;
  /** One source, the feed itself: due expiries and the next flush. */
  private readonly scheduler: AlarmScheduler;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = migratedSql(ctx, SEAT_MAP_FEED_MIGRATIONS);
    const feed: AlarmSource = { nextAlarmAt: () => this.nextAlarmAt(), runDue: (now) => this.runDue(now) };
    this.scheduler = new AlarmScheduler(ctx.storage, [feed]);
    // Answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Accepts a viewer's WebSocket (hibernatable); anything else gets 426. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return Response.json(
        { error: { code: "upgrade_required", message: "The seat feed is a WebSocket: send `Upgrade: websocket`." } },
        { status: 426, headers: { Upgrade: "websocket" } },
      );
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const now = Date.now();
    this.send(server, { type: "hello", at: now, recent: this.recentSeats(now) });
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * Queues seat changes for the next flush and schedules seat expiries. A
   * change to a seat cancels any expiry scheduled for it (it is newer news:
   * the hold was released, confirmed or replaced), so a release or
   * confirmation needs no separate cancel.
   */
  async publish(changes: SeatChange[], expiries: SeatExpiry[] = []): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const change of changes) {
        this.sql`DELETE FROM expiries WHERE seat_index = ${change.seatIndex}`;
        this.queueChange(change.seatIndex, change.available);
      }
      for (const expiry of expiries) {
        for (const seatIndex of expiry.seatIndexes) {
          this.sql`INSERT OR REPLACE INTO expiries (hold_id, seat_index, at) VALUES (${expiry.holdId}, ${seatIndex}, ${expiry.at})`;
        }
      }
    });
    await this.scheduler.reschedule();
  }

  /** Viewers currently connected (including hibernated ones). */
  viewerCount(): number {
    return this.ctx.getWebSockets().length;
  }

  /**
   * Turns due expiries into changes, then sends pending changes if the last
   * message is at least `FLUSH_INTERVAL_MS` old, and sets the alarm to the
   * next thing due. Running it twice, or early, sends nothing twice.
   */
  override async alarm(): Promise<void> {
    await this.scheduler.run(Date.now());
  }

  /** The alarm's work (see `alarm`). */
  private runDue(now: number): void {
    this.ctx.storage.transactionSync(() => this.releaseDueExpiries(now));
    if (this.flushDueAt(now) <= now) this.flush(now);
  }

  /** The earliest of the next flush and the next expiry (null when nothing is due). */
  private nextAlarmAt(): number | null {
    const next = this.nextDueAt(Date.now());
    return Number.isFinite(next) ? next : null;
  }

  /** Viewers only listen; the runtime answers "ping". Anything else is ignored. */
  override webSocketMessage(_ws: WebSocket, _message: string | ArrayBuffer): void {}

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closed (the runtime may have answered the close frame itself).
    }
  }

  override webSocketError(ws: WebSocket): void {
    try {
      ws.close(1011, "error");
    } catch {
      // Already closed.
    }
  }

  // ---------------------------------------------------------------- internals

  private queueChange(seatIndex: number, available: boolean): void {
    this.sql`INSERT OR REPLACE INTO pending (seat_index, available) VALUES (${seatIndex}, ${available ? 1 : 0})`;
  }

  private releaseDueExpiries(now: number): void {
    const due = this.sql<{ seat_index: number }>`SELECT DISTINCT seat_index FROM expiries WHERE at <= ${now}`.toArray();
    for (const row of due) this.queueChange(row.seat_index, true);
    this.sql`DELETE FROM expiries WHERE at <= ${now}`;
  }

  /** Sends every pending change as one message and remembers it for new viewers. */
  private flush(now: number): void {
    const rows = this.sql<SeatRow>`SELECT seat_index, available FROM pending ORDER BY seat_index`.toArray();
    if (rows.length === 0) return;
    this.ctx.storage.transactionSync(() => {
      this.sql`DELETE FROM pending`;
      for (const row of rows) this.sql`INSERT OR REPLACE INTO recent (seat_index, available, at) VALUES (${row.seat_index}, ${row.available}, ${now})`;
      this.sql`DELETE FROM recent WHERE at < ${now - RECENT_WINDOW_MS}`;
      this.sql`INSERT OR REPLACE INTO flushes (id, last_at) VALUES (1, ${now})`;
    });
    const message: SeatFeedMessage = { type: "seats", changes: rows.map(wireSeat), at: now };
    const text = JSON.stringify(message);
    for (const ws of this.ctx.getWebSockets()) this.sendText(ws, text);
  }

  private recentSeats(now: number): WireSeat[] {
    return this.sql<SeatRow>`SELECT seat_index, available FROM recent WHERE at >= ${now - RECENT_WINDOW_MS} ORDER BY seat_index`.toArray().map(wireSeat);
  }

  /** When pending changes may next be sent (Infinity when there are none). */
  private flushDueAt(now: number): number {
    if (this.sql`SELECT 1 FROM pending LIMIT 1`.toArray().length === 0) return Infinity;
    const last = this.sql<{ last_at: number }>`SELECT last_at FROM flushes WHERE id = 1`.toArray()[0]?.last_at;
    return last === undefined ? now : Math.max(now, last + FLUSH_INTERVAL_MS);
  }

  /** The earliest of the next flush and the next expiry (Infinity when nothing is due). */
  private nextDueAt(now: number): number {
    const nextExpiry = this.sql<{ at: number | null }>`SELECT MIN(at) AS at FROM expiries`.toArray()[0]?.at ?? Infinity;
    return Math.min(this.flushDueAt(now), nextExpiry);
  }

  private send(ws: WebSocket, message: SeatFeedMessage): void {
    this.sendText(ws, JSON.stringify(message));
  }

  private sendText(ws: WebSocket, text: string): void {
    try {
      ws.send(text);
    } catch {
      // The viewer left; the runtime reports the close separately.
    }
  }
}

function wireSeat(row: SeatRow): WireSeat {
  return [row.seat_index, row.available === 1 ? 1 : 0];
}
