/**
 * Where an event's holds are made, by its demand class: the `EventInventory`
 * Durable Object for hot events (holds/object-holds.ts), Postgres for calm
 * ones (holds/postgres-holds.ts, with the live seat map fed by
 * holds/seat-feed.ts).
 */
import type { Inventory } from "../../core/holds/contract";
import { timeScaleOf } from "../../core/time-scale";
import { eventRouting, type EventRouting } from "../events/routing";
import type { WorkContext } from "../work-context";
import { DurableInventory } from "./object-holds";
import { PostgresInventory } from "./postgres-holds";
import { withSeatFeed } from "./seat-feed";

/** The inventory serving an event's fans, given its routing (which the caller looked up once for the request). */
export async function inventoryFor(ctx: WorkContext, routing: EventRouting): Promise<Inventory> {
  const { eventId } = routing;
  if (routing.demandClass === "calm") {
    return withSeatFeed(new PostgresInventory(ctx.db, eventId, Date.now, timeScaleOf(ctx.env)), ctx.env.SEAT_MAP_FEED.getByName(eventId), ctx.keepAlive);
  }
  // The object prepares itself at its first request, and again after a loss of its storage (durable-objects/event-inventory).
  return new DurableInventory(ctx.env.EVENT_INVENTORY, eventId, ctx.keepAlive);
}

/** The inventory of a published (or cancelled) event, looking its routing up; 404 for an unknown or draft event. */
export async function inventoryForEvent(ctx: WorkContext, eventId: string): Promise<Inventory> {
  return inventoryFor(ctx, await eventRouting(ctx.db, eventId));
}
