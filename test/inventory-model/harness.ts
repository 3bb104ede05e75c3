/**
 * The contract harness: random operation sequences (fast-check) run against an
 * inventory implementation and the reference model side by side. Every
 * operation's answer is checked against the model; the implementation's
 * stored state is audited against the invariants (see
 * `InventoryModel.checkStored`) every few operations and after the last.
 * One adapter per implementation turns it into a `Subject`.
 */
import fc from "fast-check";
import { expect } from "vitest";
import { sql } from "drizzle-orm";
import type { Availability, ConfirmRequest, HoldRequest, HoldResult, HoldView, ReleaseRequest } from "../../core/holds/contract";
import { MAX_BEST_AVAILABLE } from "../../core/holds/contract";
import type { Db } from "../../core/db/client";
import { smallChart } from "../fixtures/charts";
import { withDb } from "../fixtures/db";
import { openEvent } from "../fixtures/seeding";
import { InventoryModel, type EventFacts, type ModelHold, type StoredState } from "./model";

/** An inventory implementation as the harness drives it. */
export interface Subject {
  /** Applies hold requests in order (one RPC batch for the Durable Object). */
  hold(requests: HoldRequest[]): Promise<HoldResult[]>;
  release(request: ReleaseRequest): Promise<HoldResult>;
  confirm(request: ConfirmRequest): Promise<HoldResult>;
  getHold(holdId: string, accountId?: string): Promise<HoldView | null>;
  accountHolds(accountId: string): Promise<HoldView[]>;
  availability(): Promise<Availability>;
  /** Sets the clock the implementation reads. */
  setTime(now: number): void;
  /**
   * Starts the background expiry (the Durable Object's alarm; nothing for
   * Postgres). It may still run while the next operations do, as alarms do in
   * production; asked for while one runs, it runs once after that one.
   */
  runAlarm(): Promise<void>;
  /** Waits for background work started by `runAlarm`, throwing its error. */
  settle(): Promise<void>;
  /** Drops every in-memory state (evicts the object; a new Postgres pool and inventory). */
  restart(): Promise<void>;
  /**
   * Reads the stored state, normalized, with the adapter's own consistency
   * problems; then, if asked, the availability (reading it expires due holds).
   */
  audit(now: number, withAvailability: boolean): Promise<{ stored: StoredState; availability: Availability | undefined }>;
  close(): Promise<void>;
}

/** Opens a `Subject` for a freshly created event. */
export type OpenSubject = (event: { eventId: string; demandClass: "calm" | "hot" }) => Promise<Subject>;

/** The event of one run: a small chart so collisions are frequent and the model stays fast. */
export interface RunSetup {
  rows: number;
  seatsPerRow: number;
  gaCapacity: number;
  purchaseLimit: number;
  holdTtlSeconds: number;
  accounts: number;
}

type HoldPick = { among: "live" | "lapsed" | "confirmed" | "any"; n: number };
type SeatPick = { from: "any" | "held" | "invalid"; n: number };
type ScopePick = { by: "any" } | { by: "tier"; n: number } | { by: "section"; n: number } | { by: "both"; tier: number; section: number } | { by: "unknownTier" } | { by: "unknownSection" };
type Step = { kind: "small"; ms: number } | { kind: "ttl"; fraction: number } | { kind: "expiry"; n: number; delta: number };

type HoldOp =
  | { kind: "holdSeats"; account: number; token: number; seats: SeatPick[] }
  | { kind: "holdBest"; account: number; token: number; quantity: number; scope: ScopePick; allowSplit: boolean };

/** One abstract operation; picks (`n`) are resolved against the model's state when it runs. */
export type Op =
  | HoldOp
  | { kind: "holdBatch"; holds: HoldOp[] }
  | { kind: "release"; hold: HoldPick; byOwner: boolean; other: number }
  | { kind: "confirm"; hold: HoldPick; allowLapsed: boolean }
  /** A confirmation sent again (a payment's webhook and its request racing, or the cron's next pass). */
  | { kind: "confirmAgain"; n: number }
  | { kind: "retry"; n: number }
  | { kind: "advance"; step: Step; alarm: boolean }
  | { kind: "alarm" }
  | { kind: "restart" }
  | { kind: "getHold"; hold: HoldPick; as: "owner" | "other" | "anyone" }
  | { kind: "accountHolds"; account: number }
  | { kind: "unknownHold"; action: "release" | "confirm" | "get" };

const TOKENS_PER_ACCOUNT = 3;
const DAY_MS = 86_400_000;
/** Retries only of requests younger than this (the object forgets results after 24 h). */
const RETRY_WINDOW_MS = 23 * 3_600_000;

const setupArb: fc.Arbitrary<RunSetup> = fc.record({
  rows: fc.integer({ min: 2, max: 3 }),
  seatsPerRow: fc.integer({ min: 3, max: 6 }),
  gaCapacity: fc.integer({ min: 3, max: 10 }),
  purchaseLimit: fc.constantFrom(4, 6, 8),
  holdTtlSeconds: fc.constantFrom(60, 120, 600),
  accounts: fc.integer({ min: 4, max: 10 }),
});

const holdPickArb: fc.Arbitrary<HoldPick> = fc.record({ among: fc.constantFrom("live", "live", "lapsed", "confirmed", "any"), n: fc.nat() });

const seatPickArb: fc.Arbitrary<SeatPick> = fc.oneof(
  { weight: 14, arbitrary: fc.record({ from: fc.constant("any" as const), n: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ from: fc.constant("held" as const), n: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ from: fc.constant("invalid" as const), n: fc.integer({ min: 0, max: 3 }) }) },
);

const scopeArb: fc.Arbitrary<ScopePick> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ by: "any" as const }) },
  { weight: 4, arbitrary: fc.record({ by: fc.constant("tier" as const), n: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ by: fc.constant("section" as const), n: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ by: fc.constant("both" as const), tier: fc.nat(), section: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ by: "unknownTier" as const }) },
  { weight: 1, arbitrary: fc.constant({ by: "unknownSection" as const }) },
);

const quantityArb = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: MAX_BEST_AVAILABLE }) });
const tokenArb = fc.integer({ min: 0, max: TOKENS_PER_ACCOUNT - 1 });

const holdOpArb: fc.Arbitrary<HoldOp> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("holdSeats" as const), account: fc.nat(), token: tokenArb, seats: fc.array(seatPickArb, { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("holdSeats" as const), account: fc.nat(), token: tokenArb, seats: fc.constant<SeatPick[]>([]) }) },
  {
    weight: 10,
    arbitrary: fc.record({ kind: fc.constant("holdBest" as const), account: fc.nat(), token: tokenArb, quantity: quantityArb, scope: scopeArb, allowSplit: fc.boolean() }),
  },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("small" as const), ms: fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom(4_999, 5_000)) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("ttl" as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("expiry" as const), n: fc.nat(), delta: fc.integer({ min: -1, max: 1 }) }) },
);

/** The operation mix. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 22, arbitrary: holdOpArb },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("holdBatch" as const), holds: fc.array(holdOpArb, { minLength: 2, maxLength: 4 }) }) },
  { weight: 7, arbitrary: fc.record({ kind: fc.constant("release" as const), hold: holdPickArb, byOwner: fc.boolean(), other: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("confirm" as const), hold: holdPickArb, allowLapsed: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("confirmAgain" as const), n: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("retry" as const), n: fc.nat() }) },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant("advance" as const), step: stepArb, alarm: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "alarm" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "restart" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("getHold" as const), hold: holdPickArb, as: fc.constantFrom("owner" as const, "other" as const, "anyone" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("accountHolds" as const), account: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unknownHold" as const), action: fc.constantFrom("release" as const, "confirm" as const, "get" as const) }) },
);

/** Reads what the model needs to know about an event from Postgres. */
export async function loadFacts(db: Db, eventId: string): Promise<EventFacts> {
  const event = await db.execute<{ venue_id: string; purchase_limit: number; hold_ttl_seconds: number }>(sql`
    select venue_id, purchase_limit, hold_ttl_seconds from events where id = ${eventId}`);
  const row = event.rows[0];
  if (!row) throw new Error(`event ${eventId} not found`);
  const seats = await db.execute<{ i: number; s: string; sl: string; r: string; rl: string; l: string; p: number; b: number; t: string }>(sql`
    select st.seat_index as i, st.section_id as s, sc.label as sl, st.row_id as r, rw.label as rl, st.label as l, st.position as p, st.best_rank as b, st.price_tier as t
    from seats st join sections sc on sc.id = st.section_id join seat_rows rw on rw.id = st.row_id
    where st.venue_id = ${row.venue_id} order by st.seat_index`);
  const sections = await db.execute<{ id: string; label: string; kind: "seated" | "general_admission"; price_tier: string | null; sort_order: number; ga_capacity: number | null }>(sql`
    select id, label, kind, price_tier, sort_order, ga_capacity from sections where venue_id = ${row.venue_id} order by sort_order`);
  const prices = await db.execute<{ price_tier: string; price_cents: number }>(sql`select price_tier, price_cents from event_price_tiers where event_id = ${eventId}`);
  const chartSeats = seats.rows.map((s) => ({ seatIndex: s.i, sectionId: s.s, sectionLabel: s.sl, rowId: s.r, rowLabel: s.rl, label: s.l, position: s.p, bestRank: s.b, priceTier: s.t }));
  return {
    eventId,
    seats: chartSeats,
    sections: sections.rows.map((s) => ({
      sectionId: s.id,
      label: s.label,
      kind: s.kind,
      priceTier: s.price_tier,
      sortOrder: s.sort_order,
      capacity: s.kind === "seated" ? chartSeats.filter((seat) => seat.sectionId === s.id).length : (s.ga_capacity ?? 0),
    })),
    prices: Object.fromEntries(prices.rows.map((p) => [p.price_tier, p.price_cents])),
    purchaseLimit: row.purchase_limit,
    holdTtlMs: row.hold_ttl_seconds * 1000,
  };
}

/** Counts what the runs did, for the report. */
export interface RunStats {
  runs: number;
  /** Operations run and checked against the model (a batch counts one per hold request). */
  ops: number;
  /** Operations of sequences started (run or running). */
  reserved: number;
  /** Full-state audits (stored state and availability against the model). */
  audits: number;
  /** Milliseconds spent per operation kind (running it and checking its answer), on audits and on opening events. */
  timeMs: Record<string, number>;
  counts: Record<string, number>;
  holdsCreated: number;
  refusals: Record<string, number>;
}

/** Fresh counters. */
export function newStats(): RunStats {
  return { runs: 0, ops: 0, reserved: 0, audits: 0, timeMs: {}, counts: {}, holdsCreated: 0, refusals: {} };
}

/** The summary line the tests print at the end. */
export function describeStats(name: string, stats: RunStats, seconds: number): string {
  const perOp = Object.fromEntries(Object.entries(stats.counts).map(([k, n]) => [k, ((stats.timeMs[k] ?? 0) / n).toFixed(1)]));
  const per = (key: string, n: number) => (n === 0 ? "-" : ((stats.timeMs[key] ?? 0) / n).toFixed(1));
  return (
    `inventory model, ${name}: ${stats.ops} ops in ${stats.runs} runs, ${Math.round(seconds)} s (${Math.round(stats.ops / Math.max(seconds, 1))} ops/s); ` +
    `${stats.audits} audits (${per("audit", stats.audits)} ms each), opening an event ${per("open", stats.runs)} ms; holds ${stats.holdsCreated}, ` +
    `refusals ${JSON.stringify(stats.refusals)}, ms per op ${JSON.stringify(perOp)}`
  );
}

/** Operations in a sequence (a batch counts one per hold request). */
export function countOps(ops: Op[]): number {
  return ops.reduce((sum, op) => sum + (op.kind === "holdBatch" ? op.holds.length : 1), 0);
}

/**
 * Runs one operation sequence on a fresh event, checking every answer and
 * auditing the stored state after every `auditEvery`-th operation and after
 * the last; throws on the first disagreement, naming the operation.
 */
export async function runSequence(open: OpenSubject, demandClass: "calm" | "hot", setup: RunSetup, ops: Op[], stats: RunStats, auditEvery: number): Promise<void> {
  const t0 = performance.now();
  const opened = await openEvent({
    demandClass,
    chart: smallChart(setup.rows, setup.seatsPerRow, setup.gaCapacity),
    purchaseLimit: setup.purchaseLimit,
    holdTtlSeconds: setup.holdTtlSeconds,
    accounts: setup.accounts,
  });
  const eventId = opened.event.id;
  const facts = await withDb((db) => loadFacts(db, eventId));
  const start = Date.now() + DAY_MS;
  const model = new InventoryModel(facts, start);
  const subject = await open({ eventId, demandClass });
  stats.timeMs.open = (stats.timeMs.open ?? 0) + (performance.now() - t0);
  const run = new Run(model, subject, opened.accounts, stats);
  try {
    subject.setTime(start);
    const done: string[] = [];
    /** Index of the last audited operation. */
    let audited = -1;
    const failure = (i: number, described: string, error: unknown) => {
      const recent = done.slice(-8).map((d, k) => `    #${i - Math.min(done.length, 8) + k}: ${d}`);
      const since = audited === i - 1 ? "" : ` (the stored state was last audited ${audited < 0 ? "never" : `after op #${audited}`})`;
      return new Error(`op #${i} of ${ops.length} (${described}) on event ${eventId}${since}:\n${error instanceof Error ? error.message : String(error)}\n  previous ops:\n${recent.join("\n")}`, {
        cause: error,
      });
    };
    for (const [i, op] of ops.entries()) {
      let described: string = op.kind;
      try {
        const t1 = performance.now();
        described = await run.apply(op);
        const t2 = performance.now();
        stats.timeMs[op.kind] = (stats.timeMs[op.kind] ?? 0) + (t2 - t1);
        stats.counts[op.kind] = (stats.counts[op.kind] ?? 0) + 1;
        if ((i + 1) % auditEvery === 0 || i === ops.length - 1) {
          await run.audit(op);
          audited = i;
          stats.timeMs.audit = (stats.timeMs.audit ?? 0) + (performance.now() - t2);
        }
      } catch (error) {
        throw failure(i, described, error);
      }
      done.push(described);
      stats.ops += op.kind === "holdBatch" ? op.holds.length : 1;
    }
    try {
      await subject.settle();
      await run.finalCheck();
    } catch (error) {
      throw failure(ops.length, "the final check", error);
    }
    stats.runs += 1;
  } finally {
    await subject.close();
  }
}

/** The state of one sequence: the model, the subject, the accounts and their tokens. */
class Run {
  private readonly tokens: string[][];

  constructor(
    private readonly model: InventoryModel,
    private readonly subject: Subject,
    private readonly accounts: string[],
    private readonly stats: RunStats,
  ) {
    this.tokens = accounts.map(() => Array.from({ length: TOKENS_PER_ACCOUNT }, () => crypto.randomUUID()));
  }

  private account(n: number): string {
    return pick(this.accounts, n) ?? "";
  }

  private pickHold(p: HoldPick): ModelHold | undefined {
    const wanted = this.model.holdList((s) => (p.among === "any" ? true : p.among === "lapsed" ? s === "expired" || s === "released" : s === p.among));
    return pick(wanted, p.n) ?? pick(this.model.holdList(), p.n);
  }

  private holdRequest(op: HoldOp): HoldRequest {
    const accountIndex = op.account % this.accounts.length;
    const base = { accountId: this.account(accountIndex), attemptKey: this.tokens[accountIndex]?.[op.token] ?? "", requestId: crypto.randomUUID() };
    if (op.kind === "holdSeats") {
      const facts = this.model.facts;
      const live = this.model.holdList((s) => s === "live" || s === "confirmed").flatMap((h) => h.seats);
      const seatIndexes = op.seats.map((s) => {
        if (s.from === "invalid") return [-1, facts.seats.length, facts.seats.length + 7, 1_000_000][s.n] ?? -1;
        if (s.from === "held" && live.length > 0) return live[s.n % live.length] ?? 0;
        return facts.seats[s.n % facts.seats.length]?.seatIndex ?? 0;
      });
      return { ...base, kind: "seats", seatIndexes };
    }
    const tiers = [...new Set(this.model.facts.sections.flatMap((s) => (s.priceTier === null ? [] : [s.priceTier])))].sort();
    const sectionIds = this.model.facts.sections.map((s) => s.sectionId);
    const scope = op.scope;
    const filter =
      scope.by === "tier"
        ? { priceTier: pick(tiers, scope.n) }
        : scope.by === "section"
          ? { sectionId: pick(sectionIds, scope.n) }
          : scope.by === "both"
            ? { priceTier: pick(tiers, scope.tier), sectionId: pick(sectionIds, scope.section) }
            : scope.by === "unknownTier"
              ? { priceTier: "NO-SUCH-TIER" }
              : scope.by === "unknownSection"
                ? { sectionId: crypto.randomUUID() }
                : {};
    return { ...base, kind: "best", quantity: op.quantity, allowSplit: op.allowSplit, ...filter };
  }

  private count(results: HoldResult[], created = false): void {
    for (const r of results) {
      if (r.ok && created) this.stats.holdsCreated += 1;
      if (!r.ok) this.stats.refusals[r.reason] = (this.stats.refusals[r.reason] ?? 0) + 1;
    }
  }

  /** Runs one operation against the subject and the model; returns its description. */
  async apply(op: Op): Promise<string> {
    const { model, subject } = this;
    switch (op.kind) {
      case "holdSeats":
      case "holdBest":
      case "holdBatch": {
        const requests = (op.kind === "holdBatch" ? op.holds : [op]).map((h) => this.holdRequest(h));
        const results = await subject.hold(requests);
        if (results.length !== requests.length) throw new Error(`${requests.length} requests, ${results.length} results`);
        requests.forEach((request, i) => model.hold(request, results[i] ?? { ok: false, reason: "not_on_sale", message: "missing" }));
        this.count(results, true);
        return `${op.kind} ${describeRequests(requests)} -> ${describeResults(results)}`;
      }
      case "retry": {
        const recent = model.log.filter((l) => model.now - l.at < RETRY_WINDOW_MS);
        const logged = pick(recent, op.n);
        if (!logged) return "retry (nothing to retry)";
        const [result] = await subject.hold([logged.request]);
        if (!result) throw new Error("no result");
        model.hold(logged.request, result);
        return `retry ${describeRequests([logged.request])} -> ${describeResults([result])}`;
      }
      case "release": {
        const hold = this.pickHold(op.hold);
        if (!hold) return "release (no holds yet)";
        const owner = this.accounts.indexOf(hold.accountId);
        const actor = op.byOwner || this.accounts.length < 2 ? hold.accountId : this.account(owner + 1 + (op.other % (this.accounts.length - 1)));
        const request = { accountId: actor, holdId: hold.holdId, requestId: crypto.randomUUID() };
        const result = await subject.release(request);
        model.release(request, result);
        this.count([result]);
        return `release ${short(hold.holdId)} by ${actor === hold.accountId ? "owner" : "other"} -> ${describeResults([result])}`;
      }
      case "confirm": {
        const hold = this.pickHold(op.hold);
        if (!hold) return "confirm (no holds yet)";
        const request = { holdId: hold.holdId, allowLapsed: op.allowLapsed, requestId: crypto.randomUUID() };
        const result = await subject.confirm(request);
        model.confirm(request, result);
        this.count([result]);
        return `confirm ${short(hold.holdId)} allowLapsed=${op.allowLapsed} -> ${describeResults([result])}`;
      }
      case "confirmAgain": {
        const sent = pick(
          model.confirms.filter((c) => model.now - c.at < RETRY_WINDOW_MS),
          op.n,
        );
        if (!sent) return "confirmAgain (nothing sent yet)";
        const result = await subject.confirm(sent.request);
        model.confirm(sent.request, result);
        this.count([result]);
        return `confirmAgain ${short(sent.request.holdId)} allowLapsed=${sent.request.allowLapsed} -> ${describeResults([result])}`;
      }
      case "advance": {
        const step = op.step;
        let to = model.now;
        if (step.kind === "small") to += step.ms;
        else if (step.kind === "ttl") to += Math.round(model.facts.holdTtlMs - 5_000 + step.fraction * 70_000);
        else {
          const live = model.holdList((s) => s === "live");
          const hold = pick(live, step.n);
          to = hold ? Math.max(model.now, hold.expiresAt + step.delta) : model.now + 1_000;
        }
        const by = to - model.now;
        model.setTime(to);
        subject.setTime(to);
        if (op.alarm) await subject.runAlarm();
        return `advance ${step.kind} +${by} ms${op.alarm ? " + alarm" : ""}`;
      }
      case "alarm":
        await subject.runAlarm();
        return "alarm";
      case "restart":
        await subject.restart();
        return "restart";
      case "getHold": {
        const hold = this.pickHold(op.hold);
        if (!hold) return "getHold (no holds yet)";
        const owner = this.accounts.indexOf(hold.accountId);
        const as = op.as === "owner" ? hold.accountId : op.as === "other" && this.accounts.length > 1 ? this.account(owner + 1) : undefined;
        model.getHold(hold.holdId, as, await subject.getHold(hold.holdId, as));
        return `getHold ${short(hold.holdId)} as ${op.as}`;
      }
      case "accountHolds": {
        const accountId = this.account(op.account);
        model.accountHolds(accountId, await subject.accountHolds(accountId));
        return `accountHolds ${short(accountId)}`;
      }
      case "unknownHold": {
        const holdId = crypto.randomUUID();
        const accountId = this.account(0);
        if (op.action === "release") {
          const request = { accountId, holdId, requestId: crypto.randomUUID() };
          model.release(request, await subject.release(request));
        } else if (op.action === "confirm") {
          const request = { holdId, allowLapsed: true, requestId: crypto.randomUUID() };
          model.confirm(request, await subject.confirm(request));
        } else {
          model.getHold(holdId, accountId, await subject.getHold(holdId, accountId));
        }
        return `${op.action} unknown hold`;
      }
    }
  }

  /**
   * Checks the stored state against the model and the invariants, then
   * availability, except after a bare clock move or a restart (reading
   * availability expires due holds, and the next operation should meet them
   * unexpired in storage).
   */
  async audit(op: Op): Promise<void> {
    const withAvailability = !((op.kind === "advance" && !op.alarm) || op.kind === "restart");
    const { stored, availability } = await this.subject.audit(this.model.now, withAvailability);
    this.model.checkStored(stored);
    if (withAvailability) {
      if (!availability) throw new Error("the audit skipped availability");
      this.model.availability(availability);
    }
    this.stats.audits += 1;
  }

  /** At the end: every account's holds and a sample of single holds, against the model. */
  async finalCheck(): Promise<void> {
    for (const accountId of this.accounts) this.model.accountHolds(accountId, await this.subject.accountHolds(accountId));
    for (const hold of this.model.holdList().slice(-40)) this.model.getHold(hold.holdId, hold.accountId, await this.subject.getHold(hold.holdId, hold.accountId));
    this.model.availability(await this.subject.availability());
  }
}

function pick<T>(list: readonly T[], n: number): T | undefined {
  return list.length === 0 ? undefined : list[((n % list.length) + list.length) % list.length];
}

function short(id: string): string {
  return id.slice(0, 8);
}

function describeRequests(requests: HoldRequest[]): string {
  return requests
    .map((r) =>
      r.kind === "seats"
        ? `seats[${r.seatIndexes.join(",")}] by ${short(r.accountId)}/${short(r.attemptKey)}`
        : `best ${r.quantity}${r.priceTier ? ` tier=${r.priceTier}` : ""}${r.sectionId ? ` section=${short(r.sectionId)}` : ""}${r.allowSplit ? " split" : ""} by ${short(r.accountId)}/${short(r.attemptKey)}`,
    )
    .join("; ");
}

function describeResults(results: HoldResult[]): string {
  return results
    .map((r) => (r.ok ? `${r.hold.status} ${short(r.hold.holdId)} [${r.hold.seats.map((s) => s.seatIndex).join(",")}${r.hold.generalAdmission.map((g) => `ga×${g.quantity}`).join(",")}]` : r.reason))
    .join("; ");
}

/** A positive integer setting from a binding (`MODEL_OPS`, `MODEL_LANES`: vitest.config.ts sets them from the environment). */
export function positiveSetting(name: string, raw: unknown, fallback: number): number {
  const parsed = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : fallback;
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive integer, got ${String(raw)}`);
  return parsed;
}

/** Sequence lengths: many runs of 300-1,500 operations, each on a fresh event. */
export const SEQUENCE = { minLength: 300, maxLength: 1_500 };

/** The full audit runs after every this many operations (and after each sequence's last). */
export const AUDIT_EVERY = 8;

/** The end of a model test file: at least `totalOps` operations ran, audited, meeting every kind of refusal. */
export function expectCoverage(stats: RunStats, totalOps: number): void {
  expect(stats.ops).toBeGreaterThanOrEqual(totalOps);
  expect(stats.audits).toBeGreaterThanOrEqual(stats.runs * Math.ceil(SEQUENCE.minLength / AUDIT_EVERY));
  expect(stats.holdsCreated).toBeGreaterThan(0);
  for (const reason of ["seat_taken", "sold_out", "over_limit", "too_fast", "invalid_seat", "hold_not_found", "hold_expired", "hold_confirmed"]) {
    expect(stats.refusals[reason] ?? 0, reason).toBeGreaterThan(0);
  }
}

/**
 * Runs sequences until sequences of `targetOps` operations have started (and
 * then finished), `lanes` sequences at a time (each lane its own fast-check
 * runs, with its own seed), counting into `stats`.
 */
export async function runModel(options: {
  open: OpenSubject;
  demandClass: "calm" | "hot";
  targetOps: number;
  lanes: number;
  stats: RunStats;
  /** Audit the stored state after every n-th operation (and after each sequence's last). */
  auditEvery: number;
}): Promise<void> {
  const { stats } = options;
  const until = stats.reserved + options.targetOps;
  const property = fc.asyncProperty(setupArb, fc.array(opArb, { ...SEQUENCE, size: "max" }), async (setup, ops) => {
    stats.reserved += countOps(ops);
    await runSequence(options.open, options.demandClass, setup, ops, stats, options.auditEvery);
  });
  let failed = false;
  await Promise.all(
    Array.from({ length: options.lanes }, async () => {
      try {
        // One sequence per assertion (each with its own seed), so the run stops within a sequence of its target.
        while (!failed && stats.reserved < until) await fc.assert(property, { numRuns: 1, endOnFailure: true });
      } catch (error) {
        failed = true; // the other lanes finish their sequence and stop
        throw error;
      }
    }),
  );
}
