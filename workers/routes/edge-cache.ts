/** Answers served from the Workers Cache API (per data centre), for public reads that many fans repeat. */
import type { Context } from "hono";

/**
 * The cached answer for `path` in the cache `name`, or `build`'s answer,
 * which is then cached (as its Cache-Control allows) after the response.
 */
export async function fromEdgeCache<T extends Response>(c: Context, name: string, path: string, build: () => Promise<T>): Promise<T> {
  const cache = await caches.open(name);
  const cacheKey = new Request(new URL(path, c.req.url).toString());
  const hit = await cache.match(cacheKey);
  // A response we cached from `build` earlier: the same shape as the one `build` makes.
  if (hit) return hit as unknown as T;
  const response = await build();
  c.executionCtx.waitUntil(cache.put(cacheKey, response.clone()));
  return response;
}
