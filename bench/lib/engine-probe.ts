/**
 * The engine alone: how many holds one `EventInventory` applies per second
 * when nothing but batched RPC is in front of it. The benchmark runs the
 * Worker from a bench-only entry written into the snapshot (the repository's
 * files are not touched) that re-exports the app's entry unchanged and answers
 * one extra path, guarded by a random secret: it prepares the hold requests,
 * then keeps `inFlight` batches of `batch` holds going to the event's object
 * with `applyHolds`, exactly as the Worker's hold lane sends them, until the
 * event is sold out. One HTTP request starts the whole run.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

/** The probe entry's file name in the snapshot (build the bundle from it). */
export const ENGINE_PROBE_ENTRY = "bench-engine-probe.ts";
/** Under /admin/*: wrangler.toml's run_worker_first sends /admin to the Worker. */
const ENGINE_PATH = "/admin/__bench/engine/";

/** Writes the probe entry into the snapshot; returns the secret its path wants. */
export async function writeEngineProbe(projectDir: string): Promise<string> {
  const secret = randomBytes(24).toString("hex");
  const source = `// Written by bench/lib/engine-probe.ts into the bench snapshot only.
import worker from "./workers/index";
import type { HoldRequest, HoldResult } from "./core/holds/contract";
export * from "./workers/index";

const ENGINE = ${JSON.stringify(ENGINE_PATH)};
const SECRET = ${JSON.stringify(secret)};

interface EngineRun { accounts: string[]; quantity: number; batch: number; inFlight: number }

async function runEngine(env: Env, eventId: string, run: EngineRun): Promise<Response> {
  const stub = env.EVENT_INVENTORY.getByName(eventId);
  await stub.ensurePrepared(eventId);
  const requests: HoldRequest[] = run.accounts.map((accountId) => ({
    kind: "best", accountId, attemptKey: crypto.randomUUID(), requestId: crypto.randomUUID(), quantity: run.quantity, allowSplit: false,
  }));
  // An I/O turn after the CPU-only preparation, so Date.now() is current (it only moves with I/O).
  await stub.isPrepared();
  const started = Date.now();
  const counts: Record<string, number> = { held: 0 };
  const seats: number[] = [];
  let next = 0;
  let soldOut = false;
  const lane = async () => {
    while (!soldOut && next < requests.length) {
      const part = requests.slice(next, next + run.batch);
      next += part.length;
      const results: HoldResult[] = await stub.applyHolds(part);
      for (const result of results) {
        if (result.ok) {
          counts.held = (counts.held ?? 0) + 1;
          for (const seat of result.hold.seats) seats.push(seat.seatIndex);
        } else {
          counts[result.reason] = (counts[result.reason] ?? 0) + 1;
          if (result.reason === "sold_out") soldOut = true;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: run.inFlight }, lane));
  return Response.json({ elapsedMs: Date.now() - started, counts, seats });
}

export default {
  ...worker,
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const at = request.url.indexOf(ENGINE);
    if (at < 0) return worker.fetch(request, env, ctx);
    if (request.headers.get("x-bench-probe") !== SECRET) return new Response("forbidden", { status: 403 });
    const eventId = request.url.slice(at + ENGINE.length).split(/[/?#]/)[0] ?? "";
    return runEngine(env, eventId, (await request.json()) as EngineRun);
  },
} satisfies ExportedHandler<Env>;
`;
  await writeFile(path.join(projectDir, ENGINE_PROBE_ENTRY), source);
  return secret;
}

const engineAnswerSchema = z.object({ elapsedMs: z.number(), counts: z.record(z.string(), z.number()), seats: z.array(z.number()) });

/** What one engine run did. */
export interface EngineRun {
  holds: number;
  elapsedMs: number;
  /** Refusals by reason. */
  refusals: Record<string, number>;
  /** Every seat of every hold made, for the audit. */
  seats: number[];
}

/** Runs the engine against `eventId` through the probe of the Worker at `appUrl`. */
export async function runEngineProbe(
  appUrl: string,
  secret: string,
  eventId: string,
  run: { accounts: string[]; quantity: number; batch: number; inFlight: number },
): Promise<EngineRun> {
  const response = await fetch(`${appUrl}${ENGINE_PATH}${eventId}`, {
    method: "POST",
    headers: { "x-bench-probe": secret, "Content-Type": "application/json" },
    body: JSON.stringify(run),
    signal: AbortSignal.timeout(600_000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`the engine probe answered ${response.status}: ${text.slice(0, 300)}`);
  const answer = engineAnswerSchema.parse(JSON.parse(text));
  const { held = 0, ...refusals } = answer.counts;
  return { holds: held, elapsedMs: answer.elapsedMs, refusals, seats: answer.seats };
}
