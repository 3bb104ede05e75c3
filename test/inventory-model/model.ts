/**
 * A reference model of the seat-inventory contract (core/holds/contract.ts):
 * plain maps and loops, no storage, no concurrency, time given explicitly.
 * Fed the same requests at the same times as an implementation, it predicts
 * every answer (refusal reasons, hold status, the seats best available picks)
 * and throws `ModelMismatch` when an answer differs. Pure TypeScript: the
 * harness and the adapters bring the implementations.
 */
import {
  ATTEMPT_INTERVAL_MS,
  HOLD_JITTER_MS,
  type Availability,
  type ConfirmRequest,
  type GaRef,
  type HoldRequest,
  type HoldResult,
  type HoldView,
  type InventoryFailure,
  type ReleaseRequest,
  type SeatRef,
} from "../../core/holds/contract";
import type { SnapshotSeat } from "../../durable-objects/event-inventory/postgres";

/** One seat of the event's chart: a seat as Postgres stores it (the inventory object's SnapshotSeat, a type only), plus its section's label. */
export interface ChartSeat extends SnapshotSeat {
  sectionLabel: string;
}

/** One section of the event's chart. */
export interface ChartSection {
  sectionId: string;
  label: string;
  kind: "seated" | "general_admission";
  priceTier: string | null;
  sortOrder: number;
  /** Seats of a seated section, places of a general-admission one. */
  capacity: number;
}

/** What the model knows about the event under test. */
export interface EventFacts {
  eventId: string;
  seats: ChartSeat[];
  sections: ChartSection[];
  prices: Record<string, number>;
  purchaseLimit: number;
  holdTtlMs: number;
}

/** General-admission places of a hold. */
export interface GaItem {
  sectionId: string;
  quantity: number;
}

type HoldStatus = HoldView["status"];

/** A hold as the model keeps it. `status` is as last written: a live hold past its time reads as expired. */
export interface ModelHold {
  holdId: string;
  accountId: string;
  status: HoldStatus;
  expiresAt: number;
  createdAt: number;
  seats: number[];
  ga: GaItem[];
}

/** A hold as an implementation stores it (normalized by its adapter). */
export type StoredHold = ModelHold;

/**
 * An implementation's stored state at `now`, normalized by its adapter.
 * `holds` holds at least every hold that claims places (live and unexpired,
 * or confirmed) and may hold more; `seats` is what its per-seat table says.
 */
export interface StoredState {
  holds: StoredHold[];
  seats: { seatIndex: number; takenBy: string | null; sold: boolean }[];
  /** Problems only the adapter can see (its own counters and indexes). */
  problems: string[];
}

/** An implementation answered differently from the model, or its stored state breaks an invariant. */
export class ModelMismatch extends Error {
  override name = "ModelMismatch";
}

/** JSON with sorted keys, so equal values compare equal as strings. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return Array.from(v);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

function same(what: string, expected: unknown, actual: unknown): void {
  const e = canonical(expected);
  const a = canonical(actual);
  if (e !== a) throw new ModelMismatch(`${what}\n  expected ${e}\n  actual   ${a}`);
}

interface Row {
  rowId: string;
  sectionId: string;
  priceTier: string;
  rank: number;
  /** In position order. */
  seats: ChartSeat[];
}

type Stored = { ok: false; reason: InventoryFailure } | { ok: true; holdId: string };

/** A sent hold request, for retries. */
export interface LoggedRequest {
  request: HoldRequest;
  at: number;
}

type Prediction = { kind: "refuse"; reason: InventoryFailure; record: boolean } | { kind: "replay"; holdId: string } | { kind: "create"; seats: number[]; ga: GaItem[] };

/** The model of one event's inventory. */
export class InventoryModel {
  now: number;
  private readonly holds = new Map<string, ModelHold>();
  /** Hold ids in creation order. */
  private readonly order: string[] = [];
  private readonly requests = new Map<string, Stored>();
  private readonly attempts = new Map<string, number>();
  private readonly seatsByIndex = new Map<number, ChartSeat>();
  private readonly sectionsById = new Map<string, ChartSection>();
  private readonly rows: Row[];
  /** Each request once, when it was first made: a retry is picked by its age from then (the object forgets results 24 h after). */
  readonly log: LoggedRequest[] = [];
  /** Every confirmation sent, for the harness to send again. */
  readonly confirms: { request: ConfirmRequest; at: number }[] = [];
  /** Late confirmations refused, by request id: the same request is refused so again, whatever frees up. */
  private readonly lateRefusals = new Map<string, InventoryFailure>();
  private readonly logged = new Set<string>();

  constructor(
    readonly facts: EventFacts,
    now: number,
  ) {
    this.now = now;
    for (const seat of facts.seats) this.seatsByIndex.set(seat.seatIndex, seat);
    for (const section of facts.sections) this.sectionsById.set(section.sectionId, section);
    const byRow = new Map<string, ChartSeat[]>();
    for (const seat of facts.seats) byRow.set(seat.rowId, [...(byRow.get(seat.rowId) ?? []), seat]);
    this.rows = [...byRow.entries()]
      .map(([rowId, seats]) => {
        const first = seats[0];
        if (!first) throw new Error("empty row");
        return { rowId, sectionId: first.sectionId, priceTier: first.priceTier, rank: Math.min(...seats.map((s) => s.bestRank)), seats: [...seats].sort((a, b) => a.position - b.position) };
      })
      .sort((a, b) => a.rank - b.rank);
  }

  // ---------------------------------------------------------------- time and reads

  /** Moves the model's clock (never backwards). */
  setTime(now: number): void {
    if (now < this.now) throw new Error(`time must not go back: ${now} < ${this.now}`);
    this.now = now;
  }

  /** The status a hold reads as now. */
  statusOf(hold: ModelHold): HoldStatus {
    return hold.status === "live" && hold.expiresAt <= this.now ? "expired" : hold.status;
  }

  /** Holds in creation order, optionally only those reading as `status`. */
  holdList(filter?: (status: HoldStatus) => boolean): ModelHold[] {
    return this.order.flatMap((id) => {
      const hold = this.holds.get(id);
      return hold && (!filter || filter(this.statusOf(hold))) ? [hold] : [];
    });
  }

  /** A hold by id. */
  findHold(holdId: string): ModelHold | undefined {
    return this.holds.get(holdId);
  }

  private claims(): ModelHold[] {
    return this.holdList((s) => s === "live" || s === "confirmed");
  }

  private places(hold: ModelHold): number {
    return hold.seats.length + hold.ga.reduce((sum, g) => sum + g.quantity, 0);
  }

  private placesUsed(accountId: string): number {
    return this.claims()
      .filter((h) => h.accountId === accountId)
      .reduce((sum, h) => sum + this.places(h), 0);
  }

  /** Seat index -> hold claiming it now. */
  private seatClaims(): Map<number, ModelHold> {
    const taken = new Map<number, ModelHold>();
    for (const hold of this.claims()) for (const seat of hold.seats) taken.set(seat, hold);
    return taken;
  }

  private gaRoom(sectionId: string): number {
    const section = this.sectionsById.get(sectionId);
    const used = this.claims().reduce((sum, h) => sum + h.ga.filter((g) => g.sectionId === sectionId).reduce((s, g) => s + g.quantity, 0), 0);
    return (section?.capacity ?? 0) - used;
  }

  /** The view an implementation must return for a hold now. */
  view(hold: ModelHold): HoldView {
    const seats: SeatRef[] = [...hold.seats]
      .sort((a, b) => a - b)
      .map((index) => {
        const seat = this.seatsByIndex.get(index);
        if (!seat) throw new Error(`unknown seat ${index}`);
        return { seatIndex: index, section: seat.sectionLabel, row: seat.rowLabel, seat: seat.label, priceTier: seat.priceTier, priceCents: this.price(seat.priceTier) };
      });
    const generalAdmission: GaRef[] = hold.ga.map((g) => {
      const section = this.sectionsById.get(g.sectionId);
      const tier = section?.priceTier ?? "";
      return { sectionId: g.sectionId, section: section?.label ?? "", quantity: g.quantity, priceTier: tier, priceCents: this.price(tier) };
    });
    const totalCents = seats.reduce((sum, s) => sum + s.priceCents, 0) + generalAdmission.reduce((sum, g) => sum + g.priceCents * g.quantity, 0);
    return {
      holdId: hold.holdId,
      eventId: this.facts.eventId,
      accountId: hold.accountId,
      status: this.statusOf(hold),
      expiresAt: hold.expiresAt,
      createdAt: hold.createdAt,
      seats,
      generalAdmission,
      totalCents,
    };
  }

  private price(tier: string): number {
    const cents = this.facts.prices[tier];
    if (cents === undefined) throw new Error(`no price for tier ${tier}`);
    return cents;
  }

  /** Seat indexes free now. */
  freeSeats(): number[] {
    const taken = this.seatClaims();
    return this.facts.seats.map((s) => s.seatIndex).filter((i) => !taken.has(i));
  }

  // ---------------------------------------------------------------- holds

  /** Checks a hold answer (a batch is checked one result at a time, in order) and applies it. */
  hold(request: HoldRequest, actual: HoldResult): void {
    const key = requestKey(request);
    if (!this.logged.has(key)) {
      this.logged.add(key);
      this.log.push({ request, at: this.now });
    }
    const prediction = this.predictHold(request);
    if (prediction.kind === "refuse") {
      same("hold refused", { ok: false, reason: prediction.reason }, actual.ok ? { ok: true, hold: actual.hold } : { ok: false, reason: actual.reason });
      if (!actual.ok && actual.message.length === 0) throw new ModelMismatch("a refusal without a message");
      if (prediction.record) this.requests.set(requestKey(request), { ok: false, reason: prediction.reason });
      return;
    }
    if (!actual.ok) throw new ModelMismatch(`hold refused (${actual.reason}: ${actual.message}); expected ${canonical(prediction)}`);
    if (prediction.kind === "replay") {
      const hold = this.holds.get(prediction.holdId);
      if (!hold) throw new Error("replayed hold vanished from the model");
      same("replayed hold", this.view(hold), actual.hold);
      return;
    }
    const got = actual.hold;
    if (this.holds.has(got.holdId)) throw new ModelMismatch(`a new hold reused the id of hold ${got.holdId}`);
    const ttl = got.expiresAt - this.now;
    if (!(ttl >= this.facts.holdTtlMs && ttl < this.facts.holdTtlMs + HOLD_JITTER_MS)) {
      throw new ModelMismatch(`hold expires ${ttl} ms after it was made; the window is [${this.facts.holdTtlMs}, ${this.facts.holdTtlMs + HOLD_JITTER_MS})`);
    }
    const hold: ModelHold = { holdId: got.holdId, accountId: request.accountId, status: "live", expiresAt: got.expiresAt, createdAt: this.now, seats: prediction.seats, ga: prediction.ga };
    same("new hold", this.view(hold), got);
    this.holds.set(hold.holdId, hold);
    this.order.push(hold.holdId);
    this.requests.set(requestKey(request), { ok: true, holdId: hold.holdId });
  }

  private predictHold(request: HoldRequest): Prediction {
    const prior = this.requests.get(requestKey(request));
    if (prior) return prior.ok ? { kind: "replay", holdId: prior.holdId } : { kind: "refuse", reason: prior.reason, record: false };
    const last = this.attempts.get(request.attemptKey);
    if (last !== undefined && this.now - last < ATTEMPT_INTERVAL_MS) return { kind: "refuse", reason: "too_fast", record: false };
    const outcome = request.kind === "seats" ? this.predictSeats(request.accountId, request.seatIndexes) : this.predictBest(request);
    // Bad input changes nothing: no attempt counted, no answer kept for the request id.
    if (outcome.kind === "refuse" && outcome.reason === "invalid_seat") return { ...outcome, record: false };
    this.attempts.set(request.attemptKey, this.now);
    return outcome.kind === "refuse" ? { ...outcome, record: true } : outcome;
  }

  private predictSeats(accountId: string, seatIndexes: number[]): Prediction {
    const seats = [...new Set(seatIndexes)];
    if (seats.length === 0 || seats.some((s) => !this.seatsByIndex.has(s))) return { kind: "refuse", reason: "invalid_seat", record: true };
    if (this.placesUsed(accountId) + seats.length > this.facts.purchaseLimit) return { kind: "refuse", reason: "over_limit", record: true };
    const taken = this.seatClaims();
    if (seats.some((s) => taken.has(s))) return { kind: "refuse", reason: "seat_taken", record: true };
    return { kind: "create", seats: [...seats].sort((a, b) => a - b), ga: [] };
  }

  /**
   * Best available: the best-ranked row in scope with `quantity` adjacent free
   * seats, and in it the block with the lowest rank sum (leftmost on a tie);
   * else, if split seats are allowed, the `quantity` best-ranked free seats in
   * scope; else the first general-admission section in scope with room.
   */
  private predictBest(request: Extract<HoldRequest, { kind: "best" }>): Prediction {
    const { quantity, priceTier, sectionId } = request;
    if (this.placesUsed(request.accountId) + quantity > this.facts.purchaseLimit) return { kind: "refuse", reason: "over_limit", record: true };
    const inScope = (s: { priceTier: string | null; sectionId: string }) => (priceTier === undefined || s.priceTier === priceTier) && (sectionId === undefined || s.sectionId === sectionId);
    const rows = this.rows.filter(inScope);
    const gaSections = this.facts.sections
      .filter((s) => s.kind === "general_admission" && inScope(s))
      .sort((a, b) => a.sortOrder - b.sortOrder);
    if (rows.length === 0 && gaSections.length === 0) return { kind: "refuse", reason: "invalid_seat", record: true };
    if (rows.length > 0) {
      const taken = this.seatClaims();
      for (const row of rows) {
        let best: { start: number; score: number } | undefined;
        for (let start = 0; start + quantity <= row.seats.length; start++) {
          const block = row.seats.slice(start, start + quantity);
          if (block.some((s) => taken.has(s.seatIndex))) continue;
          const score = block.reduce((sum, s) => sum + s.bestRank, 0);
          if (!best || score < best.score) best = { start, score };
        }
        if (best) return { kind: "create", seats: row.seats.slice(best.start, best.start + quantity).map((s) => s.seatIndex).sort((a, b) => a - b), ga: [] };
      }
      const free = rows.flatMap((row) => row.seats).filter((s) => !taken.has(s.seatIndex));
      if (request.allowSplit && free.length >= quantity) {
        const picked = free.sort((a, b) => a.bestRank - b.bestRank).slice(0, quantity);
        return { kind: "create", seats: picked.map((s) => s.seatIndex).sort((a, b) => a - b), ga: [] };
      }
      if (gaSections.length === 0) return { kind: "refuse", reason: "sold_out", record: true };
    }
    const section = gaSections.find((s) => this.gaRoom(s.sectionId) >= quantity);
    if (!section) return { kind: "refuse", reason: "sold_out", record: true };
    return { kind: "create", seats: [], ga: [{ sectionId: section.sectionId, quantity }] };
  }

  // ---------------------------------------------------------------- release and confirm

  /** Checks a release answer and applies it. */
  release(request: ReleaseRequest, actual: HoldResult): void {
    const hold = this.holds.get(request.holdId);
    if (!hold || hold.accountId !== request.accountId) return this.expectRefusal("release", "hold_not_found", actual);
    const status = this.statusOf(hold);
    if (status === "confirmed") return this.expectRefusal("release", "hold_confirmed", actual);
    hold.status = status === "live" ? "released" : status;
    this.expectHold("released hold", hold, actual);
  }

  /**
   * Checks a confirmation answer and applies it. A lapsed (expired or
   * released) hold is confirmed only with `allowLapsed`, only if all its
   * places are still free, and only within the account's purchase limit;
   * refused so, the same request (its id) is refused so again.
   */
  confirm(request: ConfirmRequest, actual: HoldResult): void {
    if (!this.confirms.some((c) => c.request.requestId === request.requestId)) this.confirms.push({ request, at: this.now });
    const hold = this.holds.get(request.holdId);
    if (!hold) return this.expectRefusal("confirm", "hold_not_found", actual);
    const status = this.statusOf(hold);
    if (status !== "confirmed" && status !== "live") {
      hold.status = status;
      if (!request.allowLapsed) return this.expectRefusal("confirm", "hold_expired", actual);
      const kept = this.lateRefusals.get(request.requestId);
      if (kept) return this.expectRefusal("confirm again", kept, actual);
      const taken = this.seatClaims();
      const free = hold.seats.every((s) => !taken.has(s)) && hold.ga.every((g) => this.gaRoom(g.sectionId) >= g.quantity);
      const refusal = !free ? "hold_expired" : this.placesUsed(hold.accountId) + this.places(hold) > this.facts.purchaseLimit ? "over_limit" : undefined;
      if (refusal) {
        this.lateRefusals.set(request.requestId, refusal);
        return this.expectRefusal("confirm", refusal, actual);
      }
    }
    hold.status = "confirmed";
    this.expectHold("confirmed hold", hold, actual);
  }

  private expectRefusal(what: string, reason: InventoryFailure, actual: HoldResult): void {
    same(`${what} refused`, { ok: false, reason }, actual.ok ? { ok: true, hold: actual.hold } : { ok: false, reason: actual.reason });
  }

  private expectHold(what: string, hold: ModelHold, actual: HoldResult): void {
    if (!actual.ok) throw new ModelMismatch(`${what}: refused (${actual.reason}); expected ${canonical(this.view(hold))}`);
    same(what, this.view(hold), actual.hold);
  }

  // ---------------------------------------------------------------- reads

  /** Checks `getHold(holdId, accountId)`. */
  getHold(holdId: string, accountId: string | undefined, actual: HoldView | null): void {
    const hold = this.holds.get(holdId);
    const visible = hold && (accountId === undefined || hold.accountId === accountId) ? this.view(hold) : null;
    same(`getHold(${holdId}, ${accountId ?? "any account"})`, visible, actual);
  }

  /** Checks `accountHolds(accountId)`: newest first, at most `limit`. */
  accountHolds(accountId: string, actual: HoldView[], limit = 100): void {
    const mine = this.holdList().filter((h) => h.accountId === accountId);
    if (actual.length !== Math.min(limit, mine.length)) throw new ModelMismatch(`accountHolds(${accountId}): ${actual.length} holds, the model has ${mine.length}`);
    for (let i = 1; i < actual.length; i++) {
      if ((actual[i - 1]?.createdAt ?? 0) < (actual[i]?.createdAt ?? 0)) throw new ModelMismatch(`accountHolds(${accountId}) is not newest first`);
    }
    const oldestShown = actual[actual.length - 1]?.createdAt ?? Infinity;
    const shown = new Set(actual.map((h) => h.holdId));
    for (const hold of mine) if (hold.createdAt > oldestShown && !shown.has(hold.holdId)) throw new ModelMismatch(`accountHolds(${accountId}) misses hold ${hold.holdId}`);
    for (const view of actual) {
      const hold = this.holds.get(view.holdId);
      if (!hold || hold.accountId !== accountId) throw new ModelMismatch(`accountHolds(${accountId}) lists unknown hold ${view.holdId}`);
      same(`accountHolds(${accountId}) hold ${view.holdId}`, this.view(hold), view);
    }
  }

  /** Checks `availability()`: counts per section and the seat bitmap. */
  availability(actual: Availability): void {
    const free = new Set(this.freeSeats());
    const seatCount = this.facts.seats.length === 0 ? 0 : Math.max(...this.facts.seats.map((s) => s.seatIndex)) + 1;
    const bitmap = new Uint8Array(Math.ceil(seatCount / 8));
    for (const seat of free) bitmap[seat >> 3] = (bitmap[seat >> 3] ?? 0) | (0x80 >> (seat & 7));
    const sections = [...this.facts.sections]
      .sort((a, b) => a.sortOrder - b.sortOrder)
      .map((s) => ({
        sectionId: s.sectionId,
        label: s.label,
        kind: s.kind,
        priceTier: s.priceTier,
        capacity: s.capacity,
        available: s.kind === "seated" ? this.facts.seats.filter((seat) => seat.sectionId === s.sectionId && free.has(seat.seatIndex)).length : this.gaRoom(s.sectionId),
      }));
    same("availability", { eventId: this.facts.eventId, seatCount, generatedAt: this.now, sections, bitmap: Array.from(bitmap) }, { ...actual, bitmap: Array.from(actual.bitmap) });
  }

  // ---------------------------------------------------------------- stored state

  /**
   * Checks an implementation's stored state: no seat claimed twice (zero
   * oversell, zero double booking), purchase limits and general-admission
   * capacity kept, the seat table in step with the holds, expiry times in
   * [ttl, ttl + jitter), and the claims equal to the model's.
   */
  checkStored(stored: StoredState): void {
    const problems = [...stored.problems];
    const statusOf = (h: StoredHold): HoldStatus => (h.status === "live" && h.expiresAt <= this.now ? "expired" : h.status);
    const claims = stored.holds.filter((h) => {
      const s = statusOf(h);
      return s === "live" || s === "confirmed";
    });
    const claimById = new Map(claims.map((h) => [h.holdId, h]));
    const seatOwner = new Map<number, string>();
    const perAccount = new Map<string, number>();
    const perGa = new Map<string, number>();
    for (const hold of claims) {
      for (const seat of hold.seats) {
        const other = seatOwner.get(seat);
        if (other !== undefined) problems.push(`seat ${seat} is claimed by holds ${other} and ${hold.holdId}`);
        seatOwner.set(seat, hold.holdId);
      }
      const places = hold.seats.length + hold.ga.reduce((sum, g) => sum + g.quantity, 0);
      perAccount.set(hold.accountId, (perAccount.get(hold.accountId) ?? 0) + places);
      for (const g of hold.ga) perGa.set(g.sectionId, (perGa.get(g.sectionId) ?? 0) + g.quantity);
    }
    for (const [account, places] of perAccount) if (places > this.facts.purchaseLimit) problems.push(`account ${account} has ${places} places, over the limit of ${this.facts.purchaseLimit}`);
    for (const section of this.facts.sections) {
      const used = perGa.get(section.sectionId) ?? 0;
      if (used < 0 || used > section.capacity) problems.push(`general admission ${section.label}: ${used} places claimed of ${section.capacity}`);
    }
    for (const hold of stored.holds) {
      const ttl = hold.expiresAt - hold.createdAt;
      if (!(ttl >= this.facts.holdTtlMs && ttl < this.facts.holdTtlMs + HOLD_JITTER_MS)) problems.push(`hold ${hold.holdId} lasts ${ttl} ms`);
    }
    for (const seat of stored.seats) {
      const owner = seatOwner.get(seat.seatIndex);
      if (seat.takenBy !== (owner ?? null)) problems.push(`seat ${seat.seatIndex}: the seat table says ${seat.takenBy ?? "free"}, the holds say ${owner ?? "free"}`);
      const claim = seat.takenBy === null ? undefined : claimById.get(seat.takenBy);
      if (claim && seat.sold !== (statusOf(claim) === "confirmed")) problems.push(`seat ${seat.seatIndex}: sold=${seat.sold} but hold ${claim.holdId} is ${statusOf(claim)}`);
    }
    if (stored.seats.length !== this.facts.seats.length) problems.push(`the seat table has ${stored.seats.length} seats, the chart ${this.facts.seats.length}`);
    const modelClaims = this.claims();
    const normalize = (h: ModelHold, status: HoldStatus) => ({
      holdId: h.holdId,
      accountId: h.accountId,
      status,
      expiresAt: h.expiresAt,
      createdAt: h.createdAt,
      seats: [...h.seats].sort((a, b) => a - b),
      ga: [...h.ga].sort((a, b) => (a.sectionId < b.sectionId ? -1 : 1)),
    });
    const expected = modelClaims.map((h) => normalize(h, this.statusOf(h))).sort(byId);
    const actual = claims.map((h) => normalize(h, statusOf(h))).sort(byId);
    if (canonical(expected) !== canonical(actual)) problems.push(`claims differ from the model\n  model  ${canonical(expected)}\n  stored ${canonical(actual)}`);
    if (problems.length > 0) throw new ModelMismatch(`stored state at ${this.now}:\n  ${problems.join("\n  ")}`);
  }
}

function byId(a: { holdId: string }, b: { holdId: string }): number {
  return a.holdId < b.holdId ? -1 : a.holdId > b.holdId ? 1 : 0;
}

function requestKey(request: HoldRequest): string {
  return `${request.accountId}\u0000${request.requestId}`;
}
