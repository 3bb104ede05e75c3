import { ConfigError } from "./errors";

/** Validated configuration of the Worker. */
export interface Config {
  databaseUrl: string;
  /** host:port of the local WebSocket relay; undefined against Neon. */
  neonWsProxy: string | undefined;
  redisUrl: string;
  redisToken: string;
}

const cache = new WeakMap<object, Config>();

/**
 * Reads the configuration from the Worker's env, failing with a message that
 * names every missing setting. Cached per env object.
 */
export function loadConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const required = ["DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"] as const;
  const missing = required.filter((name) => !env[name]);
  if (missing.length > 0) throw new ConfigError(missing);
  const config: Config = {
    databaseUrl: env.DATABASE_URL,
    neonWsProxy: env.NEON_WS_PROXY || undefined,
    redisUrl: env.UPSTASH_REDIS_REST_URL,
    redisToken: env.UPSTASH_REDIS_REST_TOKEN,
  };
  cache.set(env, config);
  return config;
}
