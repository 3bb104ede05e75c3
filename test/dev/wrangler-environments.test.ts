/**
 * wrangler.toml's deployed environments (`[env.staging]`, `[env.production]`):
 * wrangler does not inherit bindings or vars into an environment, so each must
 * repeat every Durable Object, KV namespace, queue, var and cron of the top
 * level (read with wrangler's own config reader); and `wrangler deploy --env
 * production --dry-run` bundles offline, as CI runs it.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { z } from "zod";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRANGLER_TOML = path.join(REPO_ROOT, "wrangler.toml");
const ENVIRONMENTS = ["staging", "production"];

/** The parts of wrangler's resolved config this test reads. */
const configSchema = z.object({
  name: z.string(),
  vars: z.record(z.string(), z.unknown()),
  durable_objects: z.object({ bindings: z.array(z.object({ name: z.string(), class_name: z.string() })) }),
  kv_namespaces: z.array(z.object({ binding: z.string(), id: z.string().optional() })),
  queues: z.object({ producers: z.array(z.object({ binding: z.string(), queue: z.string() })).optional(), consumers: z.array(z.object({ queue: z.string() })).optional() }),
  triggers: z.object({ crons: z.array(z.string()).optional() }),
  assets: z.object({ binding: z.string().optional() }).optional(),
});

function readConfig(env: string | undefined) {
  return configSchema.parse(unstable_readConfig({ config: WRANGLER_TOML, env }, { hideWarnings: true }));
}

/** What a deployed Worker needs, by name: its bindings, vars and crons. */
function surface(env: string | undefined) {
  const config = readConfig(env);
  return {
    durableObjects: config.durable_objects.bindings.map((b) => `${b.name}:${b.class_name}`).sort(),
    kv: config.kv_namespaces.map((k) => k.binding).sort(),
    producers: (config.queues.producers ?? []).map((q) => q.binding).sort(),
    consumers: (config.queues.consumers ?? []).length,
    vars: Object.keys(config.vars).sort(),
    crons: config.triggers.crons ?? [],
    assets: config.assets?.binding,
  };
}

describe("wrangler.toml environments", () => {
  it.each(ENVIRONMENTS)("%s has every binding, var and cron of the top level, with queues and a KV namespace of its own", (env) => {
    const top = surface(undefined);
    expect(top.durableObjects).toHaveLength(4);
    expect(surface(env)).toEqual(top);
    const config = readConfig(env);
    expect(config.vars.PUBLIC_ORIGIN).toMatch(/^https:\/\//);
    expect(config.name).toBe(`edge-tickets-${env}`);
  });

  it("staging and production share no queue or KV namespace", () => {
    const resources = (env: string) => {
      const config = readConfig(env);
      return [...config.kv_namespaces.map((k) => k.id ?? ""), ...(config.queues.producers ?? []).map((q) => q.queue)];
    };
    const staging = new Set(resources("staging"));
    expect(resources("production").filter((r) => staging.has(r))).toEqual([]);
  });

  it("wrangler deploy --env production --dry-run bundles offline", { timeout: 180_000 }, async () => {
    const outDir = await mkdtemp(path.join(tmpdir(), "edge-tickets-dry-run-"));
    try {
      // npm's PATH puts node_modules/.bin first: wrangler runs on the Node 22 of the `node` devDependency.
      const child = spawn(path.join(REPO_ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--env", "production", "--dry-run", "--outdir", outDir], {
        cwd: REPO_ROOT,
        env: { ...process.env, PATH: `${path.join(REPO_ROOT, "node_modules", ".bin")}${path.delimiter}${process.env.PATH ?? ""}`, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const [code] = (await once(child, "exit")) as [number | null];
      expect(code, output.slice(-3_000)).toBe(0);
      expect(existsSync(path.join(outDir, "index.js"))).toBe(true);
      for (const binding of ["env.EVENT_INVENTORY (EventInventory)", "env.LOBBY_SHARD (LobbyShard)", "env.SALES_QUEUE (ticket-sales)", 'env.PUBLIC_ORIGIN ("https://tickets.example")']) {
        expect(output).toContain(binding);
      }
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });
});
