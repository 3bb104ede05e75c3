/**
 * Measurements inside workerd that no HTTP route of the app makes: the
 * benchmark runs the Worker from a bench-only entry written into the snapshot
 * (the repository's files are not touched) that re-exports the app's entry
 * unchanged and answers two extra paths, guarded by a random secret:
 *
 * - the engine alone (`runEngineProbe`): how many holds one `EventInventory`
 *   applies per second when nothing but batched RPC is in front of it. It
 *   prepares the hold requests, then keeps `inFlight` batches of `batch` holds
 *   going to the event's object with `applyHolds`, as the Worker's hold lane
 *   sends them, until the event is sold out. One HTTP request starts the run.
 * - token operations (`runTokenProbe`): `n` signatures or verifications of
 *   admission tokens (HS256) or tickets (ES256) with the app's own functions,
 *   one request per operation kind, so the caller can read workerd's CPU
 *   around it (workerd's clocks do not move during CPU work).
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

/** The probe entry's file name in the snapshot (build the bundle from it). */
export const BENCH_PROBE_ENTRY = "bench-probe.ts";
/** Under /admin/*: wrangler.toml's run_worker_first sends /admin to the Worker. */
const ENGINE_PATH = "/admin/__bench/engine/";
const TOKENS_PATH = "/admin/__bench/tokens/";
/** The token operations the probe times. */
export const TOKEN_OPERATIONS = ["admission_sign_hs256", "admission_verify_hs256", "ticket_sign_es256", "ticket_verify_es256", "ticket_qr_png"] as const;
export type TokenOperation = (typeof TOKEN_OPERATIONS)[number];

/** Writes the probe entry into the snapshot; returns the secret its paths want. */
export async function writeBenchProbe(projectDir: string): Promise<string> {
  const secret = randomBytes(24).toString("hex");
  const source = `// Written by bench/lib/bench-probe.ts into the bench snapshot only.
import worker from "./workers/index";
import type { HoldRequest, HoldResult } from "./core/holds/contract";
import { verifyFanToken } from "./workers/sign-in/fan-session";
import { signTicketToken, verifyTicketToken } from "./workers/tickets/ticket-tokens";
import { benchTicket } from "./bench/lib/bench-ticket";
import { signCompactTicket } from "./workers/tickets/compact-tickets";
import { ticketQrPng } from "./workers/tickets/qr-codes";
import { signAdmissionToken } from "./workers/waiting-room/tokens";
export * from "./workers/index";

const ENGINE = ${JSON.stringify(ENGINE_PATH)};
const TOKENS = ${JSON.stringify(TOKENS_PATH)};
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

/** Tokens made by the sign operations, verified by the verify ones (kept in the isolate between requests). */
const made: { admission: string[]; ticket: string[] } = { admission: [], ticket: [] };

async function runTokens(env: Env, operation: string, n: number): Promise<Response> {
  const accountId = crypto.randomUUID();
  const eventId = crypto.randomUUID();
  let done = 0;
  if (operation === "admission_sign_hs256") {
    made.admission = [];
    for (let i = 0; i < n; i++, done++) {
      made.admission.push(await signAdmissionToken(env.ADMISSION_TOKEN_KEY, { accountId, eventId, admissionId: crypto.randomUUID(), expiresAt: Date.now() + 900_000 }));
    }
  } else if (operation === "admission_verify_hs256") {
    for (const token of made.admission) if ((await verifyFanToken(env, token)).identity.admittedEventId !== undefined) done++;
  } else if (operation === "ticket_sign_es256") {
    made.ticket = [];
    for (let i = 0; i < n; i++, done++) {
      made.ticket.push(await signTicketToken(env.TOKEN_SIGNING_KEY, { id: crypto.randomUUID(), eventId, holderAccountId: accountId, place: { section: "101", row: "1", seat: "1" }, eventEndsAt: new Date(Date.now() + 86_400_000) }));
    }
  } else if (operation === "ticket_verify_es256") {
    for (const token of made.ticket) if ((await verifyTicketToken(env.TOKEN_SIGNING_KEY, token)).ok) done++;
  } else if (operation === "ticket_qr_png") {
    // What a ticket email draws per ticket: its compact code as a PNG QR code.
    const code = await signCompactTicket(env.TOKEN_SIGNING_KEY, benchTicket(eventId, accountId));
    for (let i = 0; i < n; i++, done++) if (ticketQrPng(code).size === 0) throw new Error("empty QR code");
  } else {
    return new Response("unknown operation", { status: 404 });
  }
  return Response.json({ done });
}

export default {
  ...worker,
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const engine = request.url.indexOf(ENGINE);
    const tokens = engine < 0 ? request.url.indexOf(TOKENS) : -1;
    if (engine < 0 && tokens < 0) return worker.fetch(request, env, ctx);
    if (request.headers.get("x-bench-probe") !== SECRET) return new Response("forbidden", { status: 403 });
    const rest = (prefix: string, at: number) => request.url.slice(at + prefix.length).split(/[/?#]/)[0] ?? "";
    if (engine >= 0) return runEngine(env, rest(ENGINE, engine), (await request.json()) as EngineRun);
    return runTokens(env, rest(TOKENS, tokens), Number(new URL(request.url).searchParams.get("n") ?? "1000"));
  },
} satisfies ExportedHandler<Env>;
`;
  await writeFile(path.join(projectDir, BENCH_PROBE_ENTRY), source);
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

/** Runs `n` of one token operation in the Worker at `appUrl`; returns how many succeeded. */
export async function runTokenProbe(appUrl: string, secret: string, operation: TokenOperation, n: number): Promise<number> {
  const response = await fetch(`${appUrl}${TOKENS_PATH}${operation}?n=${n}`, { method: "POST", headers: { "x-bench-probe": secret }, signal: AbortSignal.timeout(600_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`the token probe answered ${response.status}: ${text.slice(0, 300)}`);
  return z.object({ done: z.number() }).parse(JSON.parse(text)).done;
}
