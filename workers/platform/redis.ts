/** The Redis client: Upstash's REST client (in production Upstash; locally the stack's bridge to a real Redis). */
import { Redis } from "@upstash/redis/cloudflare";
import type { Config } from "../../core/config";

/** An Upstash Redis client (a REST client: nothing to close). */
export function createRedis(config: Pick<Config, "redisUrl" | "redisToken">): Redis {
  return new Redis({ url: config.redisUrl, token: config.redisToken, retry: { retries: 1, backoff: () => 50 } });
}
