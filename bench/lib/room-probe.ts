/**
 * Reads a waiting room's `servedRequests()` (the requests its Durable Object
 * served, by kind) from outside, without that read counting as a request of
 * any kind: the app has no HTTP route for it, so the benchmark runs the Worker
 * from a bench-only entry written into the snapshot. It re-exports the app's
 * entry unchanged (same handlers, same Durable Object classes) and answers
 * one extra path, guarded by a random secret, before handing everything else
 * to the app. The repository's own files are not touched.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

/** The probe entry's file name in the snapshot (pass it to startApp as `entry`). */
export const ROOM_PROBE_ENTRY = "bench-room-probe.ts";
/** Under /admin/*: wrangler.toml's run_worker_first only sends /api, /admin, ... to the Worker. */
const PROBE_PATH = "/admin/__bench/waiting-room/";

/** Writes the probe entry into the snapshot; returns the secret its path wants. */
export async function writeRoomProbe(projectDir: string): Promise<string> {
  const secret = randomBytes(24).toString("hex");
  const source = `// Written by bench/lib/room-probe.ts into the bench snapshot only.
import worker from "./workers/index";
export * from "./workers/index";

const PROBE = ${JSON.stringify(PROBE_PATH)};
const SECRET = ${JSON.stringify(secret)};

export default {
  ...worker,
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const at = request.url.indexOf(PROBE);
    if (at < 0) return worker.fetch(request, env, ctx);
    if (request.headers.get("x-bench-probe") !== SECRET) return new Response("forbidden", { status: 403 });
    const eventId = request.url.slice(at + PROBE.length).split(/[/?#]/)[0] ?? "";
    const served = await env.WAITING_ROOM.getByName(eventId).servedRequests();
    return Response.json(served);
  },
} satisfies ExportedHandler<Env>;
`;
  await writeFile(path.join(projectDir, ROOM_PROBE_ENTRY), source);
  return secret;
}

/** The room's served requests by kind, through the probe (servedRequests() itself counts nothing). */
export async function servedRequests(appUrl: string, secret: string, eventId: string): Promise<Record<string, number>> {
  const response = await fetch(`${appUrl}${PROBE_PATH}${eventId}`, { headers: { "x-bench-probe": secret }, signal: AbortSignal.timeout(30_000) });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`the room probe answered ${response.status}: ${body.slice(0, 300)}`);
  return z.record(z.string(), z.number()).parse(JSON.parse(body));
}

/** All requests of `after` not yet in `before`, summed over the kinds. */
export function servedDelta(before: Record<string, number>, after: Record<string, number>): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const kind of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const delta = (after[kind] ?? 0) - (before[kind] ?? 0);
    if (delta !== 0) byKind[kind] = delta;
    total += delta;
  }
  return { total, byKind };
}
