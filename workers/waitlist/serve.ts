/**
 * The waitlist of sold-out events (seed: "When sold out, users can join a
 * waitlist for cancellations"). A fan joins for 1-4 places, in one price tier
 * or any; whenever places return to the pool (expiry, release, decline,
 * refund, cancellation) the next entries get an offer: a normal hold in their
 * name, with the event's hold TTL, and an email. An offer that lapses passes
 * to the next entries; a paid one fulfils its entry.
 *
 * Fairness: first come, first offered, among fans who want the same places.
 * An entry that cannot be served yet (too few places in its scope) holds back
 * every later entry that could take the places it waits for: later entries
 * for the same price tier, and any-tier entries; an unserved any-tier entry
 * holds back everyone behind it. Later entries for other tiers are served,
 * since they take nothing the earlier entry could use. So a fan who wants 4
 * together is never overtaken by a later fan who wants 1 of the same seats.
 *
 * At a hot event, places that come back are the waitlist's first while it
 * has fans waiting (a join tells the inventory so, and each pass says
 * whether fans still wait): the waiting room admits nobody to them until a
 * pass has offered them and drained the inventory's outbox of returns (or
 * WAITLIST_FIRST_MS has passed; see durable-objects/event-inventory/returns.ts);
 * the line gets what the waitlist leaves, and everything while nobody waits.
 * A pass drains only as far as the newest return it saw before its offers:
 * a place that comes back during them waits for the next pass.
 *
 * Safe to run twice at once: each attempt's request id is derived from the
 * entry and its version (its `updated_at`), so two runners ask the inventory
 * the same question and get the same hold; only the conditional update that
 * moves the entry from `waiting` to `offered` at that version wins, and only
 * its winner sends the email.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { events, waitlistEntries } from "../../core/db/schema";
import { HOLD_JITTER_MS, type HoldView, type Inventory } from "../../core/holds/contract";
import { log } from "../../core/logger";
import { inventoryForEvent } from "../holds/pick-inventory";
import type { WorkContext } from "../work-context";
import { freePlaces } from "./free-places";
import { notifyOffer } from "./offer-email";

/** Waiting entries looked at per event per pass. */
const ENTRIES_PER_PASS = 200;
/** Offers made per event per pass (the rest on the next pass). */
const OFFERS_PER_PASS = 50;
/** Open offers checked per event per pass. */
const OFFERS_CHECKED_PER_PASS = 500;
/** Events served per cron pass. */
const EVENTS_PER_PASS = 50;
/** Returns drained from a hot event's outbox per call, and calls per pass. */
const RETURNS_BATCH = 500;
const RETURNS_CALLS = 10;

/** What one serving pass over an event did. */
export interface ServeReport {
  /** Places the hot event's inventory reported returned since the last pass. */
  returnedPlaces: number;
  offered: number;
  fulfilled: number;
  expired: number;
  /** Entries closed because the event was cancelled or its sale ended. */
  closed: number;
}

/**
 * One pass over an event's waitlist: settles open offers (paid: fulfilled;
 * lapsed or released: expired), then offers the places free now to the next
 * waiting entries (see the fairness rule above). A cancelled event's entries
 * are closed and their offers released; when the sale has ended, waiting
 * entries expire.
 */
export async function serveWaitlist(ctx: WorkContext, eventId: string): Promise<ServeReport> {
  const report: ServeReport = { returnedPlaces: 0, offered: 0, fulfilled: 0, expired: 0, closed: 0 };
  const event = await loadEvent(ctx.db, eventId);
  if (!event || event.status === "draft") return report;
  const inventory = await inventoryForEvent(ctx, eventId);
  const hot = event.demandClass === "hot" ? ctx.env.EVENT_INVENTORY.getByName(eventId) : undefined;
  let mark: { returnsThrough: number; watch: number } | undefined;
  const settled = await settleOffers(ctx.db, inventory, event);
  report.fulfilled = settled.fulfilled;
  report.expired = settled.expired;
  if (event.status === "cancelled") {
    report.closed = await closeWaitlist(ctx, eventId, inventory);
  } else if (Date.now() >= event.saleEndsAt) {
    const ended = await ctx.db
      .update(waitlistEntries)
      .set({ status: "expired", updatedAt: sql`clock_timestamp()` })
      .where(and(eq(waitlistEntries.eventId, eventId), eq(waitlistEntries.status, "waiting")))
      .returning({ id: waitlistEntries.id });
    report.closed = ended.length;
  } else if (Date.now() >= event.saleStartsAt) {
    // Where the outbox stands before the offers: the pass drains only returns it could offer, not those that come back
    // during its offers (seconds of Postgres writes and emails), which stay kept for the next pass. The mark also counts
    // the joins heard so far, so the pass's closing word that nobody waits cannot undo a join its query missed.
    mark = await hot?.waitlistPassMark();
    report.offered = await makeOffers(ctx, inventory, event); // before the sale nothing can be held
  }
  // The object's outbox of returned places, drained so it stays small, and only now that this pass has made its
  // offers: the waiting room keeps what is in it for the waitlist, so draining first would let the line take places
  // mid-pass. A pass stopped by its offer cap leaves it: the next pass may offer more. Offers are settled from their
  // holds' own state, so a drained-then-lost batch loses nothing.
  if (hot) {
    // A pass that made no offers (a closed or ended waitlist, a sale not started) drains what came back so far.
    mark ??= await hot.waitlistPassMark();
    if (report.offered < OFFERS_PER_PASS) report.returnedPlaces = await drainReturns(hot, mark.returnsThrough);
    // Until the next pass, places that come back are kept for the fans still waiting; with nobody waiting, the line's at
    // once (unless a fan joined since the mark: the query below, read after it, may have missed their entry).
    await hot.noteWaitlist(await anyWaiting(ctx.db, eventId), mark.watch);
  }
  return report;
}

/** The hot event's inventory object, as the Worker reaches it. */
type InventoryObject = Env["EVENT_INVENTORY"] extends DurableObjectNamespace<infer T> ? T : never;

/** Whether any entry of the event still waits for an offer. */
async function anyWaiting(db: Db, eventId: string): Promise<boolean> {
  const rows = await db.execute(sql`select 1 from waitlist_entries where event_id = ${eventId} and status = 'waiting' limit 1`);
  return rows.rows.length > 0;
}

/** The cron's pass: serves every event with open entries (a failing event is logged and skipped). */
export async function serveWaitlists(ctx: WorkContext): Promise<{ events: number; offered: number; fulfilled: number; expired: number; failed: number }> {
  // In random order, so with more events than one pass serves, none waits behind the others for long.
  const due = await ctx.db.execute<{ event_id: string }>(sql`
    select event_id from waitlist_entries where status in ('waiting', 'offered') group by event_id order by random() limit ${EVENTS_PER_PASS}`);
  const total = { events: due.rows.length, offered: 0, fulfilled: 0, expired: 0, failed: 0 };
  for (const { event_id: eventId } of due.rows) {
    try {
      const report = await serveWaitlist(ctx, eventId);
      total.offered += report.offered;
      total.fulfilled += report.fulfilled;
      total.expired += report.expired;
    } catch (error) {
      total.failed++;
      log.error("waitlist_pass_failed", { eventId, error: String(error) });
    }
  }
  return total;
}

/**
 * Closes an event's waitlist (the event was cancelled): every open entry is
 * cancelled and its open offer released. Returns how many entries closed.
 */
export async function closeWaitlist(ctx: WorkContext, eventId: string, inventory?: Inventory): Promise<number> {
  const closed = await ctx.db
    .update(waitlistEntries)
    .set({ status: "cancelled", updatedAt: sql`clock_timestamp()` })
    .where(and(eq(waitlistEntries.eventId, eventId), inArray(waitlistEntries.status, ["waiting", "offered"])))
    .returning({ id: waitlistEntries.id, accountId: waitlistEntries.accountId, offerHoldId: waitlistEntries.offerHoldId });
  const offers = closed.filter((entry) => entry.offerHoldId !== null);
  if (offers.length > 0) {
    const from = inventory ?? (await inventoryForEvent(ctx, eventId));
    for (const entry of offers) {
      if (entry.offerHoldId !== null) await from.release({ accountId: entry.accountId, requestId: `waitlist-close:${entry.id}`, holdId: entry.offerHoldId });
    }
  }
  return closed.length;
}

/** A waiting entry as serving reads it; `version` is its `updated_at` in microseconds. */
export interface WaitingEntry {
  id: string;
  accountId: string;
  quantity: number;
  priceTier: string | null;
  version: string;
}

/** Offers free places to waiting entries in order; returns how many offers this pass made. */
async function makeOffers(ctx: WorkContext, inventory: Inventory, event: WaitlistEvent): Promise<number> {
  const waiting = await waitingEntries(ctx.db, event.id, ENTRIES_PER_PASS);
  if (waiting.length === 0) return 0;
  const free = await freePlaces(ctx.db, event.venueId, await inventory.availability());
  const line = new Line();
  let offered = 0;
  for (const entry of waiting) {
    if (offered >= OFFERS_PER_PASS || line.closed) break;
    if (line.isBlocked(entry.priceTier) || free.inScope(entry.priceTier) < entry.quantity) {
      line.block(entry.priceTier);
      continue;
    }
    const outcome = await offerTo(ctx, inventory, event, entry);
    if (outcome.kind === "closed") break;
    if (outcome.kind === "unavailable") line.block(entry.priceTier);
    if (outcome.kind === "offered") {
      free.take(outcome.hold);
      if (outcome.mine) offered++;
    }
  }
  return offered;
}

/** Which later entries must wait behind an unserved one. */
class Line {
  closed = false;
  private readonly tiers = new Set<string>();

  isBlocked(priceTier: string | null): boolean {
    return this.closed || (priceTier === null ? this.tiers.size > 0 : this.tiers.has(priceTier));
  }

  /** An entry of this scope could not be served: later entries that could take its places wait. */
  block(priceTier: string | null): void {
    if (priceTier === null) this.closed = true;
    else this.tiers.add(priceTier);
  }
}

type OfferOutcome =
  | { kind: "offered"; hold: HoldView; mine: boolean }
  /** Not enough places in scope after all (a race, or places the hold cannot combine). */
  | { kind: "unavailable" }
  /** This entry is passed over for now without holding anyone back (over its limit, or changed meanwhile). */
  | { kind: "skipped" }
  /** The inventory is not selling. */
  | { kind: "closed" };

/**
 * Holds the best places for one entry and records the offer. The request id
 * is the entry's id and version: a concurrent or retried pass gets the same
 * hold, and a failed attempt moves the version so the next pass asks anew.
 */
async function offerTo(ctx: WorkContext, inventory: Inventory, event: WaitlistEvent, entry: WaitingEntry): Promise<OfferOutcome> {
  let current = entry;
  for (let round = 0; round < 2; round++) {
    const key = `waitlist:${current.id}:${current.version}`;
    const result = await inventory.hold({
      kind: "best",
      accountId: current.accountId,
      attemptKey: key,
      requestId: key,
      quantity: current.quantity,
      priceTier: current.priceTier ?? undefined,
      allowSplit: true,
      forWaitlist: true,
    });
    if (!result.ok) {
      await bumpVersion(ctx.db, current);
      if (result.reason === "not_on_sale") return { kind: "closed" };
      if (result.reason === "over_limit") return { kind: "skipped" };
      if (result.reason === "invalid_seat") {
        // Its price tier no longer matches anything: it can never be served.
        await ctx.db.update(waitlistEntries).set({ status: "cancelled", updatedAt: sql`clock_timestamp()` }).where(and(eq(waitlistEntries.id, current.id), eq(waitlistEntries.status, "waiting")));
        return { kind: "skipped" };
      }
      return { kind: "unavailable" };
    }
    const hold = result.hold;
    if (hold.status !== "live") {
      // A replay of an offer that lapsed before it was recorded: ask again under a new version.
      const version = await bumpVersion(ctx.db, current);
      if (version === undefined) return { kind: "skipped" };
      current = { ...current, version };
      continue;
    }
    if (await recordOffer(ctx.db, current, hold.holdId)) {
      await notifyOffer(ctx, event, current, hold);
      return { kind: "offered", hold, mine: true };
    }
    const [now] = await ctx.db.select().from(waitlistEntries).where(eq(waitlistEntries.id, current.id));
    if (now?.status === "offered" && now.offerHoldId === hold.holdId) return { kind: "offered", hold, mine: false }; // a concurrent pass recorded it
    // The fan left (or the entry moved on) while we held: give the places back.
    await inventory.release({ accountId: current.accountId, requestId: `waitlist-unrecorded:${hold.holdId}`, holdId: hold.holdId });
    return { kind: "skipped" };
  }
  return { kind: "skipped" };
}

const versionOf = sql`(extract(epoch from updated_at) * 1000000)::bigint`;

async function waitingEntries(db: Db, eventId: string, limit: number): Promise<WaitingEntry[]> {
  const rows = await db.execute<{ id: string; account_id: string; quantity: number; price_tier: string | null; version: string }>(sql`
    select id, account_id, quantity, price_tier, ${versionOf}::text as version
    from waitlist_entries where event_id = ${eventId} and status = 'waiting'
    order by position limit ${limit}`);
  return rows.rows.map((r) => ({ id: r.id, accountId: r.account_id, quantity: r.quantity, priceTier: r.price_tier, version: r.version }));
}

/** Moves a waiting entry to a new version (if still at `entry.version`); returns the new version. */
async function bumpVersion(db: Db, entry: WaitingEntry): Promise<string | undefined> {
  const rows = await db.execute<{ version: string }>(sql`
    update waitlist_entries set updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
    where id = ${entry.id} and status = 'waiting' and ${versionOf} = ${entry.version}::bigint
    returning ${versionOf}::text as version`);
  return rows.rows[0]?.version;
}

/** Marks a waiting entry (still at `entry.version`) offered with `holdId`; false when another pass or the fan got there first. */
async function recordOffer(db: Db, entry: WaitingEntry, holdId: string): Promise<boolean> {
  const rows = await db.execute(sql`
    update waitlist_entries set status = 'offered', offer_hold_id = ${holdId}, updated_at = clock_timestamp()
    where id = ${entry.id} and status = 'waiting' and ${versionOf} = ${entry.version}::bigint
    returning id`);
  if (rows.rows.length === 0) return false;
  // Mark the hold as an offer where Postgres already has it (a hot event's hold arrives with the mirror; the pass marks it later).
  await db.execute(sql`update holds set waitlist_entry_id = ${entry.id} where id = ${holdId} and waitlist_entry_id is null`);
  return true;
}

/** A waitlist entry as stored. */
export type EntryRow = typeof waitlistEntries.$inferSelect;

/** Settles every open offer of an event from its hold's state. */
async function settleOffers(db: Db, inventory: Inventory, event: WaitlistEvent): Promise<{ fulfilled: number; expired: number }> {
  const eventId = event.id;
  const open = await db
    .select()
    .from(waitlistEntries)
    .where(and(eq(waitlistEntries.eventId, eventId), eq(waitlistEntries.status, "offered")))
    .orderBy(waitlistEntries.position)
    .limit(OFFERS_CHECKED_PER_PASS);
  const counts = { fulfilled: 0, expired: 0 };
  for (const row of open) {
    const settled = await settleOffer(db, inventory, row, event);
    if (settled?.status === "fulfilled") counts.fulfilled++;
    if (settled?.status === "expired") counts.expired++;
  }
  await db.execute(sql`
    update holds h set waitlist_entry_id = e.id from waitlist_entries e
    where e.event_id = ${eventId} and e.status = 'offered' and h.id = e.offer_hold_id and h.waitlist_entry_id is null`);
  return counts;
}

/**
 * Settles one offered entry: its hold confirmed (paid) → fulfilled; lapsed or
 * released → expired; live → unchanged. A hold the inventory does not know
 * (a hot inventory rebuilt before the hold reached Postgres) expires the
 * entry once the longest possible offer is over. Returns the entry as
 * changed, or undefined when nothing changed.
 */
export async function settleOffer(db: Db, inventory: Inventory, row: EntryRow, event: WaitlistEvent): Promise<EntryRow | undefined> {
  const hold = row.offerHoldId === null ? null : await inventory.getHold(row.offerHoldId);
  if (hold?.status === "live") return undefined;
  // On the unscaled clock: under a rehearsal's TIME_SCALE this waits longer than the offer could last, never shorter.
  if (!hold && Date.now() < row.updatedAt.getTime() + event.holdTtlMs + HOLD_JITTER_MS) return undefined;
  const status: EntryRow["status"] = hold?.status === "confirmed" || hold?.status === "refunded" ? "fulfilled" : "expired";
  const [changed] = await db
    .update(waitlistEntries)
    .set({ status, updatedAt: sql`clock_timestamp()` })
    .where(and(eq(waitlistEntries.id, row.id), eq(waitlistEntries.status, "offered")))
    .returning();
  return changed;
}

/** Empties a hot event's outbox of returned places up to the return `through`; returns how many places it held. */
async function drainReturns(stub: DurableObjectStub<InventoryObject>, through: number): Promise<number> {
  let places = 0;
  for (let call = 0; call < RETURNS_CALLS; call++) {
    const returns = await stub.takeReturns(RETURNS_BATCH, through);
    places += returns.reduce((sum, r) => sum + r.places, 0);
    if (returns.length < RETURNS_BATCH) break;
  }
  return places;
}

/** An event as the waitlist needs it. */
export interface WaitlistEvent {
  id: string;
  name: string;
  status: "draft" | "published" | "cancelled";
  demandClass: "calm" | "hot";
  venueId: string;
  purchaseLimit: number;
  holdTtlMs: number;
  currency: string;
  saleStartsAt: number;
  saleEndsAt: number;
}

/** An event as the waitlist needs it; undefined when there is none. */
export async function loadEvent(db: Db, eventId: string): Promise<WaitlistEvent | undefined> {
  const [row] = await db.select().from(events).where(eq(events.id, eventId));
  if (!row) return undefined;
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    demandClass: row.demandClass,
    venueId: row.venueId,
    purchaseLimit: row.purchaseLimit,
    holdTtlMs: row.holdTtlSeconds * 1000,
    currency: row.currency,
    saleStartsAt: row.saleStartsAt.getTime(),
    saleEndsAt: (row.saleEndsAt ?? row.endsAt ?? row.startsAt).getTime(),
  };
}
