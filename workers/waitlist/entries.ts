/**
 * A fan's place on an event's waitlist: joining, the entry with its place in
 * line and any offer, leaving. How entries are served: waitlist/serve.ts.
 */
import { and, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { eventPriceTiers, waitlistEntries } from "../../core/db/schema";
import { ApiError, conflict, notFound } from "../../core/errors";
import type { HoldView, Inventory } from "../../core/holds/contract";
import { log } from "../../core/logger";
import { inventoryForEvent } from "../holds/pick-inventory";
import type { WorkContext } from "../work-context";
import { freePlaces, placesOf } from "./free-places";
import { loadEvent, settleOffer, type EntryRow } from "./serve";

/** The most places one entry may ask for (the schema's check). */
export const MAX_WAITLIST_QUANTITY = 4;

type EntryStatus = (typeof waitlistEntries.$inferSelect)["status"];

/** A waitlist entry as its fan sees it. */
export interface WaitlistEntryView {
  entryId: string;
  eventId: string;
  quantity: number;
  priceTier: string | null;
  status: EntryStatus;
  /** 1-based place among the event's waiting entries; null unless waiting. */
  position: number | null;
  joinedAt: string;
  /** The offered hold while the offer is open: pay for it like any hold. */
  offer: { hold: HoldView; paymentPath: string } | null;
}

/**
 * Puts a fan on an event's waitlist. Only when the event (or that price
 * tier) is sold out for the request: fewer places open to this fan in scope
 * than asked (409 `not_sold_out` otherwise; see `Inventory.openTo`: a fan the
 * waiting room tells sold out, or whose hold would be refused sold out, may
 * join); one open entry per account (409
 * `already_waiting`); within the purchase limit, counting what the fan holds
 * or bought (409 `over_limit`).
 */
export async function joinWaitlist(
  ctx: WorkContext,
  input: { eventId: string; accountId: string; quantity: number; priceTier?: string | undefined },
): Promise<WaitlistEntryView> {
  const event = await loadEvent(ctx.db, input.eventId);
  if (!event || event.status === "draft") throw notFound("Event");
  const now = Date.now();
  if (event.status !== "published" || now < event.saleStartsAt || now >= event.saleEndsAt) {
    throw conflict("not_on_sale", "This event is not on sale, so it has no waitlist right now.");
  }
  const open = await latestEntry(ctx.db, event.id, input.accountId);
  if (open?.status === "waiting" || open?.status === "offered") {
    throw conflict("already_waiting", "You are already on this event's waitlist; leave it first to change your request.");
  }
  if (input.quantity > event.purchaseLimit) throw conflict("over_limit", `This event sells at most ${event.purchaseLimit} places per account.`);
  if (input.priceTier !== undefined) {
    const [tier] = await ctx.db
      .select({ priceTier: eventPriceTiers.priceTier })
      .from(eventPriceTiers)
      .where(and(eq(eventPriceTiers.eventId, event.id), eq(eventPriceTiers.priceTier, input.priceTier)));
    if (!tier) throw new ApiError(400, "invalid_price_tier", "This event has no such price tier.");
  }
  const inventory = await inventoryForEvent(ctx, event.id);
  // Sold out as the fan was told it: places kept for the waitlist's pass or promised to other admitted fans are not on sale to them.
  const openToFan = await inventory.openTo(input.accountId);
  const free = await freePlaces(ctx.db, event.venueId, openToFan.availability);
  const inScope = Math.min(free.inScope(input.priceTier ?? null), openToFan.forAccount);
  if (inScope >= input.quantity) {
    throw conflict("not_sold_out", `${inScope} ${inScope === 1 ? "place is" : "places are"} still on sale there: hold ${inScope === 1 ? "it" : "them"} directly.`);
  }
  const used = (await inventory.accountHolds(input.accountId)).filter((h) => h.status === "live" || h.status === "confirmed").reduce((sum, h) => sum + placesOf(h), 0);
  if (used + input.quantity > event.purchaseLimit) {
    throw conflict("over_limit", `With what you hold or bought, that would exceed this event's limit of ${event.purchaseLimit} places.`);
  }
  // A hot event keeps the places that come back for its waitlist only while fans wait on it (each pass renews this).
  // Said before the entry exists, so a failure here leaves no entry behind; a join that fails after it keeps places a minute and a half at most.
  if (event.demandClass === "hot") await ctx.env.EVENT_INVENTORY.getByName(event.id).noteWaitlist(true);
  const [row] = await ctx.db
    .insert(waitlistEntries)
    .values({ eventId: event.id, accountId: input.accountId, quantity: input.quantity, priceTier: input.priceTier ?? null })
    .onConflictDoNothing()
    .returning();
  if (!row) throw conflict("already_waiting", "You are already on this event's waitlist; leave it first to change your request."); // joined twice at once
  // Said again now that the entry is in: a pass whose query of the waitlist ran before the insert may still say nobody
  // waits, and the inventory ignores that only for a pass that read its mark before this word (returns.ts). A failure
  // here leaves the first word standing (the entry is made: the fan is told so).
  if (event.demandClass === "hot") {
    try {
      await ctx.env.EVENT_INVENTORY.getByName(event.id).noteWaitlist(true);
    } catch (error) {
      log.warn("waitlist_join_note_failed", { eventId: event.id, error: String(error) });
    }
  }
  return entryView(ctx, row, undefined);
}

/** The fan's latest entry at an event (open or not), with its offer settled first; undefined if they never joined. */
export async function myWaitlistEntry(ctx: WorkContext, input: { eventId: string; accountId: string }): Promise<WaitlistEntryView | undefined> {
  let row = await latestEntry(ctx.db, input.eventId, input.accountId);
  if (!row) return undefined;
  let inventory: Inventory | undefined;
  const event = row.status === "offered" ? await loadEvent(ctx.db, input.eventId) : undefined;
  if (event) {
    inventory = await inventoryForEvent(ctx, input.eventId);
    row = (await settleOffer(ctx.db, inventory, row, event)) ?? row;
  }
  return entryView(ctx, row, inventory);
}

/**
 * Takes the fan off the waitlist. An open offer is released, so its places go
 * to the next fans; an offer already paid for fulfils the entry instead.
 * Undefined when the fan has no open entry.
 */
export async function leaveWaitlist(ctx: WorkContext, input: { eventId: string; accountId: string }): Promise<WaitlistEntryView | undefined> {
  const [row] = await ctx.db
    .update(waitlistEntries)
    .set({ status: "cancelled", updatedAt: sql`clock_timestamp()` })
    .where(and(eq(waitlistEntries.eventId, input.eventId), eq(waitlistEntries.accountId, input.accountId), inArray(waitlistEntries.status, ["waiting", "offered"])))
    .returning();
  if (!row) return undefined;
  if (row.offerHoldId === null) return entryView(ctx, row, undefined);
  const inventory = await inventoryForEvent(ctx, input.eventId);
  const released = await inventory.release({ accountId: row.accountId, requestId: `waitlist-leave:${row.id}`, holdId: row.offerHoldId });
  if (!released.ok && released.reason === "hold_confirmed") {
    // Paid just before leaving: the fan has the places.
    const [fulfilled] = await ctx.db.update(waitlistEntries).set({ status: "fulfilled", updatedAt: sql`clock_timestamp()` }).where(eq(waitlistEntries.id, row.id)).returning();
    return entryView(ctx, fulfilled ?? row, inventory);
  }
  return entryView(ctx, row, inventory);
}

async function latestEntry(db: Db, eventId: string, accountId: string): Promise<EntryRow | undefined> {
  const [row] = await db
    .select()
    .from(waitlistEntries)
    .where(and(eq(waitlistEntries.eventId, eventId), eq(waitlistEntries.accountId, accountId)))
    .orderBy(desc(waitlistEntries.position))
    .limit(1);
  return row;
}

/** The path a fan pays an offer at (the normal payment route). */
export function offerPaymentPath(eventId: string, holdId: string): string {
  return `/api/events/${eventId}/holds/${holdId}/payment`;
}

async function entryView(ctx: WorkContext, row: EntryRow, inventory: Inventory | undefined): Promise<WaitlistEntryView> {
  let position: number | null = null;
  if (row.status === "waiting") {
    const ahead = await ctx.db.execute<{ n: number }>(sql`
      select count(*)::int as n from waitlist_entries where event_id = ${row.eventId} and status = 'waiting' and position <= ${row.position}`);
    position = ahead.rows[0]?.n ?? null;
  }
  let offer: WaitlistEntryView["offer"] = null;
  if (row.status === "offered" && row.offerHoldId !== null) {
    const from = inventory ?? (await inventoryForEvent(ctx, row.eventId));
    const hold = await from.getHold(row.offerHoldId, row.accountId);
    if (hold) offer = { hold, paymentPath: offerPaymentPath(row.eventId, hold.holdId) };
  }
  return {
    entryId: row.id,
    eventId: row.eventId,
    quantity: row.quantity,
    priceTier: row.priceTier,
    status: row.status,
    position,
    joinedAt: row.createdAt.toISOString(),
    offer,
  };
}
