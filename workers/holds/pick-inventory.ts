/**
 * Where an event's holds are made, by its demand class: the `EventInventory`
 * Durable Object for hot events (holds/object-holds.ts), Postgres for calm
 * ones (holds/postgres-holds.ts, with the live seat map fed by
 * holds/seat-feed.ts).
 */
import type { Inventory } from "../../core/holds/contract";
import { IsolateCache } from "../../core/isolate-cache";
import { timeScaleOf } from "../../core/time-scale";
import { eventRouting, forgetRouting, type EventRouting } from "../events/routing";
import type { WorkContext } from "../work-context";
import { DurableInventory } from "./object-holds";
import { PostgresInventory } from "./postgres-holds";
import { withSeatFeed } from "./seat-feed";

/** Hot events whose object this isolate saw prepared, and when. */
const preparedObjects = new IsolateCache<string, number>(10_000);
const PREPARED_TTL_MS = 60_000;

/** Forgets what this isolate knows of an event (its routing, whether its object is prepared), after an organizer changed it. */
export function forgetEvent(eventId: string): void {
  forgetRouting(eventId);
  preparedObjects.delete(eventId);
}

/** The inventory serving an event's fans, given its routing (which the caller looked up once for the request). */
export async function inventoryFor(ctx: WorkContext, routing: EventRouting): Promise<Inventory> {
  const { eventId } = routing;
  if (routing.demandClass === "calm") {
    return withSeatFeed(new PostgresInventory(ctx.db, eventId, Date.now, timeScaleOf(ctx.env)), ctx.env.SEAT_MAP_FEED.getByName(eventId), ctx.keepAlive);
  }
  const preparedAt = preparedObjects.get(eventId);
  if (preparedAt === undefined || Date.now() - preparedAt > PREPARED_TTL_MS) {
    // Cheap when the object is loaded; rebuilds it from Postgres if its storage was lost.
    await ctx.env.EVENT_INVENTORY.getByName(eventId).ensurePrepared(eventId);
    preparedObjects.set(eventId, Date.now());
  }
  return new DurableInventory(ctx.env.EVENT_INVENTORY, eventId, ctx.keepAlive);
}

/** The inventory of a published (or cancelled) event, looking its routing up; 404 for an unknown or draft event. */
export async function inventoryForEvent(ctx: WorkContext, eventId: string): Promise<Inventory> {
  return inventoryFor(ctx, await eventRouting(ctx.db, eventId));
}
