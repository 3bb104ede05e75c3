import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ProvidedContext } from "vitest";
import type { TestProject } from "vitest/node";
import { applyMigrations } from "../../dev/migrate.ts";
import { startNeonRelay } from "../../dev/neon-relay.ts";
import { startPgBouncer } from "../../dev/pgbouncer.ts";
import { startPostgres } from "../../dev/postgres.ts";
import { startRedis } from "../../dev/redis.ts";
import { startUpstashBridge } from "../../dev/upstash-bridge.ts";
import { startMailOutbox } from "../../dev/mail-outbox.ts";
import { startTurnstileStandIn } from "../../dev/turnstile.ts";
import { startStripeGateway } from "../../dev/stripe-gateway/index.ts";
import { findFreePort } from "../../dev/ports.ts";
import { generateAdmissionKey, generateSigningKey } from "../../dev/signing-key.ts";
import { runTeardown } from "./teardown.ts";
import { startWebhookReceiver } from "./webhook-receiver.ts";

const BRIDGE_TOKEN = "test-token";
const MAIL_API_KEY = "test-mail-key";
const STRIPE_WEBHOOK_SECRET = "whsec_test_local";

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    postgresPort: number;
    /** The Worker's DATABASE_URL: PgBouncer (transaction mode) in front of that Postgres, as production uses Neon's pooler. */
    pooledPostgresUrl: string;
    redisUrl: string;
    redisPort: number;
    relayPort: number;
    bridgeUrl: string;
    bridgeToken: string;
    tokenSigningKey: string;
    admissionTokenKey: string;
    mailOutboxUrl: string;
    mailApiKey: string;
    turnstileVerifyUrl: string;
    stripeApiBase: string;
    stripeWebhookSecret: string;
    /** Organizer webhook receivers (test/setup/webhook-receiver.ts). */
    webhookReceiverUrl: string;
  }
}

/** What the stack gives the tests (`inject`). */
type StackContext = Pick<
  ProvidedContext,
  | "postgresUrl"
  | "postgresPort"
  | "pooledPostgresUrl"
  | "redisUrl"
  | "redisPort"
  | "relayPort"
  | "bridgeUrl"
  | "bridgeToken"
  | "tokenSigningKey"
  | "admissionTokenKey"
  | "mailOutboxUrl"
  | "mailApiKey"
  | "turnstileVerifyUrl"
  | "stripeApiBase"
  | "stripeWebhookSecret"
  | "webhookReceiverUrl"
>;

/** One stack per vitest process, shared by every project whose globalSetup lists this file (the root, and the browser project, whose setup runs first). */
interface SharedStack {
  started: Promise<{ context: StackContext; stop: () => Promise<void> }>;
  users: number;
}
const SHARED = Symbol.for("edge-tickets.test-stack");
const registry = globalThis as { [SHARED]?: SharedStack };

/**
 * Starts the whole local stack once per test run: real Postgres (fresh, empty
 * data directory, migrations applied) with PgBouncer in front of it, real
 * Redis, the Neon WebSocket relay and the Upstash REST bridge, plus the
 * stand-ins for the services we cannot reach from here: the mail outbox and
 * Turnstile. Stops it all after the last project using it is done. Vitest
 * loads a global setup once per project, so the stack is kept on
 * `globalThis`, not in this module.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = (registry[SHARED] ??= { started: startStack(), users: 0 });
  shared.users += 1;
  const { context, stop } = await shared.started;
  for (const key of Object.keys(context) as (keyof StackContext)[]) project.provide(key, context[key]);
  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    delete registry[SHARED];
    await stop();
  };
}

async function startStack(): Promise<{ context: StackContext; stop: () => Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), "edge-tickets-test-"));
  await chmod(root, 0o755); // Postgres runs as its own user when we are root
  // Stopped newest first; a setup that fails part-way stops what it started.
  const stops: (readonly [string, () => Promise<unknown>])[] = [["temporary folder", () => rm(root, { recursive: true, force: true })]];
  const started = <T extends { close?: () => Promise<unknown>; stop?: () => Promise<unknown> }>(name: string, service: T): T => {
    const stop = service.close ?? service.stop;
    if (stop) stops.unshift([name, () => stop.call(service)]);
    return service;
  };
  const teardown = () => runTeardown(stops.splice(0));
  try {
    const postgres = started("Postgres", await startPostgres({ dataDir: path.join(root, "postgres"), port: await findFreePort(), database: "tickets" }));
    const redis = started("Redis", await startRedis({ dataDir: path.join(root, "redis"), port: await findFreePort(), persist: false }));
    await applyMigrations(postgres.url);
    const pgbouncer = started("PgBouncer", await startPgBouncer({ dir: path.join(root, "pgbouncer"), port: await findFreePort(), postgresUrl: postgres.url }));
    const relay = started("Neon relay", await startNeonRelay({ port: await findFreePort() }));
    const bridge = started("Upstash bridge", await startUpstashBridge({ port: await findFreePort(), redisUrl: redis.url, token: BRIDGE_TOKEN }));
    const outbox = started("mail outbox", await startMailOutbox({ port: await findFreePort(), apiKey: MAIL_API_KEY }));
    const turnstile = started("Turnstile stand-in", await startTurnstileStandIn({ port: await findFreePort() }));
    // Tests read webhooks from the gateway (GET /__webhooks) and post them to the Worker themselves.
    const stripe = started("payment gateway", await startStripeGateway({ port: await findFreePort(), webhookSecret: STRIPE_WEBHOOK_SECRET }));
    const receiver = started("webhook receiver", await startWebhookReceiver({ port: await findFreePort() }));
    const context: StackContext = {
      postgresUrl: postgres.url,
      postgresPort: postgres.port,
      pooledPostgresUrl: pgbouncer.url,
      redisUrl: redis.url,
      redisPort: redis.port,
      relayPort: relay.port,
      bridgeUrl: bridge.url,
      bridgeToken: BRIDGE_TOKEN,
      tokenSigningKey: await generateSigningKey("test-key-1"),
      admissionTokenKey: await generateAdmissionKey("test-admission-1"),
      mailOutboxUrl: outbox.url,
      mailApiKey: MAIL_API_KEY,
      turnstileVerifyUrl: turnstile.verifyUrl,
      stripeApiBase: stripe.url,
      stripeWebhookSecret: STRIPE_WEBHOOK_SECRET,
      webhookReceiverUrl: receiver.url,
    };
    return { context, stop: teardown };
  } catch (error) {
    await teardown().catch(() => undefined);
    throw error;
  }
}
