/**
 * Picks an event's inventory by its demand class: the `EventInventory`
 * Durable Object for hot events, Postgres for calm ones.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { events } from "../../core/db/schema";
import { notFound } from "../../core/errors";
import { PostgresInventory } from "./calm";
import type { Inventory } from "../../core/holds/contract";
import { DurableInventory } from "./hot";
import { withSeatFeed } from "./seat-feed";

/** What routing needs to know about an event. */
export interface EventRouting {
  eventId: string;
  demandClass: "calm" | "hot";
  status: "draft" | "published" | "cancelled";
  /** Lobby bot policy: what happens to accounts sharing a device or IP beyond the limits. */
  botPolicy: "deprioritize" | "refuse";
  maxAccountsPerDevice: number;
  maxAccountsPerIp: number;
}

/** Routing is fresh this long; after that one request refreshes it while the others use the stale copy. */
const ROUTING_TTL_MS = 30_000;
const refreshing = new Set<string>();
/** Per isolate: event routing (briefly cached) and hot objects known to be prepared. */
const routingCache = new Map<string, { routing: EventRouting; at: number }>();
const preparedObjects = new Map<string, number>();
const PREPARED_TTL_MS = 60_000;

/** Forgets cached routing for an event (after an organizer changes it). */
export function forgetRouting(eventId: string): void {
  routingCache.delete(eventId);
  preparedObjects.delete(eventId);
}

/** Routing data of a published event, or 404. */
export async function eventRouting(db: Db, eventId: string): Promise<EventRouting> {
  const cached = routingCache.get(eventId);
  if (cached && (Date.now() - cached.at < ROUTING_TTL_MS || refreshing.has(eventId))) return cached.routing;
  refreshing.add(eventId);
  try {
    return await loadRouting(db, eventId);
  } finally {
    refreshing.delete(eventId);
  }
}

async function loadRouting(db: Db, eventId: string): Promise<EventRouting> {
  const [row] = await db
    .select({
      demandClass: events.demandClass,
      status: events.status,
      botPolicy: events.botPolicy,
      maxAccountsPerDevice: events.maxAccountsPerDevice,
      maxAccountsPerIp: events.maxAccountsPerIp,
    })
    .from(events)
    .where(eq(events.id, eventId));
  if (!row || row.status === "draft") throw notFound("Event");
  const routing: EventRouting = { eventId, ...row };
  routingCache.set(eventId, { routing, at: Date.now() });
  return routing;
}

/** The inventory serving an event's fans. */
export async function inventoryFor(options: { env: Env; db: Db; eventId: string; keepAlive: (promise: Promise<unknown>) => void }): Promise<Inventory> {
  const routing = await eventRouting(options.db, options.eventId);
  if (routing.demandClass === "calm") {
    const feed = options.env.SEAT_MAP_FEED.getByName(options.eventId);
    return withSeatFeed(new PostgresInventory(options.db, options.eventId), feed, options.keepAlive);
  }
  const preparedAt = preparedObjects.get(options.eventId);
  if (preparedAt === undefined || Date.now() - preparedAt > PREPARED_TTL_MS) {
    // Cheap when the object is loaded; rebuilds it from Postgres if its storage was lost.
    await options.env.EVENT_INVENTORY.getByName(options.eventId).ensurePrepared(options.eventId);
    preparedObjects.set(options.eventId, Date.now());
  }
  return new DurableInventory(options.env.EVENT_INVENTORY, options.eventId, options.keepAlive);
}
