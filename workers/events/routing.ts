/**
 * An event's routing: what every fan request needs to know about the event
 * before it can be served (its demand class, whether it sells, its lobby bot
 * policy). Read from Postgres and cached per isolate, so a request looks it up
 * once and, while the cache is fresh, without a query.
 *
 * A second copy is kept per data centre in the Workers Cache API, which
 * outlives isolates: a new isolate routes from it while it is fresh, and any
 * isolate routes from its own copy or that one, however old, while Postgres
 * does not answer. So a hot event's holds, which need only the inventory
 * object, go on through a Postgres outage even in isolates started during it
 * (the default-size chaos run's restarted Worker answered 132 holds 503 for
 * want of routing). The Cache API does nothing on workers.dev hostnames: a
 * production zone needs a custom domain (it has one for the site anyway).
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../core/db/client";
import { events } from "../../core/db/schema";
import { notFound } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { log } from "../../core/logger";
import { unavailable } from "../platform/unavailable";

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
/** A copy of an event's routing and when it was read from Postgres (checked as read back from the Cache API). */
const routingCopySchema = z.object({
  routing: z.object({
    eventId: z.string(),
    demandClass: z.enum(["calm", "hot"]),
    status: z.enum(["draft", "published", "cancelled"]),
    botPolicy: z.enum(["deprioritize", "refuse"]),
    maxAccountsPerDevice: z.number(),
    maxAccountsPerIp: z.number(),
  }),
  at: z.number(),
});
type RoutingCopy = z.infer<typeof routingCopySchema>;
const routingCache = new IsolateCache<string, RoutingCopy>(10_000);

/** The data centre's copies (Workers Cache API), kept this long: the oldest copy an outage may route from. */
const SHARED_CACHE = "event-routing";
const SHARED_MAX_AGE_S = 86_400;
/** After Postgres failed to answer a routing lookup, this isolate routes from its copies without asking it for this long. */
const OUTAGE_BACKOFF_MS = 5_000;
let postgresFailingUntil = 0;

function sharedKey(eventId: string): Request {
  return new Request(`https://event-routing.internal/${encodeURIComponent(eventId)}`);
}

async function readShared(eventId: string): Promise<RoutingCopy | undefined> {
  try {
    const hit = await (await caches.open(SHARED_CACHE)).match(sharedKey(eventId));
    const copy = hit ? routingCopySchema.safeParse(await hit.json()) : undefined;
    return copy?.success && copy.data.routing.eventId === eventId ? copy.data : undefined;
  } catch {
    return undefined; // a cache that fails is a cache miss
  }
}

async function writeShared(copy: RoutingCopy): Promise<void> {
  try {
    const body = JSON.stringify(copy);
    await (await caches.open(SHARED_CACHE)).put(sharedKey(copy.routing.eventId), new Response(body, { headers: { "Content-Type": "application/json", "Cache-Control": `max-age=${SHARED_MAX_AGE_S}` } }));
  } catch {
    // the next lookup reads Postgres again
  }
}

/** Forgets this isolate's copy of an event's routing only, as an isolate started now would not have it (the data centre's stays). */
export function forgetIsolateRouting(eventId: string): void {
  routingCache.delete(eventId);
}

/** Forgets this isolate's and this data centre's copies of an event's routing (after an organizer changed it). */
export async function forgetRouting(eventId: string): Promise<void> {
  routingCache.delete(eventId);
  try {
    await (await caches.open(SHARED_CACHE)).delete(sharedKey(eventId));
  } catch {
    // other data centres' copies age out in ROUTING_TTL_MS in any case
  }
}

/**
 * Routing data of a published (or cancelled) event, or 404: this isolate's
 * copy or the data centre's while fresh, else Postgres; while Postgres does
 * not answer, any copy there is.
 */
export async function eventRouting(db: Db, eventId: string): Promise<EventRouting> {
  const now = Date.now();
  // (The backoff's end is checked from both sides: a clock set back must not stretch it.)
  const backingOff = now < postgresFailingUntil && postgresFailingUntil - now <= OUTAGE_BACKOFF_MS;
  const usable = (copy: RoutingCopy) => now - copy.at < ROUTING_TTL_MS || backingOff;
  const cached = routingCache.get(eventId);
  if (cached && (usable(cached) || refreshing.has(eventId))) return cached.routing;
  const shared = cached ? undefined : await readShared(eventId);
  if (shared) {
    // Fresh, it serves; stale, it serves this isolate's other requests while this one asks Postgres.
    routingCache.set(eventId, shared);
    if (usable(shared)) return shared.routing;
  }
  refreshing.add(eventId);
  try {
    return await loadRouting(db, eventId);
  } catch (error) {
    const copy = cached ?? shared;
    if (!copy || unavailable(error)?.code !== "database_unavailable") throw error;
    postgresFailingUntil = Date.now() + OUTAGE_BACKOFF_MS;
    routingCache.set(eventId, copy);
    log.warn("routing_from_copy", { eventId, ageMs: Date.now() - copy.at });
    return copy.routing;
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
  const copy: RoutingCopy = { routing: { eventId, ...row }, at: Date.now() };
  routingCache.set(eventId, copy);
  await writeShared(copy);
  return copy.routing;
}
