/**
 * The reference's engine alone: Redis running `hold-best.lua` with EVALSHA,
 * fed as our object is (lib/bench-probe.ts): `inFlight` pipelines of `batch`
 * holds at a time until the event is sold out, from this process, no HTTP.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { v7 as uuidv7 } from "uuid";
import { z } from "zod";
import type { EngineRun } from "../lib/bench-probe.ts";
import { connectReference, eventPrefix, holdArguments, pipelineHoldBest } from "./inventory.ts";

const heldSchema = z.object({ hold: z.object({ seats: z.array(z.number()) }) });
const refusedSchema = z.object({ error: z.object({ code: z.string() }) });
const replySchema = z.tuple([z.number(), z.string()]);

/** Runs the reference engine against `eventId`'s seats in the Redis at `redisUrl`. */
export async function runReferenceEngine(redisUrl: string, eventId: string, run: { accounts: string[]; quantity: number; batch: number; inFlight: number }): Promise<EngineRun> {
  const redis = await connectReference(redisUrl, { autoPipelining: false });
  try {
    const prefix = eventPrefix(eventId);
    const requests = run.accounts.map((accountId) => ({ accountId, attemptKey: randomUUID(), requestId: randomUUID(), quantity: run.quantity, holdId: uuidv7() }));
    const refusals: Record<string, number> = {};
    const seats: number[] = [];
    let holds = 0;
    let next = 0;
    let soldOut = false;
    const started = performance.now();
    const lane = async () => {
      while (!soldOut && next < requests.length) {
        const part = requests.slice(next, next + run.batch);
        next += part.length;
        const pipeline = redis.pipeline();
        for (const request of part) pipelineHoldBest(pipeline, prefix, holdArguments(request, Date.now()));
        for (const [error, reply] of (await pipeline.exec()) ?? []) {
          if (error) throw error;
          const [status, body] = replySchema.parse(reply);
          if (status === 201) {
            holds++;
            seats.push(...heldSchema.parse(JSON.parse(body)).hold.seats);
            continue;
          }
          const reason = refusedSchema.parse(JSON.parse(body)).error.code;
          refusals[reason] = (refusals[reason] ?? 0) + 1;
          if (reason === "sold_out") soldOut = true;
        }
      }
    };
    await Promise.all(Array.from({ length: run.inFlight }, lane));
    return { holds, elapsedMs: performance.now() - started, refusals, seats };
  } finally {
    redis.disconnect();
  }
}
