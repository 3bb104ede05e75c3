/**
 * `npm run bench -- sellout --chaos` at a tiny size (200 seats, 1,000 fans,
 * a 30 s sale): the whole stack, the six faults, and the invariants its JSON
 * line reports, so the bench keeps working. It runs the scenario as
 * bench/run.ts does (its own process, its own stack on free ports).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const FAULT_KINDS = ["gateway_timeouts_and_5xx", "mail_provider_down", "postgres_stopped", "consumer_failed_mid_batch", "inventory_storage_wiped", "workerd_killed"];

const lineSchema = z.object({
  bench: z.literal("sellout"),
  chaos: z.literal(true),
  seats: z.number(),
  sold: z.number(),
  oversold: z.number(),
  double_booked: z.number(),
  paid_orders: z.number(),
  orders_in_postgres: z.number(),
  faults_injected: z.record(z.string(), z.number()),
  invariants_checked: z.number(),
  invariants_violated: z.number(),
  invariants: z.record(z.string(), z.number()),
  thresholds: z.record(z.string(), z.object({ met: z.boolean() })),
});

describe("npm run bench -- sellout --chaos, tiny", () => {
  it("sells without overselling, losing a paid order or breaking an invariant while every fault kind is injected", { timeout: 300_000 }, async () => {
    const child = spawn(
      path.join(REPO_ROOT, "node_modules", ".bin", "node"),
      ["--import", "tsx", path.join(REPO_ROOT, "bench", "run.ts"), "sellout", "--chaos", "--seats", "200", "--fans", "1000", "--rate", "50", "--sale-seconds", "30"],
      { cwd: REPO_ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    const lines = stdout.split("\n").filter((text) => text.startsWith("{"));
    expect(lines, stderr.slice(-3_000)).toHaveLength(1);
    const line = lineSchema.parse(JSON.parse(lines[0] ?? "null"));
    expect(line.sold).toBeGreaterThan(0);
    expect(line).toMatchObject({ oversold: 0, double_booked: 0, invariants_violated: 0, orders_in_postgres: line.paid_orders });
    expect(Object.values(line.invariants).every((violations) => violations === 0)).toBe(true);
    expect(line.invariants_checked).toBe(Object.keys(line.invariants).length);
    for (const kind of FAULT_KINDS) expect(line.faults_injected[kind], kind).toBeGreaterThanOrEqual(1);
    expect(code, stderr.slice(-3_000)).toBe(0);
  });
});
