/**
 * One shard of an event's lobby: the fans whose account hashes to it
 * (core/waiting-room/lobby-shards.ts), with their order keys and admissions.
 * Joins and ticket exchanges go to a fan's shard, never to the room, so they
 * scale with the number of shards; the room visits each shard once per tick.
 *
 * - join: a key drawn here, uniform in the lobby block before the sale, by
 *   arrival time after it; evidence about the account (core/waiting-room/
 *   bot-evidence.ts) moves it back, behind everyone, or keeps it out, as the
 *   event's policy says. Joining again returns the same key.
 * - decide: the organizer's decision on a flagged account. "clear": its
 *   penalty goes, and its key becomes the one an unflagged fan joining when
 *   it joined would have drawn (uniform in the lobby block if it joined
 *   before the sale, its own arrival time in the late block after), so it
 *   never passes a fan who arrived before it; evidence no longer moves it.
 *   "confirm": it stays behind everyone (moved to the flagged block if a
 *   lighter penalty had left it elsewhere) and is never admitted.
 * - step (the room's tick, one visit a tick): takes the room's settings and
 *   status, records the fans the room admitted, and answers with the next
 *   fans waiting (by key), which the room merges at its next tick, and the
 *   changes to its histogram of keys (./key-histogram.ts).
 * - exchange: only a fan the room admitted gets an admission, whatever its
 *   key says (issue 13, finding 1: a late arrival's key can sit below the
 *   threshold once the threshold has moved into the flagged block). A cleared
 *   fan's ticket from while it was flagged still counts as its own.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { assessEvidence, flagReason, type Assessment, type EvidenceLimits, type LobbyEvidence } from "../../core/waiting-room/bot-evidence";
import type { ExchangeResult, JoinResult } from "../../core/waiting-room/lobby-shards";
import { arrivalKey, BLOCK_RANGE, blockOf, FLAGGED_BLOCK_START, KEYS_PER_MS, LATE_BLOCK_START, LOBBY_BLOCK_SIZE, type Block } from "../../core/waiting-room/queue-state";
import { log } from "../../core/logger";
import { RequestLog, requestLogEnabled, type RequestCount } from "../lib/request-log";
import { migratedSql } from "../lib/schema-migrations";
import type { Sql, SqlRow } from "../lib/sql";
import { readStoredJson } from "../lib/stored-json";
import { EXACT_KEYS, ShardHistogram, type HistogramAck, type HistogramReport } from "./key-histogram";
import { LOBBY_SHARD_MIGRATIONS } from "./schema";
import { roomSettingsSchema, type RoomSettings } from "./settings";

/** An admission token lives this long (seed: 15 minutes to complete a booking). */
export const ADMISSION_TTL_MS = 15 * 60 * 1000;
/** A late arrival with some evidence against it queues as if it had arrived this much later. */
export const LATE_PENALTY_MS = 10 * 60 * 1000;

/** A join, as the Worker sends it to the account's shard. */
export interface ShardJoin {
  eventId: string;
  shard: number;
  accountId: string;
  /** What the Worker gathered about the account (null: nothing to weigh). */
  evidence: LobbyEvidence | null;
}

export type { ExchangeResult, JoinResult } from "../../core/waiting-room/lobby-shards";

/** The organizer's decision on a flagged account. */
export type BotFlagDecision = "clear" | "confirm";

/** What a decision did to the account's place in line ("absent": not in line; the decision still holds when it joins). */
export type DecisionOutcome = "moved" | "unchanged" | "absent";

/** What weighing new evidence did to an entrant. */
export type PenaltyOutcome = "moved" | "removed" | "unchanged" | "absent";

/** The room's tick, as one shard sees it. */
export interface ShardStep {
  settings: RoomSettings;
  soldOut: boolean;
  /** The last histogram report the room applied from this shard (null: send it whole). */
  ack: HistogramAck | null;
  /** Admissions the room granted to fans of this shard and has not seen recorded yet. */
  admit: string[];
  /** How many of the next waiting fans to list (0: none). */
  peek: number;
  /** The room's number for this visit: a shard whose list goes stale before the room merges it says so by this number. */
  visit: number;
}

/** A fan waiting in line. */
export interface Waiting {
  accountId: string;
  orderKey: number;
}

/** This shard's answer to a tick. */
export interface ShardStepResult {
  report: HistogramReport;
  /** The first waiting fans by key (at most `peek`). */
  next: Waiting[];
  /** True when more fans wait behind `next`. */
  more: boolean;
}

/** One entrant row, as stored. */
export interface EntrantRow extends SqlRow {
  account_id: string;
  order_key: number;
  joined_at: number;
  flagged: string | null;
  penalty_level: number;
  admitted: number;
  admission_id: string | null;
  admission_expires_at: number | null;
}

const statusSchema = z.object({ sold_out: z.number() });
const decisionSchema = z.object({ decision: z.enum(["clear", "confirm"]) });

function randomBits(bits: number): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  const high = (words[0] ?? 0) % 2 ** Math.max(0, bits - 32);
  return bits > 32 ? high * 2 ** 32 + (words[1] ?? 0) : (words[1] ?? 0) % 2 ** bits;
}

const TIE_BREAK_BITS = Math.log2(KEYS_PER_MS);

function limitsOf(settings: RoomSettings): EvidenceLimits {
  return { botPolicy: settings.botPolicy, maxAccountsPerDevice: settings.maxAccountsPerDevice, maxAccountsPerIp: settings.maxAccountsPerIp };
}

/** One shard of an event's lobby, addressed as `<eventId>#<shard>`. */
export class LobbyShard extends DurableObject<Env> {
  private readonly sql: Sql;
  private readonly requests: RequestLog;
  private settings: RoomSettings | undefined;
  /** The room's settings while they are being fetched, shared by the joins that arrive meanwhile. */
  private fetching: Promise<RoomSettings> | undefined;
  private histogram: ShardHistogram | undefined;
  /**
   * The list this shard gave the room at its last visit, which the room merges
   * at its next tick: its last key and whether it held every waiting fan.
   * A key added, moved or removed inside it makes it stale (see `keyChanged`).
   * "unknown" until this instance's first visit: one started since the last
   * visit (the platform restarts objects) cannot know what it listed then, so
   * any change counts as inside it.
   */
  private listed: { eventId: string; visit: number; horizon: number; complete: boolean } | "unknown" | undefined = "unknown";
  /** The notice to the room that the list went stale (until the next list): every change after it waits for it too. */
  private staleNotice: Promise<void> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = migratedSql(ctx, LOBBY_SHARD_MIGRATIONS);
    this.requests = new RequestLog(this.sql, requestLogEnabled(env));
  }

  // ---------------------------------------------------------------- fans

  /** Puts an account in line, once: joining again returns the same key (further back if new evidence says so). */
  async join(request: ShardJoin): Promise<JoinResult> {
    this.requests.count("join");
    const settings = await this.settingsFor(request.eventId, request.shard);
    this.keys(); // counted from storage before this join changes it
    const now = Date.now();
    const limits = limitsOf(settings);
    const decision = this.decisionOf(request.accountId);
    const assessment = request.evidence && decision !== "clear" ? assessEvidence(request.evidence, limits, now) : null;
    const existing = this.entrant(request.accountId);
    if (existing) {
      const weighed = assessment ? this.weigh(existing, assessment, settings, now) : "unchanged";
      await this.staleNoticeSent();
      if (weighed === "removed" && assessment) return { ok: false, reason: "refused", assessment, limits };
      const current = this.entrant(request.accountId) ?? existing;
      return { ok: true, orderKey: current.order_key, joinedAt: current.joined_at, block: blockOf(current.order_key), rejoined: true, saleEndsAt: settings.saleEndsAt, assessment, limits };
    }
    if (now < settings.lobbyOpensAt) return { ok: false, reason: "lobby_closed" };
    if (now >= settings.saleEndsAt) return { ok: false, reason: "sale_ended" };
    const level = decision === "confirm" ? 2 : (assessment?.level ?? 0);
    if (assessment && level === 2 && settings.botPolicy === "refuse") return { ok: false, reason: "refused", assessment, limits };
    const flagged = level === 0 ? null : assessment ? flagReason(assessment) : "confirmed";
    const orderKey = this.ctx.storage.transactionSync(() => {
      const key = this.uniqueKey(() => this.freshKey(settings, level, now));
      this.sql`INSERT INTO entrants (account_id, order_key, joined_at, flagged, penalty_level)
        VALUES (${request.accountId}, ${key}, ${now}, ${flagged}, ${level})`;
      return key;
    });
    this.keys().add(orderKey);
    this.keyChanged(orderKey, blockOf(orderKey) !== "lobby");
    await this.staleNoticeSent();
    return { ok: true, orderKey, joinedAt: now, block: blockOf(orderKey), rejoined: false, saleEndsAt: settings.saleEndsAt, assessment, limits };
  }

  /**
   * Exchanges an admitted fan's lobby ticket for an admission: the id and
   * expiry of the admission token the Worker signs. Asking again while it is
   * valid returns the same admission (one attempt key per fan). A ticket
   * whose key is no longer the fan's is void, except the flagged ticket of a
   * fan the organizer cleared since (see `ticketStands`).
   */
  exchange(accountId: string, orderKey: number): ExchangeResult {
    this.requests.count("exchange");
    const row = this.entrant(accountId);
    if (!row || !this.ticketStands(row, orderKey)) return { ok: false, reason: "not_in_lobby" };
    if (row.admitted !== 1) return { ok: false, reason: this.soldOut() ? "sold_out" : "not_admitted_yet" };
    const now = Date.now();
    if (row.admission_id && (row.admission_expires_at ?? 0) > now) return { ok: true, admissionId: row.admission_id, expiresAt: row.admission_expires_at ?? now };
    const admissionId = crypto.randomUUID();
    const expiresAt = now + ADMISSION_TTL_MS;
    this.sql`UPDATE entrants SET admission_id = ${admissionId}, admission_expires_at = ${expiresAt} WHERE account_id = ${accountId}`;
    return { ok: true, admissionId, expiresAt };
  }

  /**
   * Weighs new evidence about accounts already in line (an address or device
   * they share went over its limit since they joined): each moves back, or
   * out under the policy "refuse", if it now weighs more than when it
   * joined. Admitted fans keep their admission.
   */
  async penalize(eventId: string, shard: number, accounts: { accountId: string; evidence: LobbyEvidence }[]): Promise<{ accountId: string; outcome: PenaltyOutcome; assessment: Assessment }[]> {
    this.requests.count("penalize");
    const settings = await this.settingsFor(eventId, shard);
    this.keys(); // counted from storage before the moves change it
    const now = Date.now();
    const outcomes = accounts.map(({ accountId, evidence }) => {
      const assessment = assessEvidence(evidence, limitsOf(settings), now);
      const row = this.entrant(accountId);
      return { accountId, assessment, outcome: row ? this.weigh(row, assessment, settings, now) : "absent" };
    });
    await this.staleNoticeSent();
    return outcomes;
  }

  /**
   * Records the organizer's decision on an account (see the header: clear or
   * confirm) and moves it in line if it waits there. Deciding the same again
   * changes nothing; an admitted fan keeps its admission.
   */
  async decide(eventId: string, shard: number, accountId: string, decision: BotFlagDecision): Promise<DecisionOutcome> {
    this.requests.count("decide");
    const settings = await this.settingsFor(eventId, shard);
    this.keys(); // counted from storage before the move changes it
    if (this.decisionOf(accountId) === decision) return this.entrant(accountId) ? "unchanged" : "absent";
    const now = Date.now();
    const move = this.ctx.storage.transactionSync(() => {
      this.sql`INSERT INTO decisions (account_id, decision) VALUES (${accountId}, ${decision}) ON CONFLICT (account_id) DO UPDATE SET decision = excluded.decision`;
      const row = this.entrant(accountId);
      if (!row || row.admitted === 1) return row ? null : undefined;
      if (decision === "clear") {
        const key = this.uniqueKey(() => this.freshKey(settings, 0, row.joined_at), accountId);
        this.sql`UPDATE entrants SET order_key = ${key}, flagged = NULL, penalty_level = 0 WHERE account_id = ${accountId}`;
        return { from: row.order_key, to: key };
      }
      const key = row.order_key >= FLAGGED_BLOCK_START ? row.order_key : this.uniqueKey(() => arrivalKey(FLAGGED_BLOCK_START, now, randomBits(TIE_BREAK_BITS)), accountId);
      this.sql`UPDATE entrants SET order_key = ${key}, flagged = ${row.flagged ?? "confirmed"}, penalty_level = 2 WHERE account_id = ${accountId}`;
      return { from: row.order_key, to: key };
    });
    if (move === undefined) return "absent";
    if (move === null || move.from === move.to) return "unchanged";
    this.keys().remove(move.from);
    this.keys().add(move.to);
    this.keyChanged(Math.min(move.from, move.to), false);
    await this.staleNoticeSent();
    return "moved";
  }

  // ---------------------------------------------------------------- the room

  /** The room's tick (see `ShardStep`). */
  step(step: ShardStep): ShardStepResult {
    this.requests.count("step");
    this.keepSettings(step.settings);
    this.keepStatus(step.soldOut);
    this.markAdmitted(step.admit);
    // Read as arrays (.raw()): the room's tick visits every shard, and a row object per listed fan cost a third of the read.
    const rows = step.peek > 0 ? this.sql<{ account_id: string; order_key: number }>`
      SELECT account_id, order_key FROM entrants INDEXED BY entrants_waiting
      WHERE admitted = 0 AND account_id NOT IN (SELECT account_id FROM decisions WHERE decision = 'confirm')
      ORDER BY order_key LIMIT ${step.peek + 1}`.raw() : [];
    const next: Waiting[] = [];
    let more = false;
    for (const [accountId, orderKey] of rows) {
      if (next.length === step.peek) {
        more = true;
        break;
      }
      next.push({ accountId: String(accountId), orderKey: Number(orderKey) });
    }
    // A visit that lists nobody (organizers' stats, ticks outside the sale) leaves the room's list from the last one standing.
    if (step.peek > 0) {
      this.listed = { eventId: step.settings.eventId, visit: step.visit, horizon: next[next.length - 1]?.orderKey ?? -Infinity, complete: !more };
      this.staleNotice = undefined;
    }
    const report = this.keys().report(step.ack, (block) => this.blockKeys(block));
    return { report, next, more };
  }

  /** The room's new settings (it reloaded them from Postgres). */
  applySettings(settings: RoomSettings): void {
    this.requests.count("settings");
    this.keepSettings(settings);
  }

  /** Requests this shard served, per second and kind (when counting is on). */
  requestCounts(): RequestCount[] {
    return this.requests.read();
  }

  /** Bytes of SQLite storage this shard uses. */
  storageBytes(): number {
    return this.ctx.storage.sql.databaseSize;
  }

  // ---------------------------------------------------------------- internals

  /**
   * A waiting fan's key was added, moved or removed at `key`: if that falls
   * inside the list the room will merge at its next tick, the list is stale,
   * and the room hears so (it then visits the shards before admitting). Inside
   * means at or below the list's last key, or anywhere when the list held
   * every waiting fan, except for an arrival key (after the sale start, or a
   * flagged one): it follows every key listed, which all arrived earlier.
   * (Not every key other shards listed: their flagged keys follow a late
   * arrival here. The room visits again when its merge reaches the flagged
   * block, rather than every arrival telling it.)
   */
  private keyChanged(key: number, arrival: boolean): void {
    const listed = this.listed;
    if (!listed || (listed !== "unknown" && key > listed.horizon && (!listed.complete || arrival))) return;
    this.listed = undefined;
    // An instance that never had the room's settings was never visited: the room registers it with its first call.
    const eventId = listed === "unknown" ? (this.settings ?? this.storedSettings())?.eventId : listed.eventId;
    if (eventId === undefined) return;
    // The room then merges the list once: the change is in the list of its next visit.
    const visit = listed === "unknown" ? null : listed.visit;
    this.staleNotice = this.env.WAITING_ROOM.getByName(eventId)
      .listsStale(visit)
      .catch((error: unknown) => log.warn("lobby_lists_stale_notice_failed", { eventId, visit, error: String(error) }));
  }

  /** Waits for the room to have heard that its list went stale, if it did: a change that has answered is in what the room merges. */
  private async staleNoticeSent(): Promise<void> {
    await this.staleNotice;
  }

  /**
   * True when a lobby ticket carrying `orderKey` is the entrant's: its key, or
   * a key in the flagged block it held before the organizer cleared it. The
   * clear moved it to an unflagged key without a new ticket (the fan's page
   * keeps the one it was given), and the room admits it under that key.
   */
  private ticketStands(row: EntrantRow, orderKey: number): boolean {
    if (row.order_key === orderKey) return true;
    return blockOf(orderKey) === "flagged" && blockOf(row.order_key) !== "flagged" && this.decisionOf(row.account_id) === "clear";
  }

  private entrant(accountId: string): EntrantRow | undefined {
    return this.sql<EntrantRow>`SELECT * FROM entrants WHERE account_id = ${accountId}`.toArray()[0];
  }

  private decisionOf(accountId: string): BotFlagDecision | null {
    const row = this.sql`SELECT decision FROM decisions WHERE account_id = ${accountId}`.toArray()[0];
    return row ? decisionSchema.parse(row).decision : null;
  }

  private soldOut(): boolean {
    const row = this.sql`SELECT sold_out FROM status WHERE id = 1`.toArray()[0];
    return row ? statusSchema.parse(row).sold_out === 1 : false;
  }

  /** Stores the line's sold-out status when it changed (a tick that changes nothing writes nothing). */
  private keepStatus(soldOut: boolean): void {
    if (this.soldOut() === soldOut) return; // no row reads as not sold out, which needs no row either
    this.sql`INSERT INTO status (id, sold_out) VALUES (1, ${soldOut ? 1 : 0}) ON CONFLICT (id) DO UPDATE SET sold_out = excluded.sold_out`;
  }

  /** One statement for a tick's admissions at this shard, however many (nothing read back: the tick waits on every shard's). */
  private markAdmitted(accountIds: string[]): void {
    if (accountIds.length > 0) this.sql`UPDATE entrants SET admitted = 1 WHERE account_id IN (SELECT value FROM json_each(${JSON.stringify(accountIds)})) AND admitted = 0`;
  }

  /** A new key: uniform in the lobby block before the sale (its back half with some evidence), by arrival time after it, behind everyone with strong evidence. */
  private freshKey(settings: RoomSettings, level: number, now: number): number {
    const tieBreak = randomBits(TIE_BREAK_BITS);
    if (level === 2) return arrivalKey(FLAGGED_BLOCK_START, now, tieBreak);
    if (now < settings.saleStartsAt) {
      const key = randomBits(Math.log2(LOBBY_BLOCK_SIZE));
      return level === 1 ? LOBBY_BLOCK_SIZE / 2 + Math.floor(key / 2) : key;
    }
    return arrivalKey(LATE_BLOCK_START, now + (level === 1 ? LATE_PENALTY_MS : 0), tieBreak);
  }

  /** Tries `draw` (attempt 0, 1, ...) until its key is free in this shard (or is `accountId`'s own). */
  private uniqueKey(draw: (attempt: number) => number, accountId = ""): number {
    let attempt = 0;
    let key = draw(attempt);
    while (this.sql`SELECT 1 FROM entrants WHERE order_key = ${key} AND account_id != ${accountId}`.toArray().length > 0) key = draw(++attempt);
    return key;
  }

  /** Moves a waiting entrant back (or out) when `assessment` weighs more than what placed it. */
  private weigh(row: EntrantRow, assessment: Assessment, settings: RoomSettings, now: number): PenaltyOutcome {
    if (row.admitted === 1 || assessment.level <= row.penalty_level || this.decisionOf(row.account_id)) return "unchanged";
    if (assessment.level === 2 && settings.botPolicy === "refuse") {
      this.sql`DELETE FROM entrants WHERE account_id = ${row.account_id}`;
      this.keys().remove(row.order_key);
      this.keyChanged(row.order_key, false);
      return "removed";
    }
    const key = this.ctx.storage.transactionSync(() => {
      const moved = this.uniqueKey((attempt) => this.movedKey(row.order_key, assessment.level, now) + attempt, row.account_id);
      this.sql`UPDATE entrants SET order_key = ${moved}, flagged = ${flagReason(assessment)}, penalty_level = ${assessment.level} WHERE account_id = ${row.account_id}`;
      return moved;
    });
    this.keys().remove(row.order_key);
    this.keys().add(key);
    this.keyChanged(row.order_key, false);
    this.keyChanged(key, false);
    return "moved";
  }

  /** Where a key moves for a penalty: behind everyone, or the back half of the lobby block, or 10 minutes later in the late block. */
  private movedKey(key: number, level: number, now: number): number {
    if (level === 2) return arrivalKey(FLAGGED_BLOCK_START, now, randomBits(TIE_BREAK_BITS));
    if (key < LATE_BLOCK_START) return LOBBY_BLOCK_SIZE / 2 + Math.floor(key / 2);
    if (key < FLAGGED_BLOCK_START) return Math.min(FLAGGED_BLOCK_START - 1, key + LATE_PENALTY_MS * KEYS_PER_MS + randomBits(TIE_BREAK_BITS));
    return key;
  }

  /** Every key of a small block, ascending (used while it has fewer than EXACT_KEYS). */
  private blockKeys(block: Block): number[] {
    const { start, end } = BLOCK_RANGE[block];
    return this.sql<{ order_key: number }>`SELECT order_key FROM entrants WHERE order_key >= ${start} AND order_key < ${end} ORDER BY order_key LIMIT ${EXACT_KEYS}`
      .toArray()
      .map((r) => r.order_key);
  }

  /** The histogram of this shard's keys, built from storage once per instance (before any change to the keys it would then miss or count twice). */
  private keys(): ShardHistogram {
    this.histogram ??= new ShardHistogram(Array.from(this.sql<{ order_key: number }>`SELECT order_key FROM entrants`, (r) => r.order_key));
    return this.histogram;
  }

  private keepSettings(settings: RoomSettings): void {
    const current = this.settings ?? this.storedSettings();
    if (current && current.version >= settings.version && current.eventId === settings.eventId) return;
    this.sql`INSERT INTO settings (id, json) VALUES (1, ${JSON.stringify(settings)}) ON CONFLICT (id) DO UPDATE SET json = excluded.json`;
    this.settings = settings;
  }

  private storedSettings(): RoomSettings | undefined {
    const row = this.sql<{ json: string }>`SELECT json FROM settings WHERE id = 1`.toArray()[0];
    this.settings = row ? readStoredJson(roomSettingsSchema, row.json, "lobby shard settings") : undefined;
    return this.settings;
  }

  /** The room's settings: kept here once the room sent them; the first join asks the room (which registers this shard). */
  private async settingsFor(eventId: string, shard: number): Promise<RoomSettings> {
    const known = this.settings ?? this.storedSettings();
    if (known) return known;
    this.fetching ??= this.env.WAITING_ROOM.getByName(eventId)
      .shardSettings(eventId, shard)
      .then((settings) => {
        this.keepSettings(settings);
        return settings;
      })
      .finally(() => (this.fetching = undefined));
    return this.fetching;
  }
}
