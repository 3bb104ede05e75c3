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
import { z } from "zod";
import { loadConfig } from "../../core/config";
import { createDb } from "../../core/db/client";
import { LATE_BLOCK_START, FLAGGED_BLOCK_START, LOBBY_BLOCK_SIZE, queueStateKey, type QueueState } from "../../core/waiting-room/queue-state";
import { migrateSchema } from "../lib/schema-migrations";
import { sqlOver, type Sql, type SqlRow } from "../lib/sql";
import { readStoredJson } from "../lib/stored-json";
import { loadWaitingRoomConfig, waitingRoomConfigSchema, type WaitingRoomConfig } from "./postgres";
import { WAITING_ROOM_MIGRATIONS } from "./schema";

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

/** The cached key quantiles (`quantiles.json`). */
const storedQuantiles = z.array(z.number());

interface StateRow extends SqlRow {
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

/** A uniformly random integer in [0, LOBBY_BLOCK_SIZE). */
function randomLobbyKey(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  const high = (words[0] ?? 0) % (LOBBY_BLOCK_SIZE / 2 ** 32);
  return high * 2 ** 32 + (words[1] ?? 0);
}

/** The waiting room of a hot event, addressed by event id. */
export class WaitingRoom extends DurableObject<Env> {
  private readonly sql: Sql;
  private config: WaitingRoomConfig | undefined;
  /** The first load from Postgres, shared by the joins that arrive while it runs. */
  private configuring: Promise<WaitingRoomConfig> | undefined;
  /** Requests served, by kind: lets tests and benches prove polls never come here. */
  private readonly served = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => migrateSchema(ctx.storage, WAITING_ROOM_MIGRATIONS));
    this.sql = sqlOver(ctx.storage.sql);
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
      this.sql`INSERT INTO config (id, json) VALUES (1, ${JSON.stringify(config)}) ON CONFLICT (id) DO UPDATE SET json = excluded.json`;
      this.sql`INSERT INTO state (id, rate_per_s) VALUES (1, ${config.admissionRatePerSecond}) ON CONFLICT (id) DO NOTHING`;
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
    const row = this.sql<{ json: string }>`SELECT json FROM config WHERE id = 1`.toArray()[0];
    this.config = row ? readStoredJson(waitingRoomConfigSchema, row.json, "waiting-room settings") : undefined;
    return this.config;
  }

  private state(): StateRow {
    return this.sql<StateRow>`SELECT * FROM state WHERE id = 1`.one();
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
    const existing = this.sql<{ order_key: number; joined_at: number; flagged: string | null }>`SELECT order_key, joined_at, flagged FROM entrants WHERE account_id = ${accountId}`.toArray()[0];
    if (existing) {
      if (flagged && !existing.flagged) this.flag([accountId], flagged);
      const current = this.sql<{ order_key: number }>`SELECT order_key FROM entrants WHERE account_id = ${accountId}`.one();
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
        while (this.sql`SELECT 1 FROM entrants WHERE order_key = ${key}`.toArray().length > 0) key = randomLobbyKey();
      } else {
        key = LATE_BLOCK_START + this.bump("late_seq");
      }
      this.sql`INSERT INTO entrants (account_id, order_key, joined_at, flagged) VALUES (${accountId}, ${key}, ${now}, ${flagged ?? null})`;
      return key;
    });
    await this.ensureTicking();
    return { ok: true, orderKey, joinedAt: now, block: blockOf(orderKey), rejoined: false, saleEndsAt: config.saleEndsAt };
  }

  private bump(column: "late_seq" | "flagged_seq"): number {
    const bumped =
      column === "late_seq"
        ? this.sql<{ n: number }>`UPDATE state SET late_seq = late_seq + 1 WHERE id = 1 RETURNING late_seq - 1 AS n`
        : this.sql<{ n: number }>`UPDATE state SET flagged_seq = flagged_seq + 1 WHERE id = 1 RETURNING flagged_seq - 1 AS n`;
    return bumped.one().n;
  }

  /** Moves not-yet-admitted accounts behind everyone (bot policy "deprioritize"). */
  flag(accountIds: string[], reason: string): number {
    this.count("flag");
    const threshold = this.state().threshold;
    let moved = 0;
    this.ctx.storage.transactionSync(() => {
      for (const accountId of accountIds) {
        const row = this.sql<{ order_key: number; flagged: string | null }>`SELECT order_key, flagged FROM entrants WHERE account_id = ${accountId}`.toArray()[0];
        if (!row || row.flagged || row.order_key <= threshold) continue;
        const key = FLAGGED_BLOCK_START + this.bump("flagged_seq");
        this.sql`UPDATE entrants SET order_key = ${key}, flagged = ${reason} WHERE account_id = ${accountId}`;
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
      removed += this.sql`DELETE FROM entrants WHERE account_id = ${accountId} AND order_key > ${threshold} RETURNING account_id`.toArray().length;
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
    const row = this.sql<{ order_key: number; admission_id: string | null; admission_expires_at: number | null }>`
      SELECT order_key, admission_id, admission_expires_at FROM entrants WHERE account_id = ${accountId}`.toArray()[0];
    if (!row || row.order_key !== orderKey) return { ok: false, reason: "not_in_lobby", threshold: state.threshold };
    if (row.order_key > state.threshold) return { ok: false, reason: state.sold_out ? "sold_out" : "not_admitted_yet", threshold: state.threshold };
    const now = Date.now();
    if (row.admission_id && (row.admission_expires_at ?? 0) > now) {
      return { ok: true, admissionId: row.admission_id, expiresAt: row.admission_expires_at ?? now };
    }
    const admissionId = crypto.randomUUID();
    const expiresAt = now + ADMISSION_TTL_MS;
    this.sql`UPDATE entrants SET admission_id = ${admissionId}, admission_expires_at = ${expiresAt} WHERE account_id = ${accountId}`;
    return { ok: true, admissionId, expiresAt };
  }

  /** Changes the admission rate (fans per second) or pauses admission, live. */
  async control(options: { ratePerSecond?: number | undefined; paused?: boolean | undefined }): Promise<QueueState> {
    this.count("control");
    if (options.ratePerSecond !== undefined) this.sql`UPDATE state SET rate_per_s = ${options.ratePerSecond} WHERE id = 1`;
    if (options.paused !== undefined) this.sql`UPDATE state SET paused = ${options.paused ? 1 : 0}, carry = 0 WHERE id = 1`;
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
      this.sql`UPDATE state SET last_tick = ${now} WHERE id = 1`;
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
    const next =
      wanted > 0 ? this.sql<{ account_id: string; order_key: number }>`SELECT account_id, order_key FROM entrants WHERE order_key > ${state.threshold} ORDER BY order_key LIMIT ${wanted}`.toArray() : [];
    const inventory = this.env.EVENT_INVENTORY.getByName(config.eventId);
    // An inventory nobody prepared grants nothing: load it rather than stall admission (cheap once loaded).
    await inventory.ensurePrepared(config.eventId);
    const grant = await inventory.grantAdmissions(next.map((n) => n.account_id));
    const admittedNow = next.slice(0, grant.granted);
    const last = admittedNow[admittedNow.length - 1];
    // Fans the inventory could not serve yet keep their place; the rest of the quota carries over (bounded).
    const carry = grant.granted < next.length ? 0 : Math.min(quota - wanted, state.rate_per_s);
    this.sql`UPDATE state SET threshold = ${last ? last.order_key : state.threshold}, admitted = admitted + ${admittedNow.length}, carry = ${carry}, last_tick = ${now},
      available = ${grant.available}, held = ${grant.held}, sold_out = ${grant.soldOut ? 1 : 0} WHERE id = 1`;
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
    const counts = this.sql<{ lobby: number; late: number; flagged: number }>`
      SELECT coalesce(sum(order_key < ${LATE_BLOCK_START}), 0) AS lobby, coalesce(sum(order_key >= ${LATE_BLOCK_START} AND order_key < ${FLAGGED_BLOCK_START}), 0) AS late,
        coalesce(sum(order_key >= ${FLAGGED_BLOCK_START}), 0) AS flagged FROM entrants`.one();
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
    const cached = this.sql<{ json: string; at: number; entrants: number }>`SELECT json, at, entrants FROM quantiles WHERE id = 1`.toArray()[0];
    if (cached && (cached.entrants === lobby || now - cached.at < QUANTILE_REFRESH_MS)) return readStoredJson(storedQuantiles, cached.json, "key quantiles");
    const values: number[] = [];
    if (lobby > 0) {
      const step = Math.max(1, Math.floor(lobby / QUANTILES));
      const rows = this.sql<{ order_key: number }>`
        SELECT order_key FROM (SELECT order_key, row_number() OVER (ORDER BY order_key) AS rank FROM entrants WHERE order_key < ${LATE_BLOCK_START}) WHERE rank % ${step} = 0`.toArray();
      values.push(...rows.map((r) => r.order_key));
    }
    this.sql`INSERT OR REPLACE INTO quantiles (id, json, at, entrants) VALUES (1, ${JSON.stringify(values)}, ${now}, ${lobby})`;
    return values;
  }
}

function blockOf(orderKey: number): "lobby" | "late" | "flagged" {
  return orderKey >= FLAGGED_BLOCK_START ? "flagged" : orderKey >= LATE_BLOCK_START ? "late" : "lobby";
}
