import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["./test/setup/global.ts"],
    projects: [
      {
        // The dev stack's stand-ins (relay, bridge, ...), tested from Node.
        test: { name: "node", include: ["test/dev/**/*.test.ts"], environment: "node", testTimeout: 30_000 },
      },
      {
        // The static fan pages (markup and browser modules), from Node: no build step, so these are their compile checks.
        test: { name: "static", include: ["test/static/**/*.test.ts"], environment: "node" },
      },
      {
        // The fan pages in headless Chromium (playwright-core, Debian's chromium) against the Worker and its static assets
        // under Miniflare (test/browser/setup/worker.ts) on the local stack; one file at a time, so timings and screenshots stay steady.
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          globalSetup: ["./test/setup/global.ts", "./test/browser/setup/worker.ts"],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The Worker and its Durable Objects, inside workerd, against the real local Postgres and Redis.
        plugins: [
          cloudflareTest(({ inject }) => ({
            // Without workerd's INFO log (the pool passes --verbose by default). Miniflare routes every fetch() through an
            // outbound worker of its own (miniflare/dist/src/workers/core/outbound.worker.js: `return fetch(request)`);
            // when the payment gateway drops a connection on purpose (lose_response, hang) that worker's handler rejects,
            // and workerd logs it at INFO as an "uncaught exception ... Network connection lost" dump (~170 a run), while
            // our code gets the error and handles it. What else goes with INFO: workerd's report of a promise no caller
            // awaits failing (a rejected waitUntil, an alarm firing by itself and throwing). Test failures, unhandled
            // rejections in test code, errors rethrown by runDurableObjectAlarm and the Worker's own log lines remain.
            verbose: false,
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                // Through PgBouncer in transaction mode, as production reaches Neon's pooled endpoint.
                DATABASE_URL: inject("pooledPostgresUrl"),
                NEON_WS_PROXY: `127.0.0.1:${inject("relayPort")}`,
                UPSTASH_REDIS_REST_URL: inject("bridgeUrl"),
                UPSTASH_REDIS_REST_TOKEN: inject("bridgeToken"),
                TOKEN_SIGNING_KEY: inject("tokenSigningKey"),
                ADMISSION_TOKEN_KEY: inject("admissionTokenKey"),
                MAIL_API_URL: inject("mailOutboxUrl"),
                MAIL_API_KEY: inject("mailApiKey"),
                MAIL_FROM: "Edge Tickets <no-reply@edge-tickets.test>",
                // Cloudflare's test keys: the secret that always passes, and the site key whose widget yields XXXX.DUMMY.TOKEN.XXXX.
                TURNSTILE_SITE_KEY: "1x00000000000000000000AA",
                TURNSTILE_SECRET_KEY: "1x0000000000000000000000000000000AA",
                TURNSTILE_VERIFY_URL: inject("turnstileVerifyUrl"),
                TURNSTILE_SCRIPT_URL: new URL("/turnstile/v0/api.js", inject("turnstileVerifyUrl")).href,
                STRIPE_SECRET_KEY: "sk_test_local",
                STRIPE_WEBHOOK_SECRET: inject("stripeWebhookSecret"),
                STRIPE_API_BASE: inject("stripeApiBase"),
                STRIPE_PUBLISHABLE_KEY: "pk_test_local",
                STRIPE_JS_URL: `${inject("stripeApiBase")}/v3/`,
                OPS_TOKEN: "test-ops-token",
                // Operations per implementation of the inventory model test (test/inventory-model/README.md): CI runs 100,000; `MODEL_OPS=1000000` is the long run.
                MODEL_OPS: process.env.MODEL_OPS ?? "100000",
                // Postgres sequences run at once in that test.
                MODEL_LANES: process.env.MODEL_LANES ?? "16",
                // The waiting room's objects count their requests per second (durable-objects/lib/request-log.ts).
                OBJECT_REQUEST_LOG: "1",
              },
            },
          })),
        ],
        // KV with production's limits (test/setup/kv-limits.ts): one write per key per second, and late views elsewhere.
        test: { name: "workers", include: ["test/workers/**/*.test.ts", "test/durable-objects/**/*.test.ts", "test/core/**/*.test.ts"], setupFiles: ["./test/setup/kv-limits.ts"], testTimeout: 30_000 },
      },
    ],
  },
});
