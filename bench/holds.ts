/**
 * `npm run bench -- holds`: how fast each seat inventory takes best-available
 * holds of pairs at a 70,000-seat event with 64 fans at a time, and whether
 * the seats it leaves behind are sound. One JSON line per implementation on
 * stdout; progress on stderr.
 *
 * Everything runs on loopback in a temporary folder: a fresh local stack, the
 * Worker in one workerd (lib/miniflare-host.ts), and wrk as the crowd. Every hold
 * request uses a fan account and token of its own (4 seats per account, one
 * attempt per token per 5 s), so each one is a real attempt on the inventory.
 * Fans of the hot event hold with admission tokens, as the waiting room issues
 * them; fans of the calm event with their sign-in sessions.
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { openDb } from "../dev/seed.ts";
import { REPO_ROOT } from "../dev/stack.ts";
import { generateAdmissionKey, generateSigningKey } from "../dev/signing-key.ts";
import type { Db } from "../core/db/client.ts";
import { createEvent, createEventSchema } from "../workers/events/events.ts";
import { signFanSession } from "../workers/sign-in/fan-session.ts";
import { createOrganizer } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import { signAdmissionToken } from "../workers/waiting-room/tokens.ts";
import { snapshotProject, startApp, type BenchApp } from "./lib/app.ts";
import { BENCH_PRICES, BENCH_SEAT_COUNT, benchStadiumChart } from "./lib/chart.ts";
import { createFanAccounts, writeTokens } from "./lib/fans.ts";
import { cpuDelta, cpuSnapshot, type CpuSnapshot } from "./lib/cpu.ts";
import { startBenchStack } from "./lib/stack.ts";
import { runScenario, say, sleep, stopping, type Cleanup } from "./lib/scenario.ts";
import { openObserver, type Observer } from "./lib/observer.ts";
import { availability, seatClaims, seatRows, type SeatClaims } from "./lib/seat-claims.ts";
import { runWrk } from "./lib/wrk.ts";
import { startProfile } from "./lib/profiler.ts";

const CONCURRENCY = 64;
const WRK_THREADS = 2;
const QUANTITY = 2;
/** Fresh accounts (and tokens per implementation): 35,000 pairs sell the house, plus margin. */
const FANS = 40_000;
/** A wrk thread stops after this many sold_out answers in a row. */
const SOLD_OUT_STREAK = 16;
/** After the load, requests still in the Worker and the hot event's mirror to Postgres must settle within this. */
const SETTLE_MS = 120_000;
/** Settled: Postgres and the Worker agree and nothing moved for this long (the Worker caches availability for 2 s). */
const SETTLED_AFTER_MS = 3_000;
/** Settled, though they disagree: nothing moved for this long. */
const STUCK_AFTER_MS = 8_000;
/** How long the hot event's admission tokens last (the waiting room issues 15-minute ones). */
const ADMISSION_TTL_MS = 15 * 60 * 1000;
/** Time for the Worker to print the error behind a failed probe. */
const LOG_GRACE_MS = 1_500;

/** The implementations, in the order they run. */
const IMPLEMENTATIONS = [
  // The Durable Object sells out in seconds; 120 s bounds a broken run.
  { impl: "durable_object", demandClass: "hot", windowSeconds: 120 },
  // Postgres is far slower on a 70,000-seat event: it gets a fixed window.
  { impl: "postgres", demandClass: "calm", windowSeconds: 60 },
] as const;

type Implementation = (typeof IMPLEMENTATIONS)[number];

/** `BENCH_ONLY=durable_object` (or postgres) runs one implementation. */
const ONLY = process.env.BENCH_ONLY;
/** `BENCH_PROFILE=<folder>`: write a CPU profile of the Worker under load there (lib/profiler.ts). */
const PROFILE_DIR = process.env.BENCH_PROFILE;

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "holds.lua");
/** The baseline's script: GETs one path and counts the answers. */
const BASELINE_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "queue-poll.lua");
/**
 * The baseline, measured on the same Worker just before the load: the same
 * 64 connections GET the public keys, a route that does no I/O. Its rate is
 * what this machine's workerd serves when a request does nothing, so
 * holds_per_s / trivial_req_per_s compares runs on a busy and a quiet machine.
 */
const BASELINE_PATH = "/.well-known/jwks.json";
const BASELINE_SECONDS = 8;
const baselineResultSchema = z.object({ ok: z.number(), duration_us: z.number(), requests: z.number() });

/** What the wrk script counted (see holds.lua). */
const wrkResultSchema = z.object({
  held: z.number(),
  sold_out: z.number(),
  seat_taken: z.number(),
  over_limit: z.number(),
  too_fast: z.number(),
  unauthorized: z.number(),
  server_error: z.number(),
  other: z.number(),
  stopped_sold_out: z.number(),
  exhausted: z.number(),
  duration_us: z.number(),
  requests: z.number(),
  socket_errors: z.number(),
  timeouts: z.number(),
  p50_us: z.number(),
  p99_us: z.number(),
  max_us: z.number(),
});
type WrkResult = z.infer<typeof wrkResultSchema>;

/** The line printed per implementation. */
interface HoldsResult {
  bench: "holds";
  impl: Implementation["impl"];
  concurrency: number;
  holds_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_ms_per_hold: number | null;
  /** Requests/s of the no-I/O baseline route on the same Worker, measured just before. */
  trivial_req_per_s: number;
  /** holds_per_s as a share of trivial_req_per_s. */
  of_trivial: number;
  /** workerd CPU per baseline request (ms). */
  cpu_ms_per_trivial: number | null;
  holds: number;
  seats: number;
  sold_out: boolean;
  duration_s: number;
  oversold: number;
  double_booked: number;
}

/** One event on sale, with the tokens of the fans who will storm it. */
interface Sale {
  implementation: Implementation;
  eventId: string;
  tokensFile: string;
  /** A token of an account outside the crowd, for the hold-and-release probe. */
  probeToken: string;
}

runScenario(async (cleanup) => {
  const { workDir, stack } = await startBenchStack(cleanup);
  const { observer, close: closeObserver } = await openObserver(stack.databaseUrl);
  cleanup.add("observer connection", closeObserver);

  const signingKey = await generateSigningKey("bench");
  const admissionKey = await generateAdmissionKey("bench");
  // Set up through the app's own functions and driver, like `npm run db:seed`.
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  const { apiKey, sales } = await setUpSales(db, workDir, signingKey, admissionKey).finally(close);

  const projectDir = path.join(workDir, "project");
  await snapshotProject(REPO_ROOT, projectDir);
  const postgresPid = stack.postgresPid;
  let sound = true;
  for (const sale of sales) {
    if (stopping()) break;
    if (ONLY && sale.implementation.impl !== ONLY) continue;
    // A Worker of its own per implementation: whatever one run leaves behind (connections, caches) is not the next one's problem.
    const { impl, demandClass } = sale.implementation;
    say(`${impl}: starting the Worker`);
    const appStarting = startApp({ repoRoot: REPO_ROOT, projectDir, runDir: path.join(workDir, `worker-${impl}`), stack, signingKey, admissionKey });
    const forgetApp = cleanup.add(`the Worker (${impl})`, async () => (await appStarting.catch(() => undefined))?.stop());
    const app = await appStarting;
    say(`${impl}: Worker healthy at ${app.url}`);
    if (demandClass === "hot") await prepareInventory(app, apiKey, sale.eventId);
    const outcome = await benchSale(app, observer, sale, postgresPid, cleanup);
    await app.stop();
    forgetApp();
    if (outcome.kind === "skipped") {
      if (!outcome.expected) sound = false;
      continue;
    }
    process.stdout.write(`${JSON.stringify(outcome.result)}\n`);
    sound &&= outcome.sound;
  }
  return sound ? 0 : 1;
});

// ------------------------------------------------------------------ setting up

/** The organizer, the venue, one on-sale event per implementation, and the fans with their tokens. */
async function setUpSales(db: Db, workDir: string, signingKey: string, admissionKey: string): Promise<{ apiKey: string; sales: Sale[] }> {
  let step = Date.now();
  const lap = (what: string) => {
    say(`${what} (${seconds(Date.now() - step)} s)`);
    step = Date.now();
  };
  const { organizerId, apiKey } = await createOrganizer(db, "Bench Promotions");
  const venue = await importVenue(db, organizerId, seatingChartSchema.parse(benchStadiumChart()));
  if (venue.seatCount !== BENCH_SEAT_COUNT) throw new Error(`the bench venue has ${venue.seatCount} seats, not ${BENCH_SEAT_COUNT}`);
  lap(`imported the ${BENCH_SEAT_COUNT.toLocaleString("en-US")}-seat venue`);

  const now = Date.now();
  const eventIds = new Map<Implementation["impl"], string>();
  for (const implementation of IMPLEMENTATIONS) {
    const event = await createEvent(
      db,
      organizerId,
      createEventSchema.parse({
        venueId: venue.id,
        name: `Bench sale (${implementation.demandClass})`,
        startsAt: new Date(now + 30 * 24 * 3_600_000).toISOString(),
        saleStartsAt: new Date(now - 60_000).toISOString(),
        purchaseLimit: 4,
        demandClass: implementation.demandClass,
        status: "published",
        prices: BENCH_PRICES,
      }),
    );
    if (event.saleState !== "on_sale") throw new Error(`the ${implementation.demandClass} event is ${event.saleState}, not on sale`);
    eventIds.set(implementation.impl, event.id);
  }
  lap("created a hot and a calm event, on sale");

  const fans = await createFanAccounts(db, FANS, "bench-fan-");
  const [probeAccount] = await createFanAccounts(db, 1, "bench-probe-");
  if (!probeAccount) throw new Error("no probe account");
  lap(`created ${FANS.toLocaleString("en-US")} fan accounts`);

  const sales: Sale[] = [];
  for (const implementation of IMPLEMENTATIONS) {
    const eventId = eventIds.get(implementation.impl) ?? "";
    const sign = (accountId: string) =>
      implementation.demandClass === "hot"
        ? signAdmissionToken(admissionKey, { accountId, eventId, admissionId: randomUUID(), expiresAt: Date.now() + ADMISSION_TTL_MS })
        : signFanSession(signingKey, accountId);
    const tokensFile = path.join(workDir, `tokens-${implementation.impl}.txt`);
    // Tokens of their own per event: the Worker caches verified tokens, and each run should pay for verifying its own.
    await writeTokens(tokensFile, fans, sign);
    sales.push({ implementation, eventId, tokensFile, probeToken: await sign(probeAccount) });
  }
  lap(`signed ${(FANS * IMPLEMENTATIONS.length).toLocaleString("en-US")} tokens`);
  return { apiKey, sales };
}

/** Loads the hot event's seats into its Durable Object, so the load test does not time that. */
async function prepareInventory(app: BenchApp, apiKey: string, eventId: string): Promise<void> {
  const started = Date.now();
  const response = await fetch(`${app.url}/admin/events/${eventId}/prepare`, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: "{}",
    signal: AbortSignal.timeout(120_000),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`preparing the hot event answered ${response.status}: ${body.slice(0, 300)}`);
  const { seatCount, available } = z.object({ seatCount: z.number(), available: z.number() }).parse(JSON.parse(body));
  if (seatCount !== BENCH_SEAT_COUNT || available !== BENCH_SEAT_COUNT) throw new Error(`the prepared hot event has ${available} of ${seatCount} seats free`);
  say(`prepared the hot event's Durable Object (${seconds(Date.now() - started)} s)`);
}

// ------------------------------------------------------------------ one implementation

type SaleOutcome = { kind: "measured"; result: HoldsResult; sound: boolean } | { kind: "skipped"; expected: boolean };

async function benchSale(app: BenchApp, observer: Observer, sale: Sale, postgresPid: number | undefined, cleanup: Cleanup): Promise<SaleOutcome> {
  const { impl, windowSeconds } = sale.implementation;
  const probe = await probeHold(app, sale);
  if (!probe.ok) {
    await sleep(LOG_GRACE_MS);
    const notImplemented = app.recentOutput().some((line) => /not implemented/i.test(line));
    if (notImplemented) {
      say(`SKIPPED ${impl}: its inventory still throws "not implemented" (${probe.problem})`);
      return { kind: "skipped", expected: true };
    }
    say(`SKIPPED ${impl}: a single hold does not work: ${probe.problem}`);
    return { kind: "skipped", expected: false };
  }

  const baseline = await measureBaseline(app, postgresPid, cleanup);
  say(
    `${impl}: baseline: ${CONCURRENCY} connections GET ${BASELINE_PATH} (no I/O) at ${baseline.perSecond.toFixed(0)}/s, ` +
      `workerd ${baseline.cpuMsPerRequest?.toFixed(3) ?? "-"} ms CPU per request`,
  );

  const [load1] = loadavg();
  say(`${impl}: ${CONCURRENCY} connections hold pairs for up to ${windowSeconds} s (load average before: ${(load1 ?? 0).toFixed(2)})...`);
  const sessionsBefore = await postgresSessions(observer);
  const cpuBefore = cpuSnapshot(app, postgresPid);
  const profile = PROFILE_DIR ? await startProfile(app.inspectorPort) : undefined;
  const wrk = runWrk({
    url: app.url,
    script: SCRIPT,
    threads: WRK_THREADS,
    connections: CONCURRENCY,
    durationSeconds: windowSeconds,
    // A slower answer still counts, in the latencies too.
    timeoutSeconds: windowSeconds,
    scriptArgs: [sale.tokensFile, `/api/events/${sale.eventId}/holds/best`, String(WRK_THREADS), `bench-${impl}-`, String(SOLD_OUT_STREAK), String(QUANTITY)],
  });
  const forgetWrk = cleanup.add("wrk", () => wrk.kill());
  const counted = wrkResultSchema.parse(await wrk.result);
  forgetWrk();
  const cpu = cpuDelta(cpuBefore, cpuSnapshot(app, postgresPid));
  if (profile && PROFILE_DIR) {
    const summary = await profile.stop(PROFILE_DIR, `holds-${impl}`);
    say(`${impl}: CPU profile of the Worker (self time):\n${summary.text.split("\n").slice(0, 40).join("\n")}`);
    if (counted.held > 0 && sale.implementation.demandClass === "hot") {
      // The object's share: its hold batches (applyHolds) and its alarm (expiry, the mirror to Postgres).
      const objectMs = summary.inclusiveMs("applyHolds") + summary.inclusiveMs("alarm");
      say(
        `${impl}: profiled CPU per hold: ${(summary.busyMs / counted.held).toFixed(3)} ms in the isolate, of which the object's ` +
          `${(objectMs / counted.held).toFixed(3)} ms (one object alone would take about ${Math.round(counted.held / Math.max(objectMs / 1000, 1e-9))} holds/s)`,
      );
    }
  }
  const { connections } = await databaseState(observer, sale.eventId);
  reportRun(impl, counted, cpu, { opened: (await postgresSessions(observer)) - sessionsBefore, open: connections });

  await waitUntilSettled(app, observer, sale.eventId);
  const soldOut = counted.stopped_sold_out > 0;
  const { sound, claims } = await checkFinalState(app, observer, sale, counted, soldOut);

  const durationS = counted.duration_us / 1e6;
  return {
    kind: "measured",
    sound,
    result: {
      bench: "holds",
      impl,
      concurrency: CONCURRENCY,
      holds_per_s: round(counted.held / durationS, 1),
      p50_ms: round(counted.p50_us / 1000, 2),
      p99_ms: round(counted.p99_us / 1000, 2),
      cpu_ms_per_hold: counted.held > 0 ? round(cpu.workerd / counted.held, 3) : null,
      trivial_req_per_s: round(baseline.perSecond, 0),
      of_trivial: round(counted.held / durationS / Math.max(baseline.perSecond, 1e-9), 3),
      cpu_ms_per_trivial: baseline.cpuMsPerRequest === undefined ? null : round(baseline.cpuMsPerRequest, 3),
      holds: counted.held,
      seats: BENCH_SEAT_COUNT,
      sold_out: soldOut,
      duration_s: round(durationS, 2),
      oversold: claims.oversold,
      double_booked: claims.doubleBooked,
    },
  };
}

/** The no-I/O route's rate on this Worker, with the same connections as the load (see BASELINE_PATH). */
async function measureBaseline(app: BenchApp, postgresPid: number | undefined, cleanup: Cleanup): Promise<{ perSecond: number; cpuMsPerRequest: number | undefined }> {
  const before = cpuSnapshot(app, postgresPid);
  const wrk = runWrk({
    url: app.url,
    script: BASELINE_SCRIPT,
    threads: WRK_THREADS,
    connections: CONCURRENCY,
    durationSeconds: BASELINE_SECONDS,
    timeoutSeconds: BASELINE_SECONDS,
    scriptArgs: [BASELINE_PATH],
  });
  const forgetWrk = cleanup.add("wrk (baseline)", () => wrk.kill());
  const result = baselineResultSchema.parse(await wrk.result);
  forgetWrk();
  const cpu = cpuDelta(before, cpuSnapshot(app, postgresPid));
  if (result.ok !== result.requests) throw new Error(`the baseline route answered ${result.requests - result.ok} of ${result.requests} requests with an error`);
  return { perSecond: result.ok / (result.duration_us / 1e6), cpuMsPerRequest: result.ok > 0 ? cpu.workerd / result.ok : undefined };
}

/** One hold and its release by an account outside the crowd: the path works (and is warm) before it is timed. */
async function probeHold(app: BenchApp, sale: Sale): Promise<{ ok: true } | { ok: false; problem: string }> {
  const headers = { Authorization: `Bearer ${sale.probeToken}`, "Content-Type": "application/json" };
  const base = `${app.url}/api/events/${sale.eventId}`;
  const held = await fetch(`${base}/holds/best`, {
    method: "POST",
    headers,
    body: JSON.stringify({ requestId: `bench-probe-${sale.implementation.impl}`, quantity: QUANTITY }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = await held.text();
  if (held.status !== 201) return { ok: false, problem: `POST holds/best answered ${held.status}: ${body.slice(0, 300)}` };
  const { hold } = z.object({ hold: z.object({ holdId: z.string() }) }).parse(JSON.parse(body));
  const released = await fetch(`${base}/holds/${hold.holdId}`, { method: "DELETE", headers, signal: AbortSignal.timeout(60_000) });
  if (released.status !== 200) return { ok: false, problem: `DELETE the probe hold answered ${released.status}: ${(await released.text()).slice(0, 300)}` };
  await released.arrayBuffer();
  return { ok: true };
}

function reportRun(impl: string, counted: WrkResult, cpu: CpuSnapshot, postgres: { opened: number; open: number }): void {
  const durationS = counted.duration_us / 1e6;
  const perHold = (ms: number) => (counted.held > 0 ? `${(ms / counted.held).toFixed(3)} ms/hold` : "-");
  say(
    `${impl}: ${counted.held} holds in ${durationS.toFixed(2)} s = ${(counted.held / durationS).toFixed(1)}/s; ` +
      `latency p50 ${(counted.p50_us / 1000).toFixed(2)} ms, p99 ${(counted.p99_us / 1000).toFixed(2)} ms, max ${(counted.max_us / 1000).toFixed(2)} ms`,
  );
  say(
    `${impl}: answers: ${counted.requests} requests, ${counted.held} held, ${counted.sold_out} sold_out, ${counted.seat_taken} seat_taken, ` +
      `${counted.over_limit} over_limit, ${counted.too_fast} too_fast, ${counted.unauthorized} 401, ${counted.server_error} 5xx, ${counted.other} other, ` +
      `${counted.socket_errors} socket errors, ${counted.timeouts} timeouts${counted.exhausted > 0 ? "; ran out of fresh tokens" : ""}`,
  );
  const share = (ms: number) => `${Math.round(ms)} ms (${perHold(ms)})`;
  const ours = cpu.workerd + cpu.wrangler + cpu.postgres + cpu.relay + cpu.wrk;
  say(
    `${impl}: CPU during the load: workerd ${share(cpu.workerd)}, host ${share(cpu.wrangler)}, postgres ${share(cpu.postgres)}, ` +
      `relay+bridge ${share(cpu.relay)}, wrk ${share(cpu.wrk)}; the machine was ${Math.round((100 * cpu.machineBusy) / Math.max(cpu.machineTotal, 1))}% busy, ` +
      `${Math.round(Math.max(0, cpu.machineBusy - ours))} ms of it outside this benchmark`,
  );
  say(`${impl}: Postgres sessions opened during the load: ${postgres.opened}; connections open at its end: ${postgres.open}`);
}

// ------------------------------------------------------------------ final state

/** Postgres's view of an event's seats and of its own load, polled while the system settles. */
async function databaseState(observer: Observer, eventId: string): Promise<{ claimedSeats: number; busy: number; connections: number }> {
  const result = await observer.execute<{ claimed_seats: number; busy: number; connections: number }>(sql`
    select (select count(distinct hi.seat_index) from hold_items hi join holds h on h.id = hi.hold_id
            where h.event_id = ${eventId} and hi.seat_index is not null
              and (h.status = 'confirmed' or (h.status = 'live' and h.expires_at > now())))::int as claimed_seats,
           (select count(*) from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid() and state is not null and state <> 'idle')::int as busy,
           (select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid())::int as connections`);
  const row = result.rows[0];
  if (!row) throw new Error("the database-state query returned nothing");
  return { claimedSeats: row.claimed_seats, busy: row.busy, connections: row.connections };
}

/**
 * Waits until the seats stop moving: no request still at work in Postgres,
 * the seats held there plus the seats the Worker calls free add up to the
 * venue (the Durable Object's mirror trails it by about a second), and both
 * stay put for a few seconds. Gives up after SETTLE_MS, saying so.
 */
async function waitUntilSettled(app: BenchApp, observer: Observer, eventId: string): Promise<void> {
  const started = Date.now();
  let last = "";
  let changedAt = Date.now();
  while (Date.now() - started < SETTLE_MS && !stopping()) {
    const db = await databaseState(observer, eventId);
    const free = await availability(app.url, eventId).then(
      (a) => a.freeInBitmap,
      () => -1,
    );
    const now = `${db.claimedSeats} held in Postgres, ${free} free per the Worker, ${db.busy} busy of ${db.connections} Postgres connections`;
    const agreed = free >= 0 && db.claimedSeats + free === BENCH_SEAT_COUNT;
    if (now !== last || db.busy > 0) {
      last = now;
      changedAt = Date.now();
    } else if (Date.now() - changedAt >= (agreed ? SETTLED_AFTER_MS : STUCK_AFTER_MS)) {
      say(`settled ${seconds(Date.now() - started)} s after the load: ${now}`);
      return;
    }
    await sleep(1_000);
  }
  say(`did not settle within ${SETTLE_MS / 1000} s of the load (${last}): the final state may still be moving`);
}

/** Checks the seats against each other and against what wrk was told; says what is wrong on stderr. */
async function checkFinalState(app: BenchApp, observer: Observer, sale: Sale, counted: WrkResult, soldOut: boolean): Promise<{ sound: boolean; claims: SeatClaims }> {
  const { impl } = sale.implementation;
  const claims = await seatClaims(observer, sale.eventId);
  const problems: string[] = [];
  if (claims.oversold > 0) problems.push(`${claims.oversold} seat claims beyond one per seat`);
  if (claims.doubleBooked > 0) problems.push(`${claims.doubleBooked} seats in two or more holds`);
  if (counted.server_error > 0) problems.push(`${counted.server_error} answers were 5xx (the [worker] errors above say why)`);
  if (counted.socket_errors + counted.timeouts > 0) problems.push(`${counted.socket_errors} socket errors and ${counted.timeouts} timeouts`);
  if (claims.holds < counted.held) problems.push(`Postgres has ${claims.holds} live holds, fewer than the ${counted.held} answered 201`);
  const free = await availability(app.url, sale.eventId).catch((error: unknown) => {
    problems.push(error instanceof Error ? error.message : String(error));
    return undefined;
  });
  if (free) {
    if (free.freeInBitmap !== free.freeInSections) problems.push(`availability: ${free.freeInBitmap} free in the bitmap, ${free.freeInSections} in the section counts`);
    if (free.freeInBitmap + claims.claimedSeats !== BENCH_SEAT_COUNT) {
      problems.push(`${free.freeInBitmap} free per the Worker + ${claims.claimedSeats} held in Postgres = ${free.freeInBitmap + claims.claimedSeats}, not ${BENCH_SEAT_COUNT}`);
    }
    if (soldOut && free.freeInBitmap !== 0) problems.push(`sold out with ${free.freeInBitmap} seats still free`);
  }
  if (impl === "postgres") {
    const rows = await seatRows(observer, sale.eventId);
    if (rows.taken !== claims.claimedSeats) problems.push(`event_seats has ${rows.taken} seats taken, holds claim ${claims.claimedSeats}`);
    if (rows.disowned > 0) problems.push(`${rows.disowned} claimed seats whose event_seats row names another holder`);
  }
  say(
    `${impl}: final state: ${claims.holds} live holds claiming ${claims.claimedSeats} seats (${claims.claims} claims), ` +
      `${free ? free.freeInBitmap : "?"} free per the Worker's availability: ${problems.length === 0 ? "consistent" : `PROBLEMS: ${problems.join("; ")}`}`,
  );
  return { sound: problems.length === 0, claims };
}

// ------------------------------------------------------------------ helpers

/** Sessions Postgres has opened in this database so far (each costs the Worker a connection and a SCRAM handshake). */
async function postgresSessions(observer: Observer): Promise<number> {
  const result = await observer.execute<{ n: number }>(sql`select sessions::int as n from pg_stat_database where datname = current_database()`);
  return result.rows[0]?.n ?? 0;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
