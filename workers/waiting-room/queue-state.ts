/**
 * Where waiting fans read an event's queue document
 * (core/waiting-room/queue-state.ts): from the data centre's Workers Cache,
 * under a key that changes every second, so each data centre asks the room at
 * most about once a second however many fans poll there; the room answers
 * from memory. Within one isolate a request that finds another already asking
 * takes the isolate's last copy rather than asking too, however long the
 * room takes to answer (a slow answer spanning seconds must not let every
 * second's first request ask again), and a request whose cache lookup
 * outlived its second takes the last copy too, leaving the room to the new
 * second's first request. When the room
 * cannot answer, the KV copy (written by the room at most once a second, and
 * possibly a minute stale elsewhere) stands in.
 *
 * Fans learn of a change within a tick (1 s) plus the cache's second plus
 * their own poll interval.
 */
import type { Context } from "hono";
import { IsolateCache } from "../../core/isolate-cache";
import { log } from "../../core/logger";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { queueStateKey, queueStateSchema, type QueueState } from "../../core/waiting-room/queue-state";

/** How long one copy serves a data centre. */
export const QUEUE_DOCUMENT_SECONDS = 1;
/** The room gets this long to answer before the KV copy is read instead. */
const ROOM_TIMEOUT_MS = 2_000;

/** This isolate's latest copy per event, and how many of its requests are fetching one right now. */
const latest = new IsolateCache<string, { second: number; document: QueueState | "none" }>(10_000);
const fetching = new Map<string, number>();
/** What the cache holds: the document, or null while there is none. */
const cachedCopy = z.object({ document: queueStateSchema.nullable() });

/** The published document, or null while the room has published none. */
export async function readQueueState(c: Context<AppEnv>, eventId: string): Promise<QueueState | null> {
  const second = Math.floor(Date.now() / (QUEUE_DOCUMENT_SECONDS * 1000));
  const mine = latest.get(eventId);
  if (mine?.second === second) return orNull(mine.document);
  const cacheKey = new Request(new URL(`/__queue-document/${eventId}/${second}`, c.req.url).toString());
  const cache = caches.default;
  const hit = await cache.match(cacheKey);
  if (hit) {
    const document = cachedCopy.parse(await hit.json()).document;
    latest.set(eventId, { second, document: document ?? "none" });
    return document;
  }
  // Another request of this isolate fetched this second's copy meanwhile, or is fetching one: theirs, or the last copy, will do.
  // So will the last copy when the lookup outlived its second: the new second's first request asks the room, and this one
  // asking for a second already over would make two requests to the room within one second.
  const now = latest.get(eventId);
  if (now && now.second === second) return orNull(now.document);
  if (now && (fetching.get(eventId) ?? 0) > 0) return orNull(now.document);
  if (now && Math.floor(Date.now() / (QUEUE_DOCUMENT_SECONDS * 1000)) !== second) return orNull(now.document);
  fetching.set(eventId, (fetching.get(eventId) ?? 0) + 1);
  let document: QueueState | null;
  try {
    document = await fromRoom(c.env, eventId);
  } catch (error) {
    log.warn("queue_document_from_kv", { eventId, error: String(error) });
    const stored = await c.env.QUEUE_STATE.get(queueStateKey(eventId), { type: "json" });
    document = stored === null ? null : queueStateSchema.parse(stored);
  } finally {
    const left = (fetching.get(eventId) ?? 1) - 1;
    if (left > 0) fetching.set(eventId, left);
    else fetching.delete(eventId);
  }
  // A slower fetch that started earlier never replaces a newer copy.
  if ((latest.get(eventId)?.second ?? -1) <= second) latest.set(eventId, { second, document: document ?? "none" });
  const copy = new Response(JSON.stringify({ document }), { headers: { "Content-Type": "application/json", "Cache-Control": `public, max-age=${QUEUE_DOCUMENT_SECONDS + 1}` } });
  c.executionCtx.waitUntil(cache.put(cacheKey, copy));
  return document;
}

function orNull(document: QueueState | "none"): QueueState | null {
  return document === "none" ? null : document;
}

async function fromRoom(env: Env, eventId: string): Promise<QueueState | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the room did not answer within ${ROOM_TIMEOUT_MS} ms`)), ROOM_TIMEOUT_MS);
  });
  try {
    return await Promise.race([env.WAITING_ROOM.getByName(eventId).published(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
