import { ConfigError } from "./errors";

/** Validated configuration of the Worker. */
export interface Config {
  databaseUrl: string;
  /** host:port of the local WebSocket relay; undefined against Neon. */
  neonWsProxy: string | undefined;
  /**
   * How long a request waits on Postgres, to connect and then for each query,
   * before it answers 503 `database_unavailable` (DATABASE_WAIT_MS; default
   * 10 s): a stalled database must not hold every fan's request open.
   */
  databaseWaitMs: number;
  redisUrl: string;
  redisToken: string;
  /** Base URL of the email provider's API (Resend's shape, see workers/platform/mailer.ts). Default: Resend. */
  mailApiUrl: string;
  mailApiKey: string;
  /** The sender of every email, e.g. `Edge Tickets <no-reply@tickets.example>`. */
  mailFrom: string;
  /** Public: the pages render the Turnstile widget with it. */
  turnstileSiteKey: string;
  turnstileSecretKey: string;
  /** Turnstile's siteverify endpoint. Default: Cloudflare's. */
  turnstileVerifyUrl: string;
  /** Where fans reach the site (`https://tickets.example`): the base of every link in emails, which have no request to be relative to. */
  publicOrigin: string;
}

/** Resend's API, which `workers/platform/mailer.ts` speaks. */
export const DEFAULT_MAIL_API_URL = "https://api.resend.com";
/** Cloudflare's siteverify endpoint. */
export const DEFAULT_TURNSTILE_VERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

/** How long a request waits on Postgres by default (connect, then each query). */
export const DEFAULT_DATABASE_WAIT_MS = 10_000;

/** The part of the Worker's env the configuration is read from. */
export type ConfigEnv = Pick<
  Env,
  | "DATABASE_URL"
  | "NEON_WS_PROXY"
  | "UPSTASH_REDIS_REST_URL"
  | "UPSTASH_REDIS_REST_TOKEN"
  | "MAIL_API_URL"
  | "MAIL_API_KEY"
  | "MAIL_FROM"
  | "TURNSTILE_SITE_KEY"
  | "TURNSTILE_SECRET_KEY"
  | "TURNSTILE_VERIFY_URL"
  | "PUBLIC_ORIGIN"
> &
  // Optional: scripts and benches that call loadConfig outside the Worker take the default.
  Partial<Pick<Env, "DATABASE_WAIT_MS">>;

const cache = new WeakMap<object, Config>();

/**
 * Reads the configuration from the Worker's env, failing with a message that
 * names every missing setting. Cached per env object.
 */
export function loadConfig(env: ConfigEnv): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const required = [
    "DATABASE_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "MAIL_API_KEY",
    "MAIL_FROM",
    "TURNSTILE_SITE_KEY",
    "TURNSTILE_SECRET_KEY",
    "PUBLIC_ORIGIN",
  ] as const;
  const missing = required.filter((name) => !env[name]);
  if (missing.length > 0) throw new ConfigError(missing);
  const config: Config = {
    databaseUrl: env.DATABASE_URL,
    neonWsProxy: env.NEON_WS_PROXY || undefined,
    databaseWaitMs: databaseWaitOf(env.DATABASE_WAIT_MS),
    redisUrl: env.UPSTASH_REDIS_REST_URL,
    redisToken: env.UPSTASH_REDIS_REST_TOKEN,
    mailApiUrl: env.MAIL_API_URL || DEFAULT_MAIL_API_URL,
    mailApiKey: env.MAIL_API_KEY,
    mailFrom: env.MAIL_FROM,
    turnstileSiteKey: env.TURNSTILE_SITE_KEY,
    turnstileSecretKey: env.TURNSTILE_SECRET_KEY,
    turnstileVerifyUrl: env.TURNSTILE_VERIFY_URL || DEFAULT_TURNSTILE_VERIFY_URL,
    publicOrigin: originOf(env.PUBLIC_ORIGIN),
  };
  cache.set(env, config);
  return config;
}

/** How long a request may wait on Postgres: DEFAULT_DATABASE_WAIT_MS when unset; fails naming DATABASE_WAIT_MS unless a whole number of ms from 100 to 60,000. */
function databaseWaitOf(value: string | undefined): number {
  if (!value) return DEFAULT_DATABASE_WAIT_MS;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 100 || ms > 60_000) {
    throw new ConfigError(["DATABASE_WAIT_MS"], `DATABASE_WAIT_MS must be a whole number of milliseconds from 100 to 60000, not ${JSON.stringify(value)}. Set it in wrangler.toml [vars].`);
  }
  return ms;
}

/** The origin (scheme, host, port) of an absolute http(s) URL; fails naming PUBLIC_ORIGIN otherwise. */
function originOf(value: string): string {
  const url = URL.parse(value);
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new ConfigError(["PUBLIC_ORIGIN"], `PUBLIC_ORIGIN must be an absolute http(s) URL such as https://tickets.example, not ${JSON.stringify(value)}. Set it in wrangler.toml [vars].`);
  }
  return url.origin;
}
