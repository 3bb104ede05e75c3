/**
 * The waiting room of one hot event (seed "Component 1"): the object that
 * admits. Fans join the event's lobby shards (./lobby-shard.ts), never this
 * object; it visits each shard once per tick.
 *
 * Fairness without a shuffle: everyone who joins before the sale gets a
 * uniformly random order key in the lobby block, so ascending keys are a
 * uniform shuffle of the lobby across all shards; later arrivals get keys by
 * arrival time above that block; accounts with strong bot evidence get keys
 * above both (core/waiting-room/queue-state.ts).
 *
 * Each tick (the alarm, every second while the lobby is open) visits every
 * shard once, and it:
 * 1. takes the shards' lists of their next waiting fans from the previous
 *    tick's visit (as many as a tick admits, shared out, plus a margin; the
 *    last tick before the sale takes them for the first). A tick after a
 *    restart or a failed visit, one whose lists a shard reported stale, one
 *    whose lists ran dry (a short line, which newcomers may have joined
 *    since), and one whose lists reach the flagged block (a newcomer since
 *    queues ahead of it, unannounced) visit the shards for them first;
 * 2. merges the lists (./next-in-line.ts) into the next fans in queue order,
 *    as many as the admission rate allows since the last tick;
 * 3. asks the inventory to promise each of them what they may buy
 *    (`grantAdmissions`): admission never outruns the places;
 * 4. visits every shard: it records its granted fans as admitted (only they
 *    can exchange their tickets; a fan's key alone admits nobody), takes the
 *    sold-out status, reports the changes to its histogram of keys, and lists
 *    its next waiting fans for the next tick. One visit a tick, not two: the
 *    tick's time was mostly these calls (README, "How a hot sale runs");
 * 5. builds the queue document from the merged histograms (counts and
 *    quantiles: O(buckets), not O(fans)) and publishes it: in memory and
 *    SQLite for the edge cache to fetch (at most once per data centre per
 *    second), and to KV as the durable fallback, at most once a second and
 *    never at the cost of the next tick.
 *
 * Lists a second old are fair to merge: fans who join during the sale get
 * keys by arrival time, behind everyone listed, and any other change inside
 * a list (a join before the sale, new evidence, an organizer's decision)
 * makes its shard tell the room (`listsStale`) before the change answers.
 * A shard's first call (its first fan) makes the lists stale too: they lack
 * it. So does the first change at a shard restarted since its last visit: it
 * no longer knows what it listed.
 *
 * Sold out is "for now" until the sale ends. When the inventory has no place
 * free for the queue the room says so and re-checks every
 * SOLD_OUT_RECHECK_MS instead of every tick; places come back (holds that run
 * out, declined payments, refunds, cancellations) and the line moves on in
 * queue order, within what the inventory grants. After the sale ends nobody
 * more is admitted.
 *
 * A place that comes back goes to the waitlist first, then to the line: the
 * inventory keeps it out of the room's grants until the waitlist's pass has
 * offered it, or for WAITLIST_FIRST_MS at most. Nothing is promised twice:
 * promises to admitted fans and holds (a waitlist offer is a hold) come out of
 * the same free places in the inventory.
 *
 * The room follows its event: `configure` reloads the event's settings from
 * Postgres (the admin routes call it after every change), pushes them to the
 * shards at once and moves the alarm, so a sale brought forward or postponed
 * opens its lobby and admits at the new times.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { loadConfig } from "../../core/config";
import { createDb } from "../../core/db/client";
import { log } from "../../core/logger";
import { lobbyShardCount, shardName } from "../../core/waiting-room/lobby-shards";
import { FLAGGED_BLOCK_START, queueStateKey, queueStateSchema, type QueueState } from "../../core/waiting-room/queue-state";
import { RequestLog, requestLogEnabled, type RequestCount } from "../lib/request-log";
import { migratedSql } from "../lib/schema-migrations";
import type { Sql, SqlRow } from "../lib/sql";
import { readStoredJson } from "../lib/stored-json";
import { MergedHistogram } from "./key-histogram";
import type { LobbyShard, ShardStepResult } from "./lobby-shard";
import { nextInLine, type ShardList } from "./next-in-line";
import { loadEventSettings } from "./postgres";
import { WAITING_ROOM_MIGRATIONS } from "./schema";
import { roomSettingsSchema, type RoomSettings } from "./settings";

export { ADMISSION_TTL_MS, type ExchangeResult, type JoinResult } from "./lobby-shard";
export type { RoomSettings } from "./settings";

/** How often the threshold moves and the document is rebuilt. */
export const TICK_MS = 1_000;
/** After the sale ends, publish this much longer (slowly). */
const IDLE_TICK_MS = 15_000;
/** While sold out, ask the inventory this often whether places came back (not every tick). */
export const SOLD_OUT_RECHECK_MS = 15_000;
/** KV takes the document at most this often: its limit is one write per key per second. */
export const KV_PUT_INTERVAL_MS = 1_000;
/** The KV copy outlives any sale. */
const KV_TTL_SECONDS = 7 * 24 * 3600;
/** Each shard lists this many fans beyond its share of a tick, so a tick seldom stops at a shard's horizon. */
const PEEK_MARGIN = 8;
/** The live view takes the last tick's document if it is at most this many tick intervals old (one may run late), else visits the shards. */
const LIVE_VIEW_MAX_TICKS = 2;
/** A tick merges the lists the previous tick's visit took, if they are at most this old (else it visits the shards first). */
const PREFETCH_MAX_AGE_MS = 2 * TICK_MS;
/** A shard that stopped a tick short lists up to this many times its share the next time. */
const MAX_PEEK_BOOST = 64;

interface StateRow extends SqlRow {
  threshold: number;
  admitted: number;
  carry: number;
  last_tick: number;
  sold_out: number;
  available: number;
  held: number;
  rate_per_s: number;
  paused: number;
  kv_put_at: number;
}

/** The fans one tick admits at this state's rate and carry: what a visit lists ahead for the next tick. */
function oneTick(state: StateRow): number {
  return Math.floor(state.carry + (state.rate_per_s * TICK_MS) / 1000);
}

/** One visit to every shard: its number, the shards' lists (null when a shard did not answer) and whether it asked for them. */
interface ShardVisit {
  visit: number;
  lists: ShardList[] | null;
  peeked: boolean;
}

/** One tick, as the room records it when counting is on. */
export interface TickRecord {
  at: number;
  ms: number;
  admitted: number;
  waiting: number;
  /** Milliseconds per phase of the tick: shards' steps, the inventory's grant, the visit that records admissions and lists the next fans, the document. */
  phases: TickPhases;
}

const accountIdsSchema = z.array(z.string());
const tickPhasesSchema = z.object({ step: z.number(), grant: z.number(), record: z.number(), publish: z.number() });

/** Where a tick's time went (ms). */
export type TickPhases = z.infer<typeof tickPhasesSchema>;

function noPhases(): TickPhases {
  return { step: 0, grant: 0, record: 0, publish: 0 };
}

/** The waiting room of a hot event, addressed by event id. */
export class WaitingRoom extends DurableObject<Env> {
  private readonly sql: Sql;
  private readonly requests: RequestLog;
  private settings: RoomSettings | undefined;
  /** The first load from Postgres, shared by the requests that arrive while it runs. */
  private configuring: Promise<RoomSettings> | undefined;
  /** The shards' histograms, merged (memory: rebuilt from whole reports after a restart). */
  private readonly keys = new MergedHistogram();
  /** Shards that stopped the last tick short, and how much longer their next list is. */
  private readonly peekBoost = new Map<number, number>();
  private latest: QueueState | undefined;
  /** The shards' lists of next fans from the last tick's visit (memory only: after a restart the tick visits the shards first). */
  private prefetched: { at: number; visit: number; lists: ShardList[] } | undefined;
  /** Visits to the shards, numbered from the clock so that a restarted room's numbers follow its last instance's (a shard names the visit whose list went stale). */
  private visits = Date.now();
  /** The latest visit a shard said its list from went stale. */
  private staleVisit = -1;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = migratedSql(ctx, WAITING_ROOM_MIGRATIONS);
    this.requests = new RequestLog(this.sql, requestLogEnabled(env));
  }

  // ---------------------------------------------------------------- settings

  /**
   * (Re)loads the event's settings from Postgres, keeps the room's number of
   * shards, pushes them to every shard and moves the alarm to what the new
   * times call for. The admin routes call it after every change to the event.
   */
  async configure(eventId: string): Promise<RoomSettings> {
    this.requests.count("configure");
    const { db, close } = createDb(loadConfig(this.env));
    let event;
    try {
      event = await loadEventSettings(db, eventId);
    } finally {
      await close();
    }
    if (!event) throw new Error(`event ${eventId} not found`);
    const previous = this.loadedSettings();
    const settings: RoomSettings = { ...event, shards: previous?.shards ?? lobbyShardCount(event.expectedDemand), version: (previous?.version ?? 0) + 1 };
    this.ctx.storage.transactionSync(() => {
      this.sql`INSERT INTO config (id, json) VALUES (1, ${JSON.stringify(settings)}) ON CONFLICT (id) DO UPDATE SET json = excluded.json`;
      this.sql`INSERT INTO state (id, rate_per_s) VALUES (1, ${settings.admissionRatePerSecond}) ON CONFLICT (id) DO UPDATE SET rate_per_s = excluded.rate_per_s`;
    });
    this.settings = settings;
    const pushed = await Promise.allSettled(this.shardIndexes().map((shard) => this.shard(settings, shard).applySettings(settings)));
    // A shard that missed the push gets the settings with the next tick: make that tick now.
    const missed = pushed.some((p) => p.status === "rejected");
    await this.schedule(missed ? Date.now() : undefined);
    return settings;
  }

  /** A shard's first call: the room's settings (loaded once), and the shard is visited from the next tick on. */
  async shardSettings(eventId: string, shard: number): Promise<RoomSettings> {
    this.requests.count("shard_settings");
    const settings = this.loadedSettings() ?? (await this.configureOnce(eventId));
    if (!Number.isInteger(shard) || shard < 0 || shard >= settings.shards) throw new Error(`event ${eventId} has no lobby shard ${shard}`);
    if (this.sql`SELECT 1 FROM shards WHERE shard = ${shard}`.toArray().length === 0) {
      this.sql`INSERT INTO shards (shard) VALUES (${shard})`;
      // Lists taken before this shard's first fan miss it, and it is about to answer its first join: visit again before admitting.
      this.listsWentStale(this.visits);
    }
    return settings;
  }

  /** How many lobby shards the event has (fixed once the room first loaded it): the Worker routes each account to one. */
  async lobbyShards(eventId: string): Promise<number> {
    this.requests.count("lobby_shards");
    return (this.loadedSettings() ?? (await this.configureOnce(eventId))).shards;
  }

  // ---------------------------------------------------------------- organizers and fans

  /** Changes the admission rate (fans per second) or pauses admission, live; returns the new document. */
  async control(options: { ratePerSecond?: number | undefined; paused?: boolean | undefined }): Promise<QueueState> {
    this.requests.count("control");
    if (options.ratePerSecond !== undefined) this.sql`UPDATE state SET rate_per_s = ${options.ratePerSecond} WHERE id = 1`;
    if (options.paused !== undefined) this.sql`UPDATE state SET paused = ${options.paused ? 1 : 0}, carry = 0 WHERE id = 1`;
    const settings = this.requireSettings();
    await this.stepShards(settings, this.state(), 0);
    const now = Date.now();
    const document = this.document(now);
    await this.publish(settings, document);
    await this.schedule();
    return document;
  }

  /** The queue as it stands now, counted afresh from the shards (organizers' live stats). */
  async snapshot(): Promise<QueueState> {
    this.requests.count("snapshot");
    await this.stepShards(this.requireSettings(), this.state(), 0);
    return this.document(Date.now());
  }

  /**
   * The organizers' live view of the queue: the last tick's document while the
   * room ticks (at most LIVE_VIEW_MAX_TICKS of its intervals old: a second
   * while selling, SOLD_OUT_RECHECK_MS while sold out), else counted afresh
   * from the shards (`snapshot`). A console polling the live view during a
   * sale then costs the room one call, not a visit to every shard per poll.
   */
  async liveView(): Promise<QueueState> {
    const latest = this.latest;
    const settings = this.loadedSettings();
    const interval = settings ? this.tickInterval(settings, this.state(), Date.now()) : TICK_MS;
    if (!latest || Date.now() - latest.updatedAt > LIVE_VIEW_MAX_TICKS * interval) return this.snapshot();
    this.requests.count("live_view");
    return latest;
  }

  /** The last published document (null before the first): what the edge cache fetches on a miss, once per data centre per second. */
  published(): QueueState | null {
    this.requests.count("document");
    if (this.latest) return this.latest;
    const row = this.sql<{ json: string }>`SELECT json FROM published WHERE id = 1`.toArray()[0];
    this.latest = row ? readStoredJson(queueStateSchema, row.json, "published queue document") : undefined;
    return this.latest ?? null;
  }

  /**
   * A shard's list from visit `visit` went stale before the room merged it (a
   * key added, moved or removed inside it): the next tick visits the shards
   * before it admits anyone. `visit` null: the shard restarted since it was
   * visited and cannot say which list it gave, so every visit so far is stale.
   */
  listsStale(visit: number | null): void {
    this.requests.count("lists_stale");
    this.listsWentStale(visit ?? this.visits);
  }

  /** Forgets the lists of visits up to `visit`, kept or still to come back. */
  private listsWentStale(visit: number): void {
    this.staleVisit = Math.max(this.staleVisit, visit);
    if (this.prefetched && this.prefetched.visit <= visit) this.prefetched = undefined;
  }

  /** Requests this object served, per second and kind (when counting is on). */
  requestCounts(): RequestCount[] {
    return this.requests.read();
  }

  /** The ticks this object ran (when counting is on). */
  tickLog(): TickRecord[] {
    return this.sql<{ at: number; ms: number; admitted: number; waiting: number; phases: string | null }>`SELECT at, ms, admitted, waiting, phases FROM tick_log ORDER BY at`
      .toArray()
      .map((row) => ({ ...row, phases: row.phases ? readStoredJson(tickPhasesSchema, row.phases, "tick phases") : noPhases() }));
  }

  // ---------------------------------------------------------------- the tick

  /**
   * One tick: admit fans at the rate the inventory can serve, publish,
   * reschedule (every tick while the lobby is open, every
   * SOLD_OUT_RECHECK_MS while sold out, a few slow ticks after the sale
   * ends, then no more). The next tick is set first, so nothing that fails
   * below stops the room.
   */
  override async alarm(): Promise<void> {
    const settings = this.loadedSettings();
    if (!settings) return;
    const now = Date.now();
    await this.ctx.storage.setAlarm(now + TICK_MS);
    const state = this.state();
    const phases = noPhases();
    let admitted = 0;
    if (now >= settings.saleStartsAt && !state.paused && now < settings.saleEndsAt) {
      admitted = await this.admit(settings, state, now, phases);
    } else {
      // The last tick before the sale takes the shards' lists for the first (stale ones are reported, and then it visits again).
      const opening = now < settings.saleStartsAt && now + TICK_MS >= settings.saleStartsAt && !state.paused;
      this.keep(await this.stepShards(settings, state, opening ? oneTick(state) : 0));
      this.sql`UPDATE state SET last_tick = ${now} WHERE id = 1`;
      phases.step = Date.now() - now;
    }
    const publishing = Date.now();
    const document = this.document(now);
    await this.publish(settings, document);
    phases.publish = Date.now() - publishing;
    const next = this.nextTick(settings, this.state(), now);
    if (next === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(next);
    if (this.requests.enabled) {
      const waiting = document.entrants.lobby + document.entrants.late + document.entrants.flagged - document.admitted;
      this.sql`INSERT INTO tick_log (at, ms, admitted, waiting, phases) VALUES (${now}, ${Date.now() - now}, ${admitted}, ${waiting}, ${JSON.stringify(phases)})`;
    }
  }

  /** Admits the next fans the rate allows and the inventory grants; returns how many. */
  private async admit(settings: RoomSettings, state: StateRow, now: number, phases: TickPhases): Promise<number> {
    let mark = Date.now();
    const lap = (phase: keyof TickPhases) => {
      const at = Date.now();
      phases[phase] += at - mark;
      mark = at;
    };
    // While sold out the re-check is seldom: ask for one tick's worth of fans, not for every second since the last one.
    const elapsed = state.sold_out === 1 || state.last_tick === 0 ? TICK_MS : Math.max(0, now - Math.max(state.last_tick, settings.saleStartsAt));
    const quota = state.carry + (state.rate_per_s * elapsed) / 1000;
    const wanted = Math.floor(quota);
    // The shards' lists from the last tick's visit, if fresh and none reported stale; else visit them now.
    const prefetched = this.prefetched && now - this.prefetched.at <= PREFETCH_MAX_AGE_MS ? this.prefetched.lists : undefined;
    this.prefetched = undefined;
    let lists = prefetched ?? (await this.stepShards(settings, state, wanted)).lists;
    // A shard that did not answer might hold the next fans: admit nobody rather than out of order (the quota carries over).
    let line = lists ? nextInLine(lists, wanted) : { fans: [], shortShards: [] };
    // Lists that ran dry (every waiting fan listed, fewer than the tick admits) miss whoever joined since: look again. So do
    // lists whose merge reaches the flagged block: a fan who arrived since at a shard that had listed every fan waiting there
    // queues ahead of every flagged key (its shard sent no notice: the arrival follows what it listed), and other shards'
    // lists may hold flagged keys. That costs a second visit a tick only once the line has passed every unflagged fan listed.
    const reachesFlagged = (line.fans[line.fans.length - 1]?.orderKey ?? -1) >= FLAGGED_BLOCK_START;
    if (prefetched && ((line.fans.length < wanted && line.shortShards.length === 0) || reachesFlagged)) {
      lists = (await this.stepShards(settings, state, wanted)).lists;
      line = lists ? nextInLine(lists, wanted) : { fans: [], shortShards: [] };
    }
    lap("step");
    for (const shard of this.shardIndexes()) {
      if (line.shortShards.includes(shard)) this.peekBoost.set(shard, Math.min(MAX_PEEK_BOOST, (this.peekBoost.get(shard) ?? 1) * 2));
      else if (lists) this.peekBoost.delete(shard);
    }
    const grant = await this.env.EVENT_INVENTORY.getByName(settings.eventId).grantAdmissions(
      settings.eventId,
      line.fans.map((fan) => fan.accountId),
    );
    lap("grant");
    const granted = line.fans.slice(0, grant.granted);
    const last = granted[granted.length - 1];
    // Fans the inventory could not serve keep their place; a tick cut short keeps its quota (bounded); otherwise only the fraction carries.
    const cutShort = !lists || line.shortShards.length > 0;
    const carry = grant.granted < line.fans.length ? 0 : Math.min(cutShort ? quota - granted.length : quota - wanted, state.rate_per_s);
    // One statement for the tick's admissions, however many, and a row per shard, not per fan (a row per statement cost a
    // 500-fan tick most of its time, and a row per fan a fifth of what was left). A shard's earlier unrecorded ones stay.
    const byShard = new Map<number, string[]>();
    for (const fan of granted) {
      const accountIds = byShard.get(fan.shard);
      if (accountIds) accountIds.push(fan.accountId);
      else byShard.set(fan.shard, [fan.accountId]);
    }
    const unrecorded = JSON.stringify([...byShard]); // [[shard, [accountId, ...]], ...]
    this.ctx.storage.transactionSync(() => {
      if (granted.length > 0) {
        this.sql`INSERT INTO unrecorded (shard, account_ids) SELECT value ->> 0, value ->> 1 FROM json_each(${unrecorded}) WHERE true
          ON CONFLICT (shard) DO UPDATE SET account_ids = (SELECT json_group_array(value) FROM
            (SELECT value FROM json_each(unrecorded.account_ids) UNION SELECT value FROM json_each(excluded.account_ids)))`;
      }
      this.sql`UPDATE state SET threshold = max(threshold, ${last ? last.orderKey : -1}), admitted = admitted + ${granted.length}, carry = ${carry}, last_tick = ${now},
        available = ${grant.available}, held = ${grant.held}, sold_out = ${grant.soldOut ? 1 : 0} WHERE id = 1`;
    });
    // One visit to every shard: it records its admitted fans (before the document shows the new threshold) and the sold-out
    // status, and lists its next waiting fans for the next tick (a shard that misses it hears of its admissions with the next visit).
    const next = this.state();
    this.keep(await this.stepShards(settings, next, next.sold_out === 1 ? 0 : oneTick(next)));
    lap("record");
    return granted.length;
  }

  /**
   * Visits every shard: gives it the settings, the sold-out status and the
   * admissions it has not recorded yet, applies its histogram report and, with
   * `wanted` > 0, takes its list of next fans (lists null when a shard failed
   * to answer: its list is missing).
   */
  private async stepShards(settings: RoomSettings, state: StateRow, wanted: number): Promise<ShardVisit> {
    const visit = ++this.visits;
    const shards = this.shardIndexes();
    const unrecorded = new Map<number, { json: string; accountIds: string[] }>();
    for (const row of this.sql<{ shard: number; account_ids: string }>`SELECT shard, account_ids FROM unrecorded`) {
      unrecorded.set(row.shard, { json: row.account_ids, accountIds: readStoredJson(accountIdsSchema, row.account_ids, "unrecorded admissions") });
    }
    // A shard holds about wanted / shards of the next fans (Poisson: at 25 each, 46 is 4 standard deviations out).
    const share = Math.ceil((1.5 * wanted) / Math.max(1, shards.length)) + PEEK_MARGIN;
    const results = await Promise.allSettled(
      shards.map((shard) =>
        this.shard(settings, shard).step({
          settings,
          soldOut: state.sold_out === 1,
          ack: this.keys.ack(shard),
          admit: unrecorded.get(shard)?.accountIds ?? [],
          peek: wanted > 0 ? Math.min(wanted, share * (this.peekBoost.get(shard) ?? 1)) : 0,
          visit,
        }),
      ),
    );
    const lists: ShardList[] = [];
    const recorded: [number, string][] = [];
    let complete = true;
    results.forEach((result, i) => {
      const shard = shards[i] ?? 0;
      if (result.status === "rejected") {
        complete = false;
        log.warn("lobby_shard_step_failed", { eventId: settings.eventId, shard, error: String(result.reason) });
        return;
      }
      const answer: ShardStepResult = result.value;
      this.keys.apply(shard, answer.report);
      const sent = unrecorded.get(shard);
      if (sent) recorded.push([shard, sent.json]);
      lists.push({ shard, next: answer.next, more: answer.more });
    });
    this.forgetRecorded(recorded);
    return { visit, lists: complete ? lists : null, peeked: wanted > 0 };
  }

  /** Keeps a visit's lists for the next tick, unless a shard already said they went stale (or there are none). */
  private keep(visit: ShardVisit): void {
    this.prefetched = visit.lists && visit.peeked && visit.visit > this.staleVisit ? { at: Date.now(), visit: visit.visit, lists: visit.lists } : undefined;
  }

  /**
   * Forgets the admissions each shard answered for: only a shard's list as it
   * was sent (a tick may have added to it while a visit was out; then the
   * whole list goes again with the next visit, which a shard takes twice
   * without harm).
   */
  private forgetRecorded(recorded: [number, string][]): void {
    if (recorded.length > 0) this.sql`DELETE FROM unrecorded WHERE (shard, account_ids) IN (SELECT value ->> 0, value ->> 1 FROM json_each(${JSON.stringify(recorded)}))`;
  }

  /** When the alarm should run next (null: never again, the sale is over). */
  private nextTick(settings: RoomSettings, state: StateRow, now: number): number | null {
    if (now >= settings.saleEndsAt) return now < settings.saleEndsAt + IDLE_TICK_MS * 4 ? now + IDLE_TICK_MS : null;
    if (now < settings.lobbyOpensAt) return settings.lobbyOpensAt;
    return now + this.tickInterval(settings, state, now);
  }

  /** The time between ticks during a sale: slower while sold out (nothing to admit until places come back). */
  private tickInterval(settings: RoomSettings, state: StateRow, now: number): number {
    const selling = now >= settings.saleStartsAt && !state.paused;
    return selling && state.sold_out === 1 ? SOLD_OUT_RECHECK_MS : TICK_MS;
  }

  /** Sets the alarm to the next tick the settings call for (or `at`), unless one is due sooner. */
  private async schedule(at?: number): Promise<void> {
    const settings = this.requireSettings();
    const now = Date.now();
    const next = at ?? this.nextTick(settings, this.state(), now);
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
  }

  // ---------------------------------------------------------------- the document

  private document(now: number): QueueState {
    const settings = this.requireSettings();
    const state = this.state();
    return {
      eventId: settings.eventId,
      threshold: state.threshold,
      admitted: state.admitted,
      entrants: this.keys.counts(),
      quantiles: this.keys.quantiles("lobby"),
      lateQuantiles: this.keys.quantiles("late"),
      flaggedQuantiles: this.keys.quantiles("flagged"),
      ratePerSecond: state.rate_per_s,
      paused: state.paused === 1,
      soldOut: state.sold_out === 1,
      available: state.available,
      held: state.held,
      saleStartsAt: settings.saleStartsAt,
      saleEndsAt: settings.saleEndsAt,
      updatedAt: now,
    };
  }

  /**
   * Publishes the document: the edge cache fetches it from here; KV keeps a
   * durable copy, written at most once per KV_PUT_INTERVAL_MS (its limit is
   * one write per key per second). A failed KV write is logged, never thrown.
   */
  private async publish(settings: RoomSettings, document: QueueState): Promise<void> {
    const json = JSON.stringify(document);
    this.latest = document;
    this.sql`INSERT INTO published (id, json) VALUES (1, ${json}) ON CONFLICT (id) DO UPDATE SET json = excluded.json`;
    const putAt = Date.now();
    if (putAt - this.state().kv_put_at < KV_PUT_INTERVAL_MS) return;
    this.sql`UPDATE state SET kv_put_at = ${putAt} WHERE id = 1`;
    try {
      await this.env.QUEUE_STATE.put(queueStateKey(settings.eventId), json, { expirationTtl: KV_TTL_SECONDS });
    } catch (error) {
      log.warn("queue_document_kv_put_failed", { eventId: settings.eventId, error: String(error) });
    }
  }

  // ---------------------------------------------------------------- internals

  private configureOnce(eventId: string): Promise<RoomSettings> {
    this.configuring ??= this.configure(eventId).finally(() => (this.configuring = undefined));
    return this.configuring;
  }

  private loadedSettings(): RoomSettings | undefined {
    if (this.settings) return this.settings;
    const row = this.sql<{ json: string }>`SELECT json FROM config WHERE id = 1`.toArray()[0];
    this.settings = row ? readStoredJson(roomSettingsSchema, row.json, "waiting-room settings") : undefined;
    return this.settings;
  }

  private requireSettings(): RoomSettings {
    const settings = this.loadedSettings();
    if (!settings) throw new Error("waiting room not configured");
    return settings;
  }

  private state(): StateRow {
    return this.sql<StateRow>`SELECT * FROM state WHERE id = 1`.one();
  }

  private shardIndexes(): number[] {
    return this.sql<{ shard: number }>`SELECT shard FROM shards ORDER BY shard`.toArray().map((r) => r.shard);
  }

  private shard(settings: RoomSettings, shard: number): DurableObjectStub<LobbyShard> {
    return this.env.LOBBY_SHARD.getByName(shardName(settings.eventId, shard));
  }
}
