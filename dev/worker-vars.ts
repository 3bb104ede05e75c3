/**
 * The Worker's settings for reaching the local stack, as `npm run dev`
 * writes them to `.dev.vars` and the benchmarks to their own env file, and
 * the dotenv lines they are written as.
 */
import type { LocalStack } from "./stack.ts";
import { TURNSTILE_TEST_SECRETS, TURNSTILE_TEST_SITE_KEY } from "./turnstile.ts";
import { widgetScriptUrl } from "./turnstile-widget.ts";

/** The settings that point the Worker at `stack`: Postgres (through PgBouncer), Redis, the mail outbox and Turnstile. */
export function stackVars(stack: LocalStack) {
  return {
    DATABASE_URL: stack.pooledDatabaseUrl,
    NEON_WS_PROXY: stack.neonWsProxy,
    UPSTASH_REDIS_REST_URL: stack.bridgeUrl,
    UPSTASH_REDIS_REST_TOKEN: stack.bridgeToken,
    MAIL_API_URL: stack.mailOutboxUrl,
    MAIL_API_KEY: stack.mailApiKey,
    MAIL_FROM: "Edge Tickets <no-reply@edge-tickets.localhost>",
    // Cloudflare's test keys: the secret always passes; the site key's widget yields XXXX.DUMMY.TOKEN.XXXX.
    TURNSTILE_SITE_KEY: TURNSTILE_TEST_SITE_KEY,
    TURNSTILE_SECRET_KEY: TURNSTILE_TEST_SECRETS.passes,
    TURNSTILE_VERIFY_URL: stack.turnstileVerifyUrl,
    TURNSTILE_SCRIPT_URL: widgetScriptUrl(stack.turnstileVerifyUrl),
  };
}

/** `NAME=value` lines, for wrangler's dotenv reader: a value with spaces or JSON in single quotes, which it takes literally. */
export function dotenvLines(vars: Record<string, string>): string[] {
  return Object.entries(vars).map(([name, value]) => {
    if (value.includes("'") || value.includes("\n")) throw new Error(`${name}: a dotenv value cannot hold a single quote or a line break`);
    return /^[\w.:/@+,-]*$/.test(value) ? `${name}=${value}` : `${name}='${value}'`;
  });
}
