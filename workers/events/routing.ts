/**
 * An event's routing: what every fan request needs to know about the event
 * before it can be served (its demand class, whether it sells, its lobby bot
 * policy). Read from Postgres and cached per isolate, so a request looks it up
 * once and, while the cache is fresh, without a query.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { events } from "../../core/db/schema";
import { notFound } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";

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
/** Events whose routing one request of this isolate is reloading right now. */
const refreshing = new Set<string>();
const routingCache = new IsolateCache<string, { routing: EventRouting; at: number }>(10_000);

/** Forgets this isolate's copy of an event's routing (after an organizer changed it). */
export function forgetRouting(eventId: string): void {
  routingCache.delete(eventId);
}

/** Routing data of a published (or cancelled) event, or 404. */
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
