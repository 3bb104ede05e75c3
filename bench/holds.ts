/**
 * `npm run bench -- holds`: how fast best-available holds of pairs are taken
 * at a 70,000-seat event with 64 fans at a time, by our design and by the
 * seed's own, in one run on one machine, and whether the seats each leaves
 * behind are sound. JSON lines on stdout (one per measurement, then a
 * summary); progress on stderr.
 *
 * Everything runs on loopback in a temporary folder: a fresh local stack, wrk
 * as the crowd (its own process, the same script for every design), and:
 * - `single`: the Worker and its Durable Objects in one workerd (lib/topology.ts);
 * - `split`: the stateless Worker in BENCH_WORKERS (2) workerd processes behind
 *   nginx, the objects in one more, as production runs them;
 * - `reference`: the seed's design (bench/reference/): a node:http server and
 *   Redis running the seed's Lua script (fixed to honour SET NX), best
 *   available from a sorted set;
 * - `postgres`: a calm event's holds in Postgres (single topology);
 * - the engines alone (`holds_engine` lines): one EventInventory fed batches by
 *   RPC (lib/bench-probe.ts) against Redis fed EVALSHA pipelines
 *   (reference/engine.ts), no HTTP in front.
 * Every hold request uses an admission token of its own (4 seats per account,
 * one attempt per token per 5 s), so each one is a real attempt; calm holds
 * use fan sessions. Before each load, the same connections GET a route that
 * does no I/O (`trivial_req_per_s`): holds_per_s / trivial_req_per_s
 * (`of_trivial`) compares runs on a busy and a quiet machine. Each line carries
 * the CPU of every process group and the machine's load at its start and end.
 *
 * BENCH_ONLY=reference,single,split,postgres,engine (any of them) runs a part;
 * BENCH_PROFILE=<folder> also takes CPU profiles of the Worker processes.
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
import { prepareWorker, snapshotProject, type TokenKeys } from "./lib/app.ts";
import { BENCH_PRICES, BENCH_SEAT_COUNT, benchStadiumChart } from "./lib/chart.ts";
import { groupDelta, readGroups, type GroupCpu } from "./lib/cpu.ts";
import { BENCH_PROBE_ENTRY, runEngineProbe, writeBenchProbe, type EngineRun } from "./lib/bench-probe.ts";
import { createFanAccounts, writeTokens } from "./lib/fans.ts";
import { openObserver, type Observer } from "./lib/observer.ts";
import { startProfile, type RunningProfile } from "./lib/profiler.ts";
import { runScenario, say, sleep, stopping, type Cleanup } from "./lib/scenario.ts";
import { availability, seatClaims, seatRows, type SeatClaims } from "./lib/seat-claims.ts";
import { startBenchStack } from "./lib/stack.ts";
import { startTopology, type Topology, type TopologyKind } from "./lib/topology.ts";
import { atLeast, atMost, thresholdsMet, type Threshold } from "./lib/thresholds.ts";
import { runWrk } from "./lib/wrk.ts";
import { runReferenceEngine } from "./reference/engine.ts";
import { auditReference, connectReference, loadSeats } from "./reference/inventory.ts";
import { startReference, type Reference } from "./reference/process.ts";

const CONCURRENCY = 64;
const WRK_THREADS = 2;
const QUANTITY = 2;
/** Fresh accounts (and tokens per run): 35,000 pairs sell the house, plus margin. */
const FANS = 40_000;
/** A wrk thread stops after this many sold_out answers in a row. */
const SOLD_OUT_STREAK = 16;
/** The hot runs sell out in seconds; this bounds a broken run. */
const HOT_WINDOW_SECONDS = 120;
/** Postgres is far slower on a 70,000-seat event: it gets a fixed window. */
const CALM_WINDOW_SECONDS = 60;
/** After the load, requests still in the Worker and the hot event's mirror to Postgres must settle within this. */
const SETTLE_MS = 120_000;
/** Settled: Postgres and the Worker agree and nothing moved for this long (the Worker caches availability for 2 s). */
const SETTLED_AFTER_MS = 3_000;
/** Settled, though they disagree: nothing moved for this long. */
const STUCK_AFTER_MS = 8_000;
/** How long the hot events' admission tokens last (the waiting room issues 15-minute ones). */
const ADMISSION_TTL_MS = 15 * 60 * 1000;
/** The engines' feed: batches of the hold lane's size, a few in flight. */
const ENGINE_BATCH = 64;
const ENGINE_IN_FLIGHT = 4;
/** Stateless Worker processes of the split topology. */
const STATELESS_WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
/** The issue's bars (on a quiet machine): holds at 0.7 of the trivial route's rate in one process, p99 under 100 ms. */
const MIN_OF_TRIVIAL = 0.7;
const MAX_P99_MS = 100;

const PARTS = ["reference", "single", "split", "postgres", "engine"] as const;
type Part = (typeof PARTS)[number];
/** `BENCH_ONLY=single,reference`: the parts to run (all by default). */
const ONLY = new Set((process.env.BENCH_ONLY ?? PARTS.join(",")).split(",").map((part) => part.trim()));
const runs = (part: Part) => ONLY.has(part);
/** `BENCH_PROFILE=<folder>`: write CPU profiles of the Worker processes under load there (lib/profiler.ts). */
const PROFILE_DIR = process.env.BENCH_PROFILE;

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.join(BENCH_DIR, "holds.lua");
/** The baseline's script: GETs one path and counts the answers. */
const BASELINE_SCRIPT = path.join(BENCH_DIR, "queue-poll.lua");
/** Our no-I/O route: the public keys. The reference's: GET /api/trivial. */
const BASELINE_PATH = "/.well-known/jwks.json";
const REFERENCE_BASELINE_PATH = "/api/trivial";
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

/** What every line carries about the machine while it was measured. */
interface MachineFields {
  /** CPU per hold (or per request of the baseline) by process group, µs. */
  cpu_us_per_hold: Record<string, number>;
  machine_busy_pct: number;
  /** CPU the machine spent outside the groups (other sessions), ms. */
  outside_cpu_ms: number;
  load_avg_start: number;
  load_avg_end: number;
}

/** One load's line. */
interface HoldsLine extends MachineFields {
  bench: "holds";
  impl: "durable_object" | "postgres" | "reference";
  topology: TopologyKind | "node_redis";
  concurrency: number;
  holds_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** Requests/s of the no-I/O baseline route through the same front, measured just before. */
  trivial_req_per_s: number;
  of_trivial: number;
  cpu_us_per_trivial: Record<string, number>;
  reference_holds_per_s?: number;
  ratio_to_reference?: number;
  holds: number;
  seats: number;
  sold_out: boolean;
  duration_s: number;
  oversold: number;
  double_booked: number;
}

/** One engine's line. */
interface EngineLine extends MachineFields {
  bench: "holds_engine";
  topology: TopologyKind;
  batch: number;
  in_flight: number;
  engine_holds_per_s: number;
  reference_engine_holds_per_s?: number;
  engine_ratio_to_reference?: number;
  /** The reference engine's CPU per hold by group (Redis, and this process feeding it). */
  reference_cpu_us_per_hold?: Record<string, number>;
  holds: number;
  oversold: number;
  double_booked: number;
}

/** A load of fans on one event: its tokens and the account outside the crowd that probes it first. */
interface Sale {
  eventId: string;
  tokensFile: string;
  probeToken: string;
}

/** Everything set up before the first load. */
interface Setup {
  apiKey: string;
  fans: string[];
  sales: Partial<Record<"single" | "split" | "postgres" | "reference", Sale>>;
  /** Hot events for the engine runs, per topology. */
  engineEvents: Partial<Record<TopologyKind, string>>;
}

runScenario(async (cleanup) => {
  const loadAtStart = load1();
  const { workDir, stack } = await startBenchStack(cleanup);
  const { observer, close: closeObserver } = await openObserver(stack.databaseUrl);
  cleanup.add("observer connection", closeObserver);
  const keys: TokenKeys = { TOKEN_SIGNING_KEY: await generateSigningKey("bench"), ADMISSION_TOKEN_KEY: await generateAdmissionKey("bench") };
  // Set up through the app's own functions and driver, like `npm run db:seed`.
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  const setup = await setUp(db, workDir, keys).finally(close);

  // One snapshot and one bundle (with the engine probe's entry) for every Worker process of the run.
  const projectDir = path.join(workDir, "project");
  await snapshotProject(REPO_ROOT, projectDir);
  const probeSecret = await writeBenchProbe(projectDir);
  const bundle = path.join(workDir, "bundle");
  let started = Date.now();
  const source = await prepareWorker({ repoRoot: REPO_ROOT, projectDir, stack, keys, envDir: path.join(workDir, "worker"), bundle, entry: BENCH_PROBE_ENTRY });
  say(`built the Worker bundle (${seconds(Date.now() - started)} s)`);
  const postgresPid = stack.postgresPid;

  let sound = true;
  const holdsLines: HoldsLine[] = [];
  const engineLines: EngineLine[] = [];
  let referenceEngine: { run: EngineRun; cpu: Record<string, number> } | undefined;

  // The seed's reference design: HTTP load, then its engine alone.
  const referenceSale = setup.sales.reference;
  if (referenceSale && !stopping()) {
    const reference = await startReferenceFor(cleanup, workDir, source.envFile);
    try {
      const measured = await loadReference(reference, referenceSale, postgresPid, cleanup);
      holdsLines.push(measured.line);
      sound &&= measured.sound;
      if (runs("engine")) referenceEngine = await referenceEngineRun(reference, setup.fans, postgresPid);
    } finally {
      await reference.stop();
    }
  }

  for (const kind of ["single", "split"] as const) {
    const sale = setup.sales[kind];
    const engineEvent = setup.engineEvents[kind];
    if ((!sale && !engineEvent) || stopping()) continue;
    say(`${kind}: starting the Worker${kind === "split" ? `: ${STATELESS_WORKERS} stateless processes behind nginx, the objects in one more` : ""}`);
    started = Date.now();
    const topology = await startTopology(kind, source, path.join(workDir, `run-${kind}`), STATELESS_WORKERS);
    const forget = cleanup.add(`the Worker (${kind})`, () => topology.stop());
    say(`${kind}: healthy at ${topology.url} (${seconds(Date.now() - started)} s)`);
    try {
      if (sale) {
        await prepareInventory(topology.url, setup.apiKey, sale.eventId);
        const measured = await loadOurs(topology, observer, sale, "durable_object", postgresPid, cleanup);
        if (measured) {
          holdsLines.push(measured.line);
          sound &&= measured.sound;
        } else sound = false;
      }
      if (engineEvent && !stopping()) {
        const measured = await engineRun(topology, observer, setup, engineEvent, probeSecret, postgresPid);
        engineLines.push(measured.line);
        sound &&= measured.sound;
      }
    } finally {
      await topology.stop();
      forget();
    }
  }

  // Calm events hold in Postgres: a Worker of its own, so nothing the hot runs left behind is its problem.
  const calm = setup.sales.postgres;
  if (calm && !stopping()) {
    const topology = await startTopology("single", source, path.join(workDir, "run-postgres"), 1);
    const forget = cleanup.add("the Worker (postgres)", () => topology.stop());
    try {
      const measured = await loadOurs(topology, observer, calm, "postgres", postgresPid, cleanup);
      if (measured) {
        holdsLines.push(measured.line);
        sound &&= measured.sound;
      } else sound = false;
    } finally {
      await topology.stop();
      forget();
    }
  }

  // Lines, with the ratios to the reference that ran first.
  const referenceLine = holdsLines.find((line) => line.impl === "reference");
  for (const line of holdsLines) {
    if (referenceLine && line !== referenceLine && line.impl === "durable_object") {
      line.reference_holds_per_s = referenceLine.holds_per_s;
      line.ratio_to_reference = round(line.holds_per_s / Math.max(referenceLine.holds_per_s, 1e-9), 3);
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  for (const line of engineLines) {
    if (referenceEngine) {
      const referencePerS = perSecond(referenceEngine.run);
      line.reference_engine_holds_per_s = round(referencePerS, 1);
      line.engine_ratio_to_reference = round(line.engine_holds_per_s / Math.max(referencePerS, 1e-9), 3);
      line.reference_cpu_us_per_hold = referenceEngine.cpu;
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  const totals = summary(holdsLines, engineLines, referenceEngine?.run, loadAtStart);
  process.stdout.write(`${JSON.stringify(totals)}\n`);
  return thresholdsMet(totals.thresholds) && sound ? 0 : 1;
});

// ------------------------------------------------------------------ setting up

/** The organizer, the venue, an on-sale event per run, the fans, and each run's tokens. */
async function setUp(db: Db, workDir: string, keys: TokenKeys): Promise<Setup> {
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
  const newEvent = async (demandClass: "hot" | "calm", name: string) => {
    const event = await createEvent(
      db,
      organizerId,
      createEventSchema.parse({
        venueId: venue.id,
        name: `Bench sale (${name})`,
        startsAt: new Date(now + 30 * 24 * 3_600_000).toISOString(),
        saleStartsAt: new Date(now - 60_000).toISOString(),
        purchaseLimit: 4,
        demandClass,
        status: "published",
        prices: BENCH_PRICES,
      }),
    );
    if (event.saleState !== "on_sale") throw new Error(`the ${name} event is ${event.saleState}, not on sale`);
    return event.id;
  };
  const fans = await createFanAccounts(db, FANS, "bench-fan-");
  const [probeAccount] = await createFanAccounts(db, 1, "bench-probe-");
  if (!probeAccount) throw new Error("no probe account");
  lap(`created ${FANS.toLocaleString("en-US")} fan accounts`);

  const sales: Setup["sales"] = {};
  const engineEvents: Setup["engineEvents"] = {};
  const admissions = (eventId: string) => (accountId: string) =>
    signAdmissionToken(keys.ADMISSION_TOKEN_KEY, { accountId, eventId, admissionId: randomUUID(), expiresAt: Date.now() + ADMISSION_TTL_MS });
  const saleOf = async (name: string, eventId: string, sign: (accountId: string) => Promise<string>): Promise<Sale> => {
    const tokensFile = path.join(workDir, `tokens-${name}.txt`);
    // Tokens of their own per run: the Worker caches verified tokens, and each run should pay for verifying its own.
    await writeTokens(tokensFile, fans, sign);
    return { eventId, tokensFile, probeToken: await sign(probeAccount) };
  };
  if (runs("reference")) {
    // The reference's event lives only in its Redis: any id will do.
    const eventId = randomUUID();
    sales.reference = await saleOf("reference", eventId, admissions(eventId));
  }
  for (const kind of ["single", "split"] as const) {
    if (runs(kind)) {
      const eventId = await newEvent("hot", kind);
      sales[kind] = await saleOf(kind, eventId, admissions(eventId));
    }
    if (runs("engine") && runs(kind)) engineEvents[kind] = await newEvent("hot", `${kind} engine`);
  }
  if (runs("postgres")) sales.postgres = await saleOf("postgres", await newEvent("calm", "postgres"), (accountId) => signFanSession(keys.TOKEN_SIGNING_KEY, accountId));
  lap(`created the events and signed each run's ${FANS.toLocaleString("en-US")} tokens`);
  return { apiKey, fans, sales, engineEvents };
}

/** Loads a hot event's seats into its Durable Object, so the load does not time that. */
async function prepareInventory(url: string, apiKey: string, eventId: string): Promise<void> {
  const started = Date.now();
  const response = await fetch(`${url}/admin/events/${eventId}/prepare`, {
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

// ------------------------------------------------------------------ our design

/** One load on our Worker: probe, baseline, the crowd, the final state. Undefined when a single hold does not work. */
async function loadOurs(
  topology: Topology,
  observer: Observer,
  sale: Sale,
  impl: "durable_object" | "postgres",
  postgresPid: number | undefined,
  cleanup: Cleanup,
): Promise<{ line: HoldsLine; sound: boolean } | undefined> {
  const name = impl === "postgres" ? "postgres" : topology.kind;
  const probe = await probeHold(topology.url, sale, name);
  if (!probe.ok) {
    say(`SKIPPED ${name}: a single hold does not work: ${probe.problem}`);
    return undefined;
  }
  const groups = () => readGroups(topology.cpuMs(), postgresPid);
  const baseline = await measureBaseline(topology.url, BASELINE_PATH, groups, cleanup);
  say(`${name}: baseline: ${CONCURRENCY} connections GET ${BASELINE_PATH} (no I/O) at ${baseline.perSecond.toFixed(0)}/s; CPU per request: ${describeUs(baseline.cpuUs)}`);

  const window = impl === "postgres" ? CALM_WINDOW_SECONDS : HOT_WINDOW_SECONDS;
  const loadStart = load1();
  say(`${name}: ${CONCURRENCY} connections hold pairs for up to ${window} s (load average before: ${loadStart.toFixed(2)})...`);
  const sessionsBefore = await postgresSessions(observer);
  const profiles = PROFILE_DIR ? await startProfiles(topology) : [];
  const before = groups();
  const counted = await crowd(topology.url, sale, window, name, cleanup);
  const cpu = groupDelta(before, groups());
  const loadEnd = load1();
  for (const { label, profile } of profiles) await reportProfile(label, profile, counted.held, topology.kind === "single" || label.endsWith("objects"));
  const { connections } = await databaseState(observer, sale.eventId);
  reportRun(name, counted, cpu, { opened: (await postgresSessions(observer)) - sessionsBefore, open: connections });

  await waitUntilSettled(topology.url, observer, sale.eventId);
  const soldOut = counted.stopped_sold_out > 0;
  const { sound, claims } = await checkFinalState(topology.url, observer, sale.eventId, impl, counted, soldOut);
  return {
    sound,
    line: holdsLine(impl, topology.kind, { counted, baseline, cpu, loadStart, loadEnd, soldOut, oversold: claims.oversold, doubleBooked: claims.doubleBooked }),
  };
}

/** A load's line from what wrk counted, the baseline before it, the CPU during it and the final state's audit. */
function holdsLine(
  impl: HoldsLine["impl"],
  topology: HoldsLine["topology"],
  run: {
    counted: WrkResult;
    baseline: { perSecond: number; cpuUs: Record<string, number> };
    cpu: ReturnType<typeof groupDelta>;
    loadStart: number;
    loadEnd: number;
    soldOut: boolean;
    oversold: number;
    doubleBooked: number;
  },
): HoldsLine {
  const { counted, baseline } = run;
  const durationS = counted.duration_us / 1e6;
  return {
    bench: "holds",
    impl,
    topology,
    concurrency: CONCURRENCY,
    holds_per_s: round(counted.held / durationS, 1),
    p50_ms: round(counted.p50_us / 1000, 2),
    p99_ms: round(counted.p99_us / 1000, 2),
    trivial_req_per_s: round(baseline.perSecond, 0),
    of_trivial: round(counted.held / durationS / Math.max(baseline.perSecond, 1e-9), 3),
    cpu_us_per_trivial: baseline.cpuUs,
    ...machineFields(run.cpu, counted.held, run.loadStart, run.loadEnd),
    holds: counted.held,
    seats: BENCH_SEAT_COUNT,
    sold_out: run.soldOut,
    duration_s: round(durationS, 2),
    oversold: run.oversold,
    double_booked: run.doubleBooked,
  };
}

/** wrk as the crowd: each request holds the best pair with a fresh token, until sold out (or the window ends). */
async function crowd(url: string, sale: Sale, windowSeconds: number, name: string, cleanup: Cleanup): Promise<WrkResult> {
  const wrk = runWrk({
    url,
    script: SCRIPT,
    threads: WRK_THREADS,
    connections: CONCURRENCY,
    durationSeconds: windowSeconds,
    // A slower answer still counts, in the latencies too.
    timeoutSeconds: windowSeconds,
    scriptArgs: [sale.tokensFile, `/api/events/${sale.eventId}/holds/best`, String(WRK_THREADS), `bench-${name}-`, String(SOLD_OUT_STREAK), String(QUANTITY)],
  });
  const forgetWrk = cleanup.add("wrk", () => wrk.kill());
  try {
    return wrkResultSchema.parse(await wrk.result);
  } finally {
    forgetWrk();
  }
}

/** The engine alone on our side: the probe feeds the event's object batches by RPC until it is sold out. */
async function engineRun(
  topology: Topology,
  observer: Observer,
  setup: Setup,
  eventId: string,
  probeSecret: string,
  postgresPid: number | undefined,
): Promise<{ line: EngineLine; sound: boolean }> {
  await prepareInventory(topology.url, setup.apiKey, eventId);
  const caller = topology.workers[0];
  if (!caller) throw new Error("the topology has no Worker");
  const loadStart = load1();
  say(`${topology.kind}: the engine alone: ${ENGINE_IN_FLIGHT} batches of ${ENGINE_BATCH} holds in flight to one EventInventory, no HTTP...`);
  const before = readGroups(topology.cpuMs(), postgresPid);
  const run = await runEngineProbe(caller.url, probeSecret, eventId, { accounts: setup.fans, quantity: QUANTITY, batch: ENGINE_BATCH, inFlight: ENGINE_IN_FLIGHT });
  const cpu = groupDelta(before, readGroups(topology.cpuMs(), postgresPid));
  const loadEnd = load1();
  say(`${topology.kind}: the engine: ${run.holds} holds in ${(run.elapsedMs / 1000).toFixed(2)} s = ${perSecond(run).toFixed(0)}/s; refused: ${JSON.stringify(run.refusals)}; CPU per hold: ${describeUs(perHold(cpu.groups, run.holds))}`);
  await waitUntilSettled(topology.url, observer, eventId);
  const claims = await seatClaims(observer, eventId);
  const problems = engineProblems(run, claims.claimedSeats, claims.holds);
  if (claims.oversold > 0 || claims.doubleBooked > 0) problems.push(`Postgres: ${claims.oversold} oversold, ${claims.doubleBooked} double-booked`);
  say(`${topology.kind}: the engine's final state: ${claims.holds} holds claiming ${claims.claimedSeats} seats: ${problems.length === 0 ? "consistent" : `PROBLEMS: ${problems.join("; ")}`}`);
  return {
    sound: problems.length === 0,
    line: {
      bench: "holds_engine",
      topology: topology.kind,
      batch: ENGINE_BATCH,
      in_flight: ENGINE_IN_FLIGHT,
      engine_holds_per_s: round(perSecond(run), 1),
      ...machineFields(cpu, run.holds, loadStart, loadEnd),
      holds: run.holds,
      oversold: claims.oversold,
      double_booked: claims.doubleBooked,
    },
  };
}

/** What an engine run's answers say against its final state: every seat once, the house sold, as many holds as answers. */
function engineProblems(run: EngineRun, claimedSeats: number, holds: number): string[] {
  const problems: string[] = [];
  const distinct = new Set(run.seats).size;
  if (distinct !== run.seats.length) problems.push(`${run.seats.length - distinct} seats answered to two holds`);
  if (run.holds * QUANTITY !== run.seats.length) problems.push(`${run.holds} holds answered with ${run.seats.length} seats`);
  if (claimedSeats !== run.seats.length) problems.push(`${claimedSeats} seats claimed in the final state, ${run.seats.length} answered`);
  if (holds !== run.holds) problems.push(`${holds} holds in the final state, ${run.holds} answered`);
  if (run.seats.length !== BENCH_SEAT_COUNT) problems.push(`sold ${run.seats.length} of ${BENCH_SEAT_COUNT} seats`);
  return problems;
}

// ------------------------------------------------------------------ the seed's reference design

async function startReferenceFor(cleanup: Cleanup, workDir: string, envFile: string): Promise<Reference> {
  say("reference: starting Redis (appendonly, fsync every second) and the node:http server");
  const starting = startReference(REPO_ROOT, path.join(workDir, "reference"), envFile);
  cleanup.add("the reference", async () => (await starting.catch(() => undefined))?.stop());
  return starting;
}

async function loadReference(reference: Reference, sale: Sale, postgresPid: number | undefined, cleanup: Cleanup): Promise<{ line: HoldsLine; sound: boolean }> {
  const redis = await connectReference(reference.redisUrl, { autoPipelining: false });
  try {
    await loadSeats(redis, sale.eventId, benchStadiumChart());
    const groups = () => readGroups(reference.cpuMs(), postgresPid);
    const baseline = await measureBaseline(reference.url, REFERENCE_BASELINE_PATH, groups, cleanup);
    say(`reference: baseline: ${CONCURRENCY} connections GET ${REFERENCE_BASELINE_PATH} (no I/O) at ${baseline.perSecond.toFixed(0)}/s; CPU per request: ${describeUs(baseline.cpuUs)}`);
    const loadStart = load1();
    say(`reference: ${CONCURRENCY} connections hold pairs for up to ${HOT_WINDOW_SECONDS} s (load average before: ${loadStart.toFixed(2)})...`);
    const before = groups();
    const counted = await crowd(reference.url, sale, HOT_WINDOW_SECONDS, "reference", cleanup);
    const cpu = groupDelta(before, groups());
    const loadEnd = load1();
    reportRun("reference", counted, cpu, undefined);
    const audit = await auditReference(redis, sale.eventId, BENCH_SEAT_COUNT);
    const soldOut = counted.stopped_sold_out > 0;
    const problems = [...audit.problems, ...answerProblems(counted)];
    if (audit.holds !== counted.held) problems.push(`Redis has ${audit.holds} holds, ${counted.held} answered 201`);
    if (soldOut && audit.free !== 0) problems.push(`sold out with ${audit.free} seats still free`);
    if (audit.oversold > 0 || audit.doubleBooked > 0) problems.push(`${audit.oversold} oversold, ${audit.doubleBooked} double-booked`);
    say(`reference: final state: ${audit.holds} holds claiming ${audit.claimedSeats} seats, ${audit.free} free: ${problems.length === 0 ? "consistent" : `PROBLEMS: ${problems.join("; ")}`}`);
    return {
      sound: problems.length === 0,
      line: holdsLine("reference", "node_redis", { counted, baseline, cpu, loadStart, loadEnd, soldOut, oversold: audit.oversold, doubleBooked: audit.doubleBooked }),
    };
  } finally {
    redis.disconnect();
  }
}

/** The reference engine on a fresh event of its own in the reference's Redis. */
async function referenceEngineRun(reference: Reference, fans: string[], postgresPid: number | undefined): Promise<{ run: EngineRun; cpu: Record<string, number> }> {
  const eventId = randomUUID();
  const redis = await connectReference(reference.redisUrl, { autoPipelining: false });
  try {
    await loadSeats(redis, eventId, benchStadiumChart());
    say(`reference: the engine alone: ${ENGINE_IN_FLIGHT} pipelines of ${ENGINE_BATCH} EVALSHA in flight, no HTTP...`);
    const before = readGroups(reference.cpuMs(), postgresPid);
    const run = await runReferenceEngine(reference.redisUrl, eventId, { accounts: fans, quantity: QUANTITY, batch: ENGINE_BATCH, inFlight: ENGINE_IN_FLIGHT });
    const cpu = perHold(groupDelta(before, readGroups(reference.cpuMs(), postgresPid)).groups, run.holds);
    const audit = await auditReference(redis, eventId, BENCH_SEAT_COUNT);
    const problems = [...audit.problems, ...engineProblems(run, audit.claimedSeats, audit.holds)];
    say(
      `reference: the engine: ${run.holds} holds in ${(run.elapsedMs / 1000).toFixed(2)} s = ${perSecond(run).toFixed(0)}/s; CPU per hold: ${describeUs(cpu)}; ` +
        `final state: ${problems.length === 0 ? "consistent" : `PROBLEMS: ${problems.join("; ")}`}`,
    );
    return { run, cpu };
  } finally {
    redis.disconnect();
  }
}

// ------------------------------------------------------------------ measuring

/** The no-I/O route's rate through `url`, with the same connections as the load; CPU per request by group. */
async function measureBaseline(url: string, pathname: string, groups: () => GroupCpu, cleanup: Cleanup): Promise<{ perSecond: number; cpuUs: Record<string, number> }> {
  const before = groups();
  const wrk = runWrk({ url, script: BASELINE_SCRIPT, threads: WRK_THREADS, connections: CONCURRENCY, durationSeconds: BASELINE_SECONDS, timeoutSeconds: BASELINE_SECONDS, scriptArgs: [pathname] });
  const forgetWrk = cleanup.add("wrk (baseline)", () => wrk.kill());
  const result = baselineResultSchema.parse(await wrk.result);
  forgetWrk();
  const cpu = groupDelta(before, groups());
  if (result.ok !== result.requests) throw new Error(`the baseline route answered ${result.requests - result.ok} of ${result.requests} requests with an error`);
  return { perSecond: result.ok / (result.duration_us / 1e6), cpuUs: perHold(cpu.groups, result.ok) };
}

/** One hold and its release by an account outside the crowd: the path works (and is warm) before it is timed. */
async function probeHold(url: string, sale: Sale, name: string): Promise<{ ok: true } | { ok: false; problem: string }> {
  const headers = { Authorization: `Bearer ${sale.probeToken}`, "Content-Type": "application/json" };
  const base = `${url}/api/events/${sale.eventId}`;
  const held = await fetch(`${base}/holds/best`, {
    method: "POST",
    headers,
    body: JSON.stringify({ requestId: `bench-probe-${name}`, quantity: QUANTITY }),
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

/** The profiles of a load: every Worker process (split: the objects' and each stateless one). */
async function startProfiles(topology: Topology): Promise<{ label: string; profile: RunningProfile }[]> {
  const hosts = topology.kind === "single" ? [topology.objects] : [topology.objects, ...topology.workers];
  return Promise.all(
    hosts.map(async (host) => ({ label: `holds-${topology.kind}-${host.workerName}`, profile: await startProfile(host.inspectorPort, host.workerName) })),
  );
}

async function reportProfile(label: string, profile: RunningProfile, held: number, hasObject: boolean): Promise<void> {
  if (!PROFILE_DIR) return;
  const summary = await profile.stop(PROFILE_DIR, label);
  say(`${label}: CPU profile (self time):\n${summary.text.split("\n").slice(0, 40).join("\n")}`);
  if (held === 0) return;
  // The object's share: its hold batches (applyHolds) and its alarm (expiry, the mirror to Postgres).
  const objectMs = hasObject ? summary.inclusiveMs("applyHolds") + summary.inclusiveMs("alarm") : 0;
  say(
    `${label}: profiled time per hold: ${(summary.busyMs / held).toFixed(3)} ms in the isolate` +
      (hasObject ? `, of which the object's ${(objectMs / held).toFixed(3)} ms (one object alone would take about ${Math.round(held / Math.max(objectMs / 1000, 1e-9))} holds/s)` : ""),
  );
}

function reportRun(name: string, counted: WrkResult, cpu: ReturnType<typeof groupDelta>, postgres: { opened: number; open: number } | undefined): void {
  const durationS = counted.duration_us / 1e6;
  say(
    `${name}: ${counted.held} holds in ${durationS.toFixed(2)} s = ${(counted.held / durationS).toFixed(1)}/s; ` +
      `latency p50 ${(counted.p50_us / 1000).toFixed(2)} ms, p99 ${(counted.p99_us / 1000).toFixed(2)} ms, max ${(counted.max_us / 1000).toFixed(2)} ms`,
  );
  say(
    `${name}: answers: ${counted.requests} requests, ${counted.held} held, ${counted.sold_out} sold_out, ${counted.seat_taken} seat_taken, ` +
      `${counted.over_limit} over_limit, ${counted.too_fast} too_fast, ${counted.unauthorized} 401, ${counted.server_error} 5xx, ${counted.other} other, ` +
      `${counted.socket_errors} socket errors, ${counted.timeouts} timeouts${counted.exhausted > 0 ? "; ran out of fresh tokens" : ""}`,
  );
  say(
    `${name}: CPU during the load per hold: ${describeUs(perHold(cpu.groups, counted.held))}; the machine was ${cpu.machineBusyPct}% busy, ` +
      `${cpu.outsideMs} ms of it outside this benchmark`,
  );
  if (postgres) say(`${name}: Postgres sessions opened during the load: ${postgres.opened}; connections open at its end: ${postgres.open}`);
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
async function waitUntilSettled(url: string, observer: Observer, eventId: string): Promise<void> {
  const started = Date.now();
  let last = "";
  let changedAt = Date.now();
  while (Date.now() - started < SETTLE_MS && !stopping()) {
    const db = await databaseState(observer, eventId);
    const free = await availability(url, eventId).then(
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

/** What wrk was told that no sound run answers: 5xx, broken sockets, timeouts. */
function answerProblems(counted: WrkResult): string[] {
  const problems: string[] = [];
  if (counted.server_error > 0) problems.push(`${counted.server_error} answers were 5xx (the errors above say why)`);
  if (counted.socket_errors + counted.timeouts > 0) problems.push(`${counted.socket_errors} socket errors and ${counted.timeouts} timeouts`);
  return problems;
}

/** Checks the seats against each other and against what wrk was told; says what is wrong on stderr. */
async function checkFinalState(
  url: string,
  observer: Observer,
  eventId: string,
  impl: "durable_object" | "postgres",
  counted: WrkResult,
  soldOut: boolean,
): Promise<{ sound: boolean; claims: SeatClaims }> {
  const claims = await seatClaims(observer, eventId);
  const problems = answerProblems(counted);
  if (claims.oversold > 0) problems.push(`${claims.oversold} seat claims beyond one per seat`);
  if (claims.doubleBooked > 0) problems.push(`${claims.doubleBooked} seats in two or more holds`);
  if (claims.holds < counted.held) problems.push(`Postgres has ${claims.holds} live holds, fewer than the ${counted.held} answered 201`);
  const free = await availability(url, eventId).catch((error: unknown) => {
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
    const rows = await seatRows(observer, eventId);
    if (rows.taken !== claims.claimedSeats) problems.push(`event_seats has ${rows.taken} seats taken, holds claim ${claims.claimedSeats}`);
    if (rows.disowned > 0) problems.push(`${rows.disowned} claimed seats whose event_seats row names another holder`);
  }
  say(
    `${impl}: final state: ${claims.holds} live holds claiming ${claims.claimedSeats} seats (${claims.claims} claims), ` +
      `${free ? free.freeInBitmap : "?"} free per the Worker's availability: ${problems.length === 0 ? "consistent" : `PROBLEMS: ${problems.join("; ")}`}`,
  );
  return { sound: problems.length === 0, claims };
}

// ------------------------------------------------------------------ lines

/** The run in one line: each acceptance figure by topology. */
function summary(holds: HoldsLine[], engines: EngineLine[], referenceEngine: EngineRun | undefined, loadAtStart: number) {
  const ours = (kind: TopologyKind) => holds.find((line) => line.impl === "durable_object" && line.topology === kind);
  const byTopology = <T>(pick: (line: HoldsLine) => T) => Object.fromEntries((["single", "split"] as const).flatMap((kind) => (ours(kind) ? [[kind, pick(ours(kind) as HoldsLine)]] : [])));
  const reference = holds.find((line) => line.impl === "reference");
  const oversold = [...holds, ...engines].reduce((sum, line) => sum + line.oversold, 0);
  const doubleBooked = [...holds, ...engines].reduce((sum, line) => sum + line.double_booked, 0);
  const single = ours("single");
  // The issue's bars: of_trivial in one process, p99 of ours in each topology, and a sound final state.
  const thresholds: Record<string, Threshold> = {
    ...(single ? { of_trivial_single: atLeast(single.of_trivial, MIN_OF_TRIVIAL) } : {}),
    ...Object.fromEntries((["single", "split"] as const).flatMap((kind) => {
      const line = ours(kind);
      return line ? [[`p99_ms_${kind}`, atMost(line.p99_ms, MAX_P99_MS)]] : [];
    })),
    oversold: atMost(oversold, 0),
    double_booked: atMost(doubleBooked, 0),
  };
  return {
    bench: "holds_summary",
    holds_per_s: byTopology((line) => line.holds_per_s),
    of_trivial: byTopology((line) => line.of_trivial),
    p99_ms: { ...byTopology((line) => line.p99_ms), ...(reference ? { reference: reference.p99_ms } : {}) },
    reference_holds_per_s: reference?.holds_per_s ?? null,
    ratio_to_reference: byTopology((line) => line.ratio_to_reference ?? null),
    engine_holds_per_s: Object.fromEntries(engines.map((line) => [line.topology, line.engine_holds_per_s])),
    reference_engine_holds_per_s: referenceEngine ? round(perSecond(referenceEngine), 1) : null,
    engine_ratio_to_reference: Object.fromEntries(engines.map((line) => [line.topology, line.engine_ratio_to_reference ?? null])),
    oversold,
    double_booked: doubleBooked,
    thresholds,
    load_avg_start: round(loadAtStart, 2),
    load_avg_end: round(load1(), 2),
  };
}

function machineFields(cpu: ReturnType<typeof groupDelta>, holds: number, loadStart: number, loadEnd: number): MachineFields {
  return {
    cpu_us_per_hold: perHold(cpu.groups, holds),
    machine_busy_pct: cpu.machineBusyPct,
    outside_cpu_ms: cpu.outsideMs,
    load_avg_start: round(loadStart, 2),
    load_avg_end: round(loadEnd, 2),
  };
}

// ------------------------------------------------------------------ helpers

/** Sessions Postgres has opened in this database so far. */
async function postgresSessions(observer: Observer): Promise<number> {
  const result = await observer.execute<{ n: number }>(sql`select sessions::int as n from pg_stat_database where datname = current_database()`);
  return result.rows[0]?.n ?? 0;
}

/** CPU ms by group over `count` items, as whole µs per item (groups that used nothing left out). */
function perHold(groups: Record<string, number>, count: number): Record<string, number> {
  return Object.fromEntries(Object.entries(groups).flatMap(([name, ms]) => (ms > 0 && count > 0 ? [[name, Math.round((1000 * ms) / count)]] : [])));
}

function describeUs(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .map(([name, us]) => `${name} ${us} µs`)
    .join(", ");
}

function perSecond(run: EngineRun): number {
  return run.holds / Math.max(run.elapsedMs / 1000, 1e-9);
}

function load1(): number {
  return loadavg()[0] ?? 0;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
