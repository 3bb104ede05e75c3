/**
 * The waiting room of one hot event (seed "Component 1").
 *
 * Fairness without a shuffle: everyone who joins the lobby before the sale
 * gets a uniformly random order key in the lobby block, so ascending keys are a
 * uniform shuffle of the lobby; later arrivals get keys above that block in
 * arrival order; flagged accounts get keys above both. An alarm advances the
 * admission threshold `T` at the configured rate, never past what the
 * inventory can still serve (it grants admissions), and publishes one small
 * document to KV that every waiting fan polls from the edge. No per-fan
 * request reaches this object while fans wait: only joining and, once, the
 * exchange of the lobby ticket for an admission token.
 *
 * Sold out is "for now" until the sale ends. When the inventory has no place
 * free for the queue the room says so and re-checks every
 * SOLD_OUT_RECHECK_MS instead of every tick; places come back (holds that run
 * out, declined payments, refunds, cancellations) and the threshold moves on
 * in queue order, within what the inventory grants. After the sale ends
 * nobody more is admitted.
 *
 * A place that comes back goes to the waitlist first, then to the line: the
 * inventory keeps it out of the room's grants until the waitlist's pass has
 * offered it (draining the inventory's outbox of returns), or for
 * WAITLIST_FIRST_MS at most when nobody drains it (no one on the waitlist).
 * Only what the waitlist leaves reopens the line. Nothing is promised twice:
 * promises to admitted fans and holds (a waitlist offer is a hold) come out of
 * the same free places in the inventory.
 */
import { DurableObject } from "cloudflare:workers";
import { loadConfig } from "../core/config";
import { createDb } from "../core/db/client";
import { LATE_BLOCK_START, FLAGGED_BLOCK_START, LOBBY_BLOCK_SIZE, queueStateKey, type QueueState } from "../core/waiting-room/queue-state";
import { loadWaitingRoomConfig, type WaitingRoomConfig } from "./waiting-room-postgres";

/** How often the threshold moves and the document is republished. */
export const TICK_MS = 1_000;
/** An admission token lives this long (seed: 15 minutes to complete a booking). */
export const ADMISSION_TTL_MS = 15 * 60 * 1000;
/** Quantiles of the key distribution in the published document. */
const QUANTILES = 32;
/** Recompute quantiles at most this often (a full index scan). */
const QUANTILE_REFRESH_MS = 10_000;
/** After the sale ends, publish this much longer (slowly). */
const IDLE_TICK_MS = 15_000;
/** While sold out, ask the inventory this often whether places came back (not every tick). */
export const SOLD_OUT_RECHECK_MS = 15_000;

/** The outcome of joining the lobby. */
export type JoinResult =
  | { ok: true; orderKey: number; joinedAt: number; block: "lobby" | "late" | "flagged"; rejoined: boolean; saleEndsAt: number }
  | { ok: false; reason: "lobby_closed" | "sale_ended" | "refused" };

/** The outcome of exchanging a lobby ticket. */
export type ExchangeResult =
  | { ok: true; admissionId: string; expiresAt: number }
  | { ok: false; reason: "not_admitted_yet" | "not_in_lobby" | "sold_out"; threshold: number };

/** What the inventory answers when the room asks to admit fans. */
export interface AdmissionGrant {
  granted: number;
  /** Places neither held nor sold. */
  available: number;
  held: number;
  /** No place is free for the queue right now: every place held or sold, or kept for the waitlist's pass (not final: places come back). */
  soldOut: boolean;
}

interface StateRow extends Record<string, SqlStorageValue> {
  threshold: number;
  admitted: number;
  carry: number;
  last_tick: number;
  late_seq: number;
  flagged_seq: number;
  sold_out: number;
  available: number;
  held: number;
  rate_per_s: number;
  paused: number;
}

const STATEMENTS = [
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
];

/** A uniformly random integer in [0, LOBBY_BLOCK_SIZE). */
function randomLobbyKey(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  const high = (words[0] ?? 0) % (LOBBY_BLOCK_SIZE / 2 ** 32);
  return high * 2 ** 32 + (words[1] ?? 0);
}

/** The waiting room of a hot event, addressed by event id. */
export class WaitingRoom extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private config: WaitingRoomConfig | undefined;
  /** The first load from Postgres, shared by the joins that arrive while it runs. */
  private configuring: Promise<WaitingRoomConfig> | undefined;
  /** Requests served, by kind: lets tests and benches prove polls never come here. */
  private readonly served = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      for (const statement of STATEMENTS) this.sql.exec(statement);
    });
  }

  private count(kind: string): void {
    this.served.set(kind, (this.served.get(kind) ?? 0) + 1);
  }

  /** Requests this object has served since it started, by kind. */
  servedRequests(): Record<string, number> {
    return Object.fromEntries(this.served);
  }

  /** Loads (or refreshes) the event's lobby settings from Postgres and starts the tick. */
  async configure(eventId: string): Promise<WaitingRoomConfig> {
    this.count("configure");
    const { db, close } = createDb(loadConfig(this.env));
    try {
      const config = await loadWaitingRoomConfig(db, eventId);
      if (!config) throw new Error(`event ${eventId} not found`);
      this.sql.exec("INSERT INTO config (id, json) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET json = excluded.json", JSON.stringify(config));
      this.sql.exec("INSERT INTO state (id, rate_per_s) VALUES (1, ?) ON CONFLICT (id) DO NOTHING", config.admissionRatePerSecond);
      this.config = config;
      await this.ensureTicking();
      return config;
    } finally {
      await close();
    }
  }

  /** Loads the settings from Postgres once, however many joins arrive while it runs. */
  private configureOnce(eventId: string): Promise<WaitingRoomConfig> {
    this.configuring ??= this.configure(eventId).finally(() => (this.configuring = undefined));
    return this.configuring;
  }

  private loadedConfig(): WaitingRoomConfig | undefined {
    if (this.config) return this.config;
    const row = this.sql.exec<{ json: string }>("SELECT json FROM config WHERE id = 1").toArray()[0];
    this.config = row ? (JSON.parse(row.json) as WaitingRoomConfig) : undefined;
    return this.config;
  }

  private state(): StateRow {
    return this.sql.exec<StateRow>("SELECT * FROM state WHERE id = 1").one();
  }

  /**
   * Puts an account in line, once: joining again returns the same key.
   * Before the sale the key is uniformly random in the lobby block; after it,
   * the next key of the late block; flagged accounts (policy "deprioritize")
   * go behind everyone.
   */
  async join(eventId: string, accountId: string, flagged?: string): Promise<JoinResult> {
    this.count("join");
    const config = this.loadedConfig() ?? (await this.configureOnce(eventId));
    const existing = this.sql.exec<{ order_key: number; joined_at: number; flagged: string | null }>(
      "SELECT order_key, joined_at, flagged FROM entrants WHERE account_id = ?",
      accountId,
    ).toArray()[0];
    if (existing) {
      if (flagged && !existing.flagged) this.flag([accountId], flagged);
      const current = this.sql.exec<{ order_key: number }>("SELECT order_key FROM entrants WHERE account_id = ?", accountId).one();
      return { ok: true, orderKey: current.order_key, joinedAt: existing.joined_at, block: blockOf(current.order_key), rejoined: true, saleEndsAt: config.saleEndsAt };
    }
    const now = Date.now();
    if (now < config.lobbyOpensAt) return { ok: false, reason: "lobby_closed" };
    if (now >= config.saleEndsAt) return { ok: false, reason: "sale_ended" };
    const orderKey = this.ctx.storage.transactionSync(() => {
      let key: number;
      if (flagged) {
        key = FLAGGED_BLOCK_START + this.bump("flagged_seq");
      } else if (now < config.saleStartsAt) {
        key = randomLobbyKey();
        while (this.sql.exec("SELECT 1 FROM entrants WHERE order_key = ?", key).toArray().length > 0) key = randomLobbyKey();
      } else {
        key = LATE_BLOCK_START + this.bump("late_seq");
      }
      this.sql.exec("INSERT INTO entrants (account_id, order_key, joined_at, flagged) VALUES (?, ?, ?, ?)", accountId, key, now, flagged ?? null);
      return key;
    });
    await this.ensureTicking();
    return { ok: true, orderKey, joinedAt: now, block: blockOf(orderKey), rejoined: false, saleEndsAt: config.saleEndsAt };
  }

  private bump(column: "late_seq" | "flagged_seq"): number {
    return this.sql.exec<{ n: number }>(`UPDATE state SET ${column} = ${column} + 1 WHERE id = 1 RETURNING ${column} - 1 AS n`).one().n;
  }

  /** Moves not-yet-admitted accounts behind everyone (bot policy "deprioritize"). */
  flag(accountIds: string[], reason: string): number {
    this.count("flag");
    const threshold = this.state().threshold;
    let moved = 0;
    this.ctx.storage.transactionSync(() => {
      for (const accountId of accountIds) {
        const row = this.sql.exec<{ order_key: number; flagged: string | null }>("SELECT order_key, flagged FROM entrants WHERE account_id = ?", accountId).toArray()[0];
        if (!row || row.flagged || row.order_key <= threshold) continue;
        const key = FLAGGED_BLOCK_START + this.bump("flagged_seq");
        this.sql.exec("UPDATE entrants SET order_key = ?, flagged = ? WHERE account_id = ?", key, reason, accountId);
        moved++;
      }
    });
    return moved;
  }

  /** Takes accounts out of line (bot policy "refuse"); admitted ones keep their admission. */
  remove(accountIds: string[]): number {
    this.count("remove");
    const threshold = this.state().threshold;
    let removed = 0;
    for (const accountId of accountIds) {
      removed += this.sql.exec("DELETE FROM entrants WHERE account_id = ? AND order_key > ? RETURNING account_id", accountId, threshold).toArray().length;
    }
    return removed;
  }

  /**
   * Exchanges an admitted fan's lobby ticket for an admission: the id and
   * expiry of the admission token the Worker signs. Asking again while it is
   * valid returns the same admission (one attempt key per fan).
   */
  exchange(accountId: string, orderKey: number): ExchangeResult {
    this.count("exchange");
    const state = this.state();
    const row = this.sql.exec<{ order_key: number; admission_id: string | null; admission_expires_at: number | null }>(
      "SELECT order_key, admission_id, admission_expires_at FROM entrants WHERE account_id = ?",
      accountId,
    ).toArray()[0];
    if (!row || row.order_key !== orderKey) return { ok: false, reason: "not_in_lobby", threshold: state.threshold };
    if (row.order_key > state.threshold) return { ok: false, reason: state.sold_out ? "sold_out" : "not_admitted_yet", threshold: state.threshold };
    const now = Date.now();
    if (row.admission_id && (row.admission_expires_at ?? 0) > now) {
      return { ok: true, admissionId: row.admission_id, expiresAt: row.admission_expires_at ?? now };
    }
    const admissionId = crypto.randomUUID();
    const expiresAt = now + ADMISSION_TTL_MS;
    this.sql.exec("UPDATE entrants SET admission_id = ?, admission_expires_at = ? WHERE account_id = ?", admissionId, expiresAt, accountId);
    return { ok: true, admissionId, expiresAt };
  }

  /** Changes the admission rate (fans per second) or pauses admission, live. */
  async control(options: { ratePerSecond?: number | undefined; paused?: boolean | undefined }): Promise<QueueState> {
    this.count("control");
    if (options.ratePerSecond !== undefined) this.sql.exec("UPDATE state SET rate_per_s = ? WHERE id = 1", options.ratePerSecond);
    if (options.paused !== undefined) this.sql.exec("UPDATE state SET paused = ?, carry = 0 WHERE id = 1", options.paused ? 1 : 0);
    const document = this.document(Date.now());
    await this.publish(document);
    await this.ensureTicking();
    return document;
  }

  /** The current queue document (for organizers' live stats; fans read it from KV). */
  snapshot(): QueueState {
    this.count("snapshot");
    return this.document(Date.now());
  }

  /**
   * One tick: admit fans at the rate the inventory can serve, publish,
   * reschedule (every tick while admitting, every SOLD_OUT_RECHECK_MS while
   * sold out, a few slow ticks after the sale ends, then no more).
   */
  override async alarm(): Promise<void> {
    const config = this.loadedConfig();
    if (!config) return;
    const now = Date.now();
    const state = this.state();
    if (now >= config.saleStartsAt && !state.paused && now < config.saleEndsAt) {
      await this.admit(config, state, now);
    } else {
      this.sql.exec("UPDATE state SET last_tick = ? WHERE id = 1", now);
    }
    await this.publish(this.document(now));
    const next = this.nextTick(config, this.state(), now);
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  /** Moves the threshold over the next fans the inventory grants, and records where the inventory stands. */
  private async admit(config: WaitingRoomConfig, state: StateRow, now: number): Promise<void> {
    // While sold out the re-check is seldom: ask for one tick's worth of fans, not for every second since the last one.
    const elapsed = state.sold_out === 1 || state.last_tick === 0 ? TICK_MS : Math.max(0, now - Math.max(state.last_tick, config.saleStartsAt));
    const quota = state.carry + (state.rate_per_s * elapsed) / 1000;
    const wanted = Math.floor(quota);
    const next = wanted > 0 ? this.sql.exec<{ account_id: string; order_key: number }>("SELECT account_id, order_key FROM entrants WHERE order_key > ? ORDER BY order_key LIMIT ?", state.threshold, wanted).toArray() : [];
    const inventory = this.env.EVENT_INVENTORY.getByName(config.eventId);
    // An inventory nobody prepared grants nothing: load it rather than stall admission (cheap once loaded).
    await inventory.ensurePrepared(config.eventId);
    const grant = await inventory.grantAdmissions(next.map((n) => n.account_id));
    const admittedNow = next.slice(0, grant.granted);
    const last = admittedNow[admittedNow.length - 1];
    // Fans the inventory could not serve yet keep their place; the rest of the quota carries over (bounded).
    const carry = grant.granted < next.length ? 0 : Math.min(quota - wanted, state.rate_per_s);
    this.sql.exec(
      "UPDATE state SET threshold = ?, admitted = admitted + ?, carry = ?, last_tick = ?, available = ?, held = ?, sold_out = ? WHERE id = 1",
      last ? last.order_key : state.threshold,
      admittedNow.length,
      carry,
      now,
      grant.available,
      grant.held,
      grant.soldOut ? 1 : 0,
    );
  }

  /** When the alarm should run next (null: never again, the sale is over). */
  private nextTick(config: WaitingRoomConfig, state: StateRow, now: number): number | null {
    if (now >= config.saleEndsAt) return now < config.saleEndsAt + IDLE_TICK_MS * 4 ? now + IDLE_TICK_MS : null;
    const selling = now >= config.saleStartsAt && !state.paused;
    return now + (selling && state.sold_out === 1 ? SOLD_OUT_RECHECK_MS : TICK_MS);
  }

  private async ensureTicking(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + TICK_MS);
  }

  private async publish(document: QueueState): Promise<void> {
    await this.env.QUEUE_STATE.put(queueStateKey(document.eventId), JSON.stringify(document), { expirationTtl: 7 * 24 * 3600 });
  }

  private document(now: number): QueueState {
    const config = this.loadedConfig();
    if (!config) throw new Error("waiting room not configured");
    const state = this.state();
    const counts = this.sql.exec<{ lobby: number; late: number; flagged: number }>(
      `SELECT coalesce(sum(order_key < ?), 0) AS lobby, coalesce(sum(order_key >= ? AND order_key < ?), 0) AS late, coalesce(sum(order_key >= ?), 0) AS flagged FROM entrants`,
      LATE_BLOCK_START,
      LATE_BLOCK_START,
      FLAGGED_BLOCK_START,
      FLAGGED_BLOCK_START,
    ).one();
    return {
      eventId: config.eventId,
      threshold: state.threshold,
      admitted: state.admitted,
      entrants: { lobby: counts.lobby, late: counts.late, flagged: counts.flagged },
      quantiles: this.quantiles(now, counts.lobby),
      ratePerSecond: state.rate_per_s,
      paused: state.paused === 1,
      soldOut: state.sold_out === 1,
      available: state.available,
      held: state.held,
      saleStartsAt: config.saleStartsAt,
      saleEndsAt: config.saleEndsAt,
      updatedAt: now,
    };
  }

  /** Lobby-block keys at evenly spaced ranks, so a fan can place its own key. */
  private quantiles(now: number, lobby: number): number[] {
    const cached = this.sql.exec<{ json: string; at: number; entrants: number }>("SELECT json, at, entrants FROM quantiles WHERE id = 1").toArray()[0];
    if (cached && (cached.entrants === lobby || now - cached.at < QUANTILE_REFRESH_MS)) return JSON.parse(cached.json) as number[];
    const values: number[] = [];
    if (lobby > 0) {
      const step = Math.max(1, Math.floor(lobby / QUANTILES));
      const rows = this.sql.exec<{ order_key: number }>(
        `SELECT order_key FROM (SELECT order_key, row_number() OVER (ORDER BY order_key) AS rank FROM entrants WHERE order_key < ?) WHERE rank % ? = 0`,
        LATE_BLOCK_START,
        step,
      ).toArray();
      values.push(...rows.map((r) => r.order_key));
    }
    this.sql.exec("INSERT OR REPLACE INTO quantiles (id, json, at, entrants) VALUES (1, ?, ?, ?)", JSON.stringify(values), now, lobby);
    return values;
  }
}

function blockOf(orderKey: number): "lobby" | "late" | "flagged" {
  return orderKey >= FLAGGED_BLOCK_START ? "flagged" : orderKey >= LATE_BLOCK_START ? "late" : "lobby";
}
