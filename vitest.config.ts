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
        // The Worker and its Durable Objects, inside workerd, against the real local Postgres and Redis.
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                DATABASE_URL: inject("postgresUrl"),
                NEON_WS_PROXY: `127.0.0.1:${inject("relayPort")}`,
                UPSTASH_REDIS_REST_URL: inject("bridgeUrl"),
                UPSTASH_REDIS_REST_TOKEN: inject("bridgeToken"),
                TOKEN_SIGNING_KEY: inject("tokenSigningKey"),
              },
            },
          })),
        ],
        test: { name: "workers", include: ["test/workers/**/*.test.ts", "test/durable-objects/**/*.test.ts"], testTimeout: 30_000 },
      },
    ],
  },
});
