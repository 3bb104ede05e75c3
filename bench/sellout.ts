/**
 * `npm run bench -- sellout [--chaos] [--full] [--seats N] [--fans N] [--rate N] [--time-scale X] [--sale-seconds S]`:
 * one hot event sold out end to end on the real local stack, one JSON line on
 * stdout (progress on stderr).
 *
 * The stack is lib/stack.ts's (Postgres behind PgBouncer, Redis, the mail
 * outbox, Turnstile's stand-in), the local Stripe gateway (dev/stripe-gateway)
 * and the production bundle under Miniflare (lib/app.ts), run from a bench-only
 * entry (lib/room-probe.ts + lib/sellout-probe.ts: bulk lobby joins and the
 * chaos mode's fault hooks; every route and handler is the app's own).
 *
 * The fans: every one joins the lobby before the sale (in bulk, through each
 * lobby shard's own join: lib/room-probe.ts), so the queue order is the
 * room's random order. The bench then watches the published queue document
 * (the `/queue` route, as waiting fans poll it from the edge) and each fan
 * whose key the threshold passed goes the whole way over HTTP as a browser
 * would: admission (its lobby ticket for an admission token), a
 * best-available hold of 1 to 4 places, then payment with the seed's mix
 * (cards select the outcome at the gateway): 64% pay at once, 8% after a 3-D
 * Secure challenge, 8% after a decline and a second card, 10% abandon (the
 * hold lapses at its TTL) and 10% are declined and give up (they release the
 * hold). Confirmation is the Worker's own: the webhook, the ticket-sales
 * queue consumer writing the order and tickets to Postgres, the delivery
 * consumer emailing them. Fans told "sold out" join the waitlist (up to
 * WAITLIST_CAP of them) and pay the offers they get; places nobody takes go
 * back to the line. The cron runs as production runs it, every 60 s of the
 * scaled clock, through `/cdn-cgi/local/scheduled`.
 *
 * Time scale (`--time-scale`, default 0.05): the cron period (60 s × scale),
 * the decline-retry window (the event's declineRetrySeconds, 120 s × scale)
 * and the chaos faults' durations (e.g. Postgres down 60 s × scale), and, through
 * the Worker's TIME_SCALE (core/time-scale.ts), the sale's own timers: the
 * event's hold TTL (the default 600 s: 30 s at 0.05) and its 0-60 s jitter,
 * admission promises (10 min) and the waitlist's turn at returned places (90 s).
 *
 * `--chaos` injects, during the sale: Postgres stopped (SIGSTOP, the whole
 * process tree) for 60 s × scale; workerd killed (SIGKILL) and restarted (every
 * object evicted, storage kept); one inventory object's storage wiped (rebuilt
 * from Postgres on its next request); a burst of gateway timeouts and 5xx; a
 * ticket-sales consumer invocation failing mid-batch; the mail provider down
 * for 60 s × scale. Afterwards every invariant is checked against Postgres, the
 * gateway's ledger and the mail outbox.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { loadavg } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { openDb } from "../dev/seed.ts";
import { REPO_ROOT } from "../dev/stack.ts";
import { generateSigningKey } from "../dev/signing-key.ts";
import { startStripeGateway } from "../dev/stripe-gateway/index.ts";
import { CHALLENGE_PATH } from "../dev/stripe-gateway/stripe-js.ts";
import { listenOnLoopback } from "../dev/http-server.ts";
import { createEvent, createEventSchema } from "../workers/events/events.ts";
import { signFanSession } from "../workers/sign-in/fan-session.ts";
import { createOrganizer } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import { signLobbyTicket } from "../workers/waiting-room/tokens.ts";
import { adminJson, round } from "./lib/admin-api.ts";
import { startApp, startHost, WORKER_NAME, snapshotProject, type BenchApp } from "./lib/app.ts";
import { BENCH_PRICES, benchStadiumChart, sizedStadiumChart } from "./lib/chart.ts";
import { createFanAccounts } from "./lib/fans.ts";
import { openObserver } from "./lib/observer.ts";
import { descendants } from "./lib/processes.ts";
import { startProfile } from "./lib/profiler.ts";
import { joinShards, servedDelta, servedRequests, writeRoomProbe } from "./lib/room-probe.ts";
import { runScenario, say, sleep, stopping } from "./lib/scenario.ts";
import { seatClaims } from "./lib/seat-claims.ts";
import { SELLOUT_PROBE_ENTRY, selloutProbe, writeSelloutProbe } from "./lib/sellout-probe.ts";
import { startBenchStack } from "./lib/stack.ts";
import { atMost, thresholdsMet, type Threshold } from "./lib/thresholds.ts";

// ------------------------------------------------------------------ settings

/** The chaos mode's kinds of fault, in the order they are injected. */
const FAULT_KINDS = ["gateway_timeouts_and_5xx", "mail_provider_down", "postgres_stopped", "consumer_failed_mid_batch", "inventory_storage_wiped", "workerd_killed"];

const options = parseOptions(process.argv.slice(2));
const SEATS = options.seats;
const FANS = options.fans;
const SCALE = options.timeScale;
/**
 * Fans going through checkout at once (browsers; each is a few sequential requests): enough that every fan the
 * room admits starts at once (a checkout takes a few seconds, ending when the payment's webhook is in), so the
 * harness never admits slower than the room. At 256 it did: the room's admitted fans waited for a browser while
 * their promises kept places out of sale.
 */
const FANS_IN_FLIGHT = Math.max(1_024, options.rate * 20);
/** Lanes polling the queue document (the crowd's polls, as the edge sees them). */
const POLL_LANES = 4;
/** A waiting fan's queue page polls this often (static/js/queue.js's rhythm). */
const FAN_POLL_MS = 2_000;
/**
 * A fan's request gives up after this long (then the fan asks again). The pages set no timeout of their own
 * (static/js/api.js), but 120 s made the default run slower here (fans sat in checkout while their 30 s holds
 * lapsed, and up to FANS_IN_FLIGHT of them blocked new admissions), so a fan gives up as impatient people do.
 */
const FAN_REQUEST_TIMEOUT_MS = 30_000;
/** The checkout page polls a payment's outcome this often (static/js/checkout.js's POLL_INTERVAL_MS). */
const PAYMENT_POLL_MS = 2_000;
/** Fans told "sold out" who join the waitlist. */
const WAITLIST_CAP = Math.max(20, Math.round(SEATS / 20));
/** The sale gives up after this long (a broken run must end). */
const SALE_LIMIT_MS = options.saleSeconds !== undefined ? options.saleSeconds * 1000 : Math.max(300_000, (FANS / options.rate) * 2_000);
/** After the sale: how long the pipeline (webhooks, queues, mail) may take to settle. */
const SETTLE_LIMIT_MS = 180_000;
const CRON_MS = Math.max(1_000, Math.round(60_000 * SCALE));
const DECLINE_RETRY_S = Math.max(5, Math.round(120 * SCALE));
/** The event's hold TTL, the product's default: on the Worker's scaled clock (TIME_SCALE), 600 s × scale. */
const HOLD_TTL_S = 600;
const WEBHOOK_SECRET = "whsec_bench_sellout";
/** The bars. */
const MAX_SELLOUT_OVER_IDEAL = 1.2;
const MAX_TOLD_SOLD_OUT_P99_S = 5;
const MAX_ORIGIN_PER_1000_POLLS = 1;
/** `BENCH_PROFILE=<folder>`: a CPU profile of the Worker (and its objects) over the sale's first PROFILE_SECONDS, written there (lib/profiler.ts). */
const PROFILE_DIR = process.env.BENCH_PROFILE;
const PROFILE_SECONDS = 30;
/** What the profile's summary breaks out (inclusive time): the fan's requests, the payment pipeline, ticket delivery. */
const PROFILED_FUNCTIONS = ["fetch", "queue", "alarm", "exchange", "payForHold", "latestPayment", "handleWebhookEvent", "handleSalesBatch", "handleDeliveryBatch", "ticketQrPng", "signCompactTicket", "hold", "applyHolds", "confirm"];

interface Options {
  seats: number;
  fans: number;
  rate: number;
  timeScale: number;
  chaos: boolean;
  /** The sale gives up after this many seconds (default: 300, or longer for a large crowd). */
  saleSeconds: number | undefined;
  /** `--faults a,b`: only these kinds of fault (default: all of FAULT_KINDS). */
  faults: string[];
}

function faultKinds(args: string[]): string[] {
  const at = args.indexOf("--faults");
  if (at < 0) return FAULT_KINDS;
  const kinds = (args[at + 1] ?? "").split(",");
  const unknown = kinds.filter((kind) => !FAULT_KINDS.includes(kind));
  if (unknown.length > 0) throw new Error(`--faults: unknown ${unknown.join(", ")}; known: ${FAULT_KINDS.join(", ")}`);
  return kinds;
}

function parseOptions(args: string[]): Options {
  const flag = (name: string) => args.includes(`--${name}`);
  const value = (name: string): number | undefined => {
    const at = args.indexOf(`--${name}`);
    if (at < 0) return undefined;
    const parsed = Number(args[at + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name} wants a positive number, not ${args[at + 1] ?? "nothing"}`);
    return parsed;
  };
  const full = flag("full");
  const seats = value("seats") ?? (full ? 70_000 : 7_000);
  const fans = value("fans") ?? (full ? 500_000 : 50_000);
  if (seats !== 70_000 && seats % 200 !== 0) throw new Error("--seats must be a multiple of 200 (or 70000)");
  if ((value("time-scale") ?? 0.05) > 1) throw new Error("--time-scale is at most 1 (the Worker's TIME_SCALE runs the sale's timers faster, never slower)");
  return { seats, fans, rate: value("rate") ?? (full ? 500 : 100), timeScale: value("time-scale") ?? 0.05, chaos: flag("chaos") || args.includes("--faults"), saleSeconds: value("sale-seconds"), faults: faultKinds(args) };
}

// ------------------------------------------------------------------ the line

interface SelloutLine {
  bench: "sellout";
  chaos: boolean;
  seats: number;
  fans: number;
  time_scale: number;
  admission_rate_per_s: number;
  sold: number;
  oversold: number;
  double_booked: number;
  paid_orders: number;
  orders_in_postgres: number;
  tickets: number;
  admitted: number;
  holds: number;
  waitlist_joined: number;
  waitlist_offers_paid: number;
  sellout_s: number | null;
  ideal_s: number;
  told_sold_out_p99_s: number | null;
  hold_p99_ms: number;
  /** Document requests that reached the room per 1,000 polls of the crowd (crowd_polls: every fan in line every FAN_POLL_MS, plus the sampled ones). */
  origin_requests_per_1000_polls: number;
  origin_requests: number;
  crowd_polls: number;
  /** Polls the bench actually sent through the Worker's route (the crowd's sample: each isolate asks the room at most once per cache second, however many poll). */
  sampled_polls: number;
  peak_rss_mb: number;
  load_avg_start: number;
  load_avg_end: number;
  faults_injected?: Record<string, number>;
  invariants_checked: number;
  invariants_violated: number;
  invariants: Record<string, number>;
  thresholds: Record<string, Threshold>;
}

const documentSchema = z.object({ threshold: z.number(), soldOut: z.boolean(), available: z.number(), held: z.number(), updatedAt: z.number(), admitted: z.number() });
type QueueDocument = z.infer<typeof documentSchema>;
const paymentSchema = z.object({ status: z.string(), nextAction: z.object({ clientSecret: z.string() }).nullable().optional() });
const holdAnswerSchema = z.object({ hold: z.object({ holdId: z.string() }) });
const entrySchema = z.object({ entry: z.object({ status: z.string(), offer: z.object({ hold: z.object({ holdId: z.string() }) }).nullable() }) });

/** What the fans saw, counted as they go. */
class Tally {
  admitted = 0;
  holds = 0;
  paid = 0;
  waitlistJoined = 0;
  waitlistPaid = 0;
  holdLatencies: number[] = [];
  /** When fans were told "sold out" by an answer (ms since epoch). */
  toldByAnswer: number[] = [];
  errors = new Map<string, number>();
  /** Fans in each step of the journey right now (for the progress lines). */
  steps = new Map<string, number>();
  error(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }
  /** Counts a fan in `step` while `work` runs. */
  async in<T>(step: string, work: () => Promise<T>): Promise<T> {
    this.steps.set(step, (this.steps.get(step) ?? 0) + 1);
    try {
      return await work();
    } finally {
      this.steps.set(step, (this.steps.get(step) ?? 1) - 1);
    }
  }
}

runScenario(async (cleanup) => {
  const loadStart = loadavg()[0] ?? 0;
  const { workDir, stack } = await startBenchStack(cleanup);
  const signingKey = await generateSigningKey("bench");
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  cleanup.add("setup connection", () => close());
  const { observer, close: closeObserver } = await openObserver(stack.databaseUrl);
  cleanup.add("observer connection", closeObserver);

  // The gateway posts its webhooks to a forwarder, so they follow the Worker across a restart (a new port).
  let app: BenchApp | undefined;
  const forwarder = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const target = app;
      if (!target) return void response.writeHead(503).end();
      fetch(`${target.url}${request.url ?? "/"}`, {
        method: request.method,
        headers: Object.fromEntries(Object.entries(request.headers).filter((entry): entry is [string, string] => typeof entry[1] === "string" && entry[0] !== "host")),
        body: Buffer.concat(chunks),
        signal: AbortSignal.timeout(30_000),
      })
        .then(async (answer) => {
          const text = await answer.text();
          response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "text/plain" }).end(text);
        })
        .catch(() => {
          if (!response.headersSent) response.writeHead(502).end();
          else response.destroy();
        });
    });
  });
  const forwarding = await listenOnLoopback(forwarder, 0, () => undefined);
  cleanup.add("webhook forwarder", forwarding.close);
  const gateway = await startStripeGateway({ port: 0, webhookUrl: `${forwarding.url}/webhooks/stripe`, webhookSecret: WEBHOOK_SECRET });
  cleanup.add("payment gateway", gateway.close);

  const projectDir = path.join(workDir, "project");
  const runDir = path.join(workDir, "wrangler");
  await snapshotProject(REPO_ROOT, projectDir);
  const secret = await writeRoomProbe(projectDir);
  await writeSelloutProbe(projectDir, secret);
  const vars = {
    OBJECT_REQUEST_LOG: "1",
    TIME_SCALE: String(SCALE),
    STRIPE_SECRET_KEY: "sk_test_bench",
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_BASE: gateway.url,
    STRIPE_PUBLISHABLE_KEY: "pk_test_bench",
    STRIPE_JS_URL: `${gateway.url}/v3/`,
    PUBLIC_ORIGIN: "http://127.0.0.1:8787",
  };
  const starting = startApp({ repoRoot: REPO_ROOT, projectDir, runDir, stack, signingKey, entry: SELLOUT_PROBE_ENTRY, vars });
  cleanup.add("worker", async () => (await starting.catch(() => undefined))?.stop());
  app = await starting;
  cleanup.add("worker (restarted)", () => app?.stop());
  say(`Worker healthy at ${app.url}; gateway at ${gateway.url}`);

  // ---------------------------------------------------------------- the event and its lobby
  const { organizerId, apiKey } = await createOrganizer(db, "Bench Sellout");
  const chart = SEATS === 70_000 ? benchStadiumChart() : sizedStadiumChart(SEATS);
  const venue = await importVenue(db, organizerId, seatingChartSchema.parse(chart));
  const accounts = await createFanAccounts(db, FANS, "bench-sellout-");
  const event = await createEvent(
    db,
    organizerId,
    createEventSchema.parse({
      venueId: venue.id,
      name: "Bench sellout",
      startsAt: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      saleStartsAt: new Date(Date.now() + 6 * 3_600_000).toISOString(),
      lobbyOpensMinutes: 1_440,
      purchaseLimit: 4,
      holdTtlSeconds: HOLD_TTL_S,
      declineRetrySeconds: DECLINE_RETRY_S,
      expectedDemand: FANS,
      demandClass: "hot",
      status: "published",
      prices: BENCH_PRICES.filter((price) => venue.priceTiers.includes(price.priceTier)),
      admissionRatePerSecond: options.rate,
    }),
  );
  const eventId = event.id;
  await adminJson(app, apiKey, "POST", `/admin/events/${eventId}/prepare`, {});
  const keys: number[] = [];
  for (let start = 0; start < FANS && !stopping(); start += 5_000) {
    keys.push(...(await joinShards(app.url, secret, eventId, accounts.slice(start, start + 5_000))));
  }
  if (keys.some((key) => key < 0)) throw new Error("a lobby shard refused a bulk join");
  const line: Entrant[] = accounts.map((accountId, index) => ({ accountId, key: keys[index] ?? 0, index })).sort((a, b) => a.key - b.key);
  say(`hot event ${eventId}: ${SEATS} seats, ${FANS} fans in the lobby; admission ${options.rate}/s; cron every ${CRON_MS} ms; chaos ${options.chaos ? "on" : "off"}`);

  const saleStartsAt = Date.now() + 3_000;
  const saleEndsAt = saleStartsAt + 6 * 3_600_000;
  await adminJson(app, apiKey, "PATCH", `/admin/events/${eventId}`, { saleStartsAt: new Date(saleStartsAt).toISOString() });
  const servedBefore = await servedRequests(app.url, secret, eventId);

  // ---------------------------------------------------------------- the machinery: cron, memory, sold count
  const url = () => app?.url ?? "";
  let running = true;
  const background: Promise<void>[] = [];
  const every = (ms: number, work: () => Promise<void>) =>
    background.push(
      (async () => {
        while (running && !stopping()) {
          await work().catch(() => undefined);
          await sleep(ms);
        }
      })(),
    );
  every(CRON_MS, async () => {
    await fetch(`${url()}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("* * * * *")}`, { signal: AbortSignal.timeout(60_000) });
  });
  let peakRss = 0;
  every(1_000, async () => {
    const pids = [process.pid, ...descendants(process.pid).map((p) => p.pid)];
    peakRss = Math.max(peakRss, pids.reduce((sum, pid) => sum + rssMb(pid), 0));
  });
  // The crowd's polls: every fan still in line polls the document every FAN_POLL_MS (the lanes below send a sample of them).
  let crowdPolls = 0;
  every(1_000, async () => {
    if (Date.now() >= saleStartsAt) crowdPolls += ((line.length - next) * 1_000) / FAN_POLL_MS;
  });
  let sold = 0;
  let soldAllAt: number | undefined;
  every(1_000, async () => {
    sold = await soldSeats(observer, eventId);
    if (sold >= SEATS && soldAllAt === undefined) soldAllAt = Date.now();
  });

  // ---------------------------------------------------------------- the crowd
  const tally = new Tally();
  const observations: { at: number; soldOut: boolean; updatedAt: number }[] = [];
  let firstSoldOut: { updatedAt: number; waiting: number } | undefined;
  let latest: QueueDocument | undefined;
  let polls = 0;
  let next = 0;
  let inFlight = 0;
  const waitlisted = new Set<string>();
  const fanWork: Promise<void>[] = [];
  const http = fanHttp(url, tally);
  const fan = new FanJourney(http, gateway.url, eventId, signingKey, saleEndsAt, tally, () => running);

  for (let lane = 0; lane < POLL_LANES; lane++) {
    background.push(
      (async () => {
        while (running && !stopping()) {
          const answer = await http("GET", `/api/events/${eventId}/queue`, undefined, undefined);
          polls++;
          const parsed = documentSchema.safeParse(answer.body);
          if (parsed.success) {
            const document = parsed.data;
            observations.push({ at: Date.now(), soldOut: document.soldOut, updatedAt: document.updatedAt });
            if (!latest || document.updatedAt >= latest.updatedAt) latest = document;
            if (document.soldOut && !firstSoldOut && Date.now() > saleStartsAt) firstSoldOut = { updatedAt: document.updatedAt, waiting: line.length - next };
          }
          await sleep(100);
        }
      })(),
    );
  }

  const chaos = options.chaos ? new Chaos({ gatewayUrl: gateway.url, mailUrl: stack.mailOutboxUrl, postgresPid: stack.postgresPid, secret, eventId, scale: SCALE, seats: SEATS }) : undefined;
  const restartWorker = async () => {
    const old = app;
    if (!old) return;
    app = undefined;
    for (const p of descendants(old.pid)) if (p.name === "workerd") process.kill(p.pid, "SIGKILL");
    await old.stop();
    app = await startHost(REPO_ROOT, { projectDir, bundle: path.join(runDir, "dist"), envFile: path.join(runDir, "worker.env"), runDir, workerName: WORKER_NAME });
    say(`chaos: workerd killed and restarted at ${app.url}`);
  };
  // The faults spread over the sale's expected span (the admissions the seats need at the admission rate, at least 20 s), or 80% of --sale-seconds.
  const expectedSale = Math.max(20_000, (SEATS / 2.5 / 0.8 / options.rate) * 1000);
  const chaosSpan = options.saleSeconds !== undefined ? options.saleSeconds * 800 : expectedSale;
  const chaosPlan = chaos ? chaos.plan(saleStartsAt, chaosSpan, () => url(), restartWorker) : [];
  background.push(...chaosPlan);

  const saleDeadline = saleStartsAt + SALE_LIMIT_MS;
  if (PROFILE_DIR && app) {
    const profiled = app;
    background.push(
      (async () => {
        const profile = await startProfile(profiled.inspectorPort, profiled.workerName);
        await sleep(Math.max(0, saleStartsAt - Date.now()) + PROFILE_SECONDS * 1000);
        const summary = await profile.stop(PROFILE_DIR, "sellout");
        say(`CPU profile of the sale's first ${PROFILE_SECONDS} s (self time; the sale ran under the profiler, so its times are not the measurement):\n${summary.text.split("\n").slice(0, 40).join("\n")}`);
        for (const name of PROFILED_FUNCTIONS) say(`  inclusive ${name}: ${summary.inclusiveMs(name).toFixed(0)} ms`);
        say(`  busy: ${summary.busyMs.toFixed(0)} ms`);
      })().catch((error: unknown) => say(`profile failed: ${String(error)}`)),
    );
  }
  /** The last fan of the line not yet taken to the waitlist. */
  let back = line.length - 1;
  let progressAt = saleStartsAt;
  while (!stopping() && Date.now() < saleDeadline && soldAllAt === undefined) {
    const document = latest;
    if (Date.now() - progressAt >= 15_000) {
      // Where the sale stands, for reading where its time goes: sold (Postgres), the document's places, the fans' tally.
      progressAt = Date.now();
      say(`+${((progressAt - saleStartsAt) / 1000).toFixed(0)} s: ${sold} sold; document available ${document?.available ?? "?"}, held ${document?.held ?? "?"}, sold out ${document?.soldOut ?? "?"}; ${tally.admitted} admitted, ${tally.holds} holds, ${tally.paid} paid, ${inFlight} in checkout (${JSON.stringify(Object.fromEntries(tally.steps))}), ${fan.waitingOnWaitlist} on the waitlist`);
    }
    // Admitted fans go, as many at once as browsers would.
    while (document && !document.soldOut && next <= back && (line[next]?.key ?? Infinity) <= document.threshold && inFlight < FANS_IN_FLIGHT) {
      const entrant = line[next++];
      if (!entrant) break;
      inFlight++;
      tally.admitted++;
      fanWork.push(
        fan
          .go(entrant, async () => {
            if (waitlisted.size >= WAITLIST_CAP || waitlisted.has(entrant.accountId)) return false;
            waitlisted.add(entrant.accountId);
            return true;
          })
          .catch((error: unknown) => tally.error(`fan: ${String(error).slice(0, 80)}`))
          .finally(() => inFlight--),
      );
    }
    // Sold out for now: fans in line learn it from the document, keep their place, and some take the waitlist's offer (from the back of the line).
    while (document?.soldOut && waitlisted.size < WAITLIST_CAP && back >= next) {
      const entrant = line[back--];
      if (!entrant || waitlisted.has(entrant.accountId)) continue;
      waitlisted.add(entrant.accountId);
      fanWork.push(fan.waitlist(entrant).catch((error: unknown) => tally.error(`waitlist fan: ${String(error).slice(0, 80)}`)));
    }
    if (next > back && inFlight === 0 && fan.waitingOnWaitlist === 0) break;
    await sleep(50);
  }
  const saleEndedAt = Date.now();
  say(`the document at the end: ${JSON.stringify(latest)}`);
  say(`sale over after ${((saleEndedAt - saleStartsAt) / 1000).toFixed(1)} s: ${sold} of ${SEATS} sold (Postgres), ${tally.admitted} admitted, ${tally.holds} holds, ${tally.paid} paid`);
  running = false;
  fan.stop();
  await Promise.race([Promise.allSettled(fanWork), sleep(60_000)]);

  // ---------------------------------------------------------------- settle: what was paid reaches Postgres
  running = true;
  const settleStarted = Date.now();
  const settleBackground: Promise<void>[] = [];
  settleBackground.push(
    (async () => {
      while (running && !stopping()) {
        await fetch(`${url()}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("* * * * *")}`, { signal: AbortSignal.timeout(60_000) }).catch(() => undefined);
        await sleep(CRON_MS);
      }
    })(),
  );
  // Settled: every kept charge is an order in Postgres, no live hold is past its expiry (one still within its TTL is no
  // fault), and every buyer has their ticket email (a send that failed while the mail provider was down is retried after
  // the delivery queue's backoff, 30 s and doubling: workers/tickets/delivery.ts).
  let ledger = keptCharges(gateway.charges(), eventId).length;
  let orders = await ordersInPostgres(observer, eventId);
  const unsettled = async () => orders < ledger || (await overdueHolds(observer, eventId)) > 0 || (await ticketEmailsMissing(observer, eventId, stack.mailOutboxUrl)) > 0;
  while (!stopping() && Date.now() - settleStarted < SETTLE_LIMIT_MS && (await unsettled())) {
    await sleep(1_000);
    ledger = keptCharges(gateway.charges(), eventId).length;
    orders = await ordersInPostgres(observer, eventId);
  }
  await gateway.settleWebhooks();
  await sleep(Math.max(2 * CRON_MS, 3_000));
  running = false;
  await Promise.allSettled([...background, ...settleBackground]);
  say(`settled in ${((Date.now() - settleStarted) / 1000).toFixed(1)} s`);

  // ---------------------------------------------------------------- the checks
  const holdStates = await observer.execute<{ status: string; n: number }>(sql`select status, count(*)::int as n from holds where event_id = ${eventId} group by status`);
  say(`holds in Postgres by status: ${JSON.stringify(holdStates.rows)}`);
  const lifetimes = await observer.execute<{ p0: number; p50: number; p100: number }>(sql`
    select min(s) as p0, percentile_cont(0.5) within group (order by s) as p50, max(s) as p100
    from (select extract(epoch from expires_at - created_at)::float8 as s from holds where event_id = ${eventId}) l`);
  say(`hold TTL as made (s, min/median/max; the event's ${HOLD_TTL_S} s at TIME_SCALE ${SCALE}, plus jitter): ${JSON.stringify(lifetimes.rows[0])}`);
  const claims = await seatClaims(observer, eventId);
  sold = await soldSeats(observer, eventId);
  const invariants = await checkInvariants(observer, eventId, gateway.charges(), stack.mailOutboxUrl, CRON_MS);
  ledger = keptCharges(gateway.charges(), eventId).length;
  orders = await ordersInPostgres(observer, eventId);
  invariants.paid_orders_not_in_postgres = Math.max(0, ledger - orders);
  invariants.oversold = claims.oversold;
  invariants.double_booked = claims.doubleBooked;
  const violated = Object.values(invariants).filter((n) => n > 0).length;
  const served = servedDelta(servedBefore, await servedRequests(url(), secret, eventId).catch(() => servedBefore));
  say(`room requests during the run: ${JSON.stringify(served.byKind)}; errors seen by fans: ${JSON.stringify(Object.fromEntries(tally.errors))}`);

  const idealS = tally.admitted / options.rate;
  const selloutS = soldAllAt === undefined ? null : (soldAllAt - saleStartsAt) / 1000;
  const told = toldSoldOut(observations, firstSoldOut, tally.toldByAnswer);
  const result: SelloutLine = {
    bench: "sellout",
    chaos: options.chaos,
    seats: SEATS,
    fans: FANS,
    time_scale: SCALE,
    admission_rate_per_s: options.rate,
    sold,
    oversold: claims.oversold,
    double_booked: claims.doubleBooked,
    paid_orders: ledger,
    orders_in_postgres: orders,
    tickets: await ticketCount(observer, eventId),
    admitted: tally.admitted,
    holds: tally.holds,
    waitlist_joined: tally.waitlistJoined,
    waitlist_offers_paid: tally.waitlistPaid,
    sellout_s: selloutS === null ? null : round(selloutS, 1),
    ideal_s: round(idealS, 1),
    told_sold_out_p99_s: told === null ? null : round(told, 2),
    hold_p99_ms: round(quantile(tally.holdLatencies, 0.99), 1),
    origin_requests_per_1000_polls: round(((served.byKind.document ?? 0) * 1000) / Math.max(1, crowdPolls + polls), 3),
    origin_requests: served.byKind.document ?? 0,
    crowd_polls: Math.round(crowdPolls),
    sampled_polls: polls,
    peak_rss_mb: Math.round(peakRss),
    load_avg_start: round(loadStart, 1),
    load_avg_end: round(loadavg()[0] ?? 0, 1),
    ...(chaos ? { faults_injected: chaos.injected } : {}),
    invariants_checked: Object.keys(invariants).length,
    invariants_violated: violated,
    invariants,
    thresholds: {
      // Correctness: these fail the run.
      oversold: atMost(claims.oversold, 0),
      double_booked: atMost(claims.doubleBooked, 0),
      invariants_violated: atMost(violated, 0),
      paid_orders_equal_orders_in_postgres: atMost(Math.abs(orders - ledger), 0),
    },
  };
  // Speed bars: reported with `met`, not failing the run (the machine is shared).
  const speed: Record<string, Threshold> = {
    sellout_over_ideal: atMost(selloutS === null ? Infinity : round(selloutS / Math.max(idealS, 0.001), 2), MAX_SELLOUT_OVER_IDEAL),
    told_sold_out_p99_s: atMost(told ?? Infinity, MAX_TOLD_SOLD_OUT_P99_S),
    // "Zero origin requests per poll": at most one per 1,000 polls.
    origin_requests_per_1000_polls: atMost(result.origin_requests_per_1000_polls, MAX_ORIGIN_PER_1000_POLLS),
  };
  const correct = thresholdsMet(result.thresholds);
  result.thresholds = { ...result.thresholds, ...speed };
  thresholdsMet(speed);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return correct ? 0 : 1;
});

// ------------------------------------------------------------------ a fan's journey

/** One answer: status 0 when the Worker could not be reached; `retryAfterS` from a 429's or 503's Retry-After. */
interface Answer {
  status: number;
  body: unknown;
  retryAfterS?: number;
}
/** A request as one fan's browser sends it (`ip`: the fan's own address, as Cloudflare reports it in CF-Connecting-IP). */
type Http = (method: string, route: string, token: string | undefined, body: unknown, ip?: string) => Promise<Answer>;

/** JSON over HTTP to the Worker; a network failure (a restart, a timeout) answers status 0. */
function fanHttp(url: () => string, tally: Tally): Http {
  return async (method, route, token, body, ip) => {
    const base = url();
    if (base === "") return { status: 0, body: undefined };
    try {
      const response = await fetch(`${base}${route}`, {
        method,
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...(ip ? { "CF-Connecting-IP": ip } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(FAN_REQUEST_TIMEOUT_MS),
      });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      if (response.status >= 500) tally.error(`${method} ${route.replace(/[0-9a-f-]{36}/g, ":id")} ${response.status} ${errorCode(parsed) || "-"}`);
      const retryAfter = Number(response.headers.get("retry-after"));
      const waitAsked = (response.status === 429 || response.status === 503) && retryAfter > 0;
      return { status: response.status, body: parsed, ...(waitAsked ? { retryAfterS: retryAfter } : {}) };
    } catch {
      return { status: 0, body: undefined };
    }
  };
}

/** Retries an idempotent call while the Worker is unreachable, answers 5xx or 429 (after its Retry-After, on a 429 or 503), as a fan's browser does. */
async function retrying(call: () => Promise<Answer>, keepGoing: () => boolean): Promise<Answer> {
  let answer = await call();
  for (let attempt = 1; (answer.status === 0 || answer.status === 429 || answer.status >= 500) && attempt < 30 && keepGoing(); attempt++) {
    await sleep(answer.retryAfterS !== undefined ? answer.retryAfterS * 1000 : Math.min(2_000, 200 * attempt));
    answer = await call();
  }
  return answer;
}

function errorMessage(body: unknown): string {
  const parsed = z.object({ error: z.object({ message: z.string() }) }).safeParse(body);
  return parsed.success ? parsed.data.error.message : "";
}

function errorCode(body: unknown): string {
  const parsed = z.object({ error: z.object({ code: z.string() }) }).safeParse(body);
  return parsed.success ? parsed.data.error.code : "";
}

type Outcome = "pay" | "three_d_secure" | "retry" | "abandon" | "decline";

/** The seed's mix: about 80% pay (some after 3-D Secure or a second card), 20% abandon or are declined. */
function outcome(): Outcome {
  const r = Math.random();
  if (r < 0.64) return "pay";
  if (r < 0.72) return "three_d_secure";
  if (r < 0.8) return "retry";
  if (r < 0.9) return "abandon";
  return "decline";
}

/** A fan in line: its account, its order key, its place in the account list (for its address). */
interface Entrant {
  accountId: string;
  key: number;
  index: number;
}

/** The fan's own calls (its address added). */
type FanCall = (method: string, route: string, token: string | undefined, body: unknown) => Promise<Answer>;

/** Fan i's address: one per fan, as the rate limits per address expect of a real crowd. */
function fanIp(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

class FanJourney {
  waitingOnWaitlist = 0;
  private stopped = false;

  constructor(
    private readonly http: Http,
    private readonly gatewayUrl: string,
    private readonly eventId: string,
    private readonly signingKey: string,
    private readonly saleEndsAt: number,
    private readonly tally: Tally,
    private readonly selling: () => boolean,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  private live = () => !this.stopped && !stopping();

  /** One admitted fan: admission, a hold, payment; "sold out" → maybe the waitlist. */
  async go(entrant: Entrant, mayWaitlist: () => Promise<boolean>): Promise<void> {
    const http: FanCall = (method, route, token, body) => this.http(method, route, token, body, fanIp(entrant.index));
    const session = await signFanSession(this.signingKey, entrant.accountId);
    const ticket = await signLobbyTicket(this.signingKey, { accountId: entrant.accountId, eventId: this.eventId, orderKey: entrant.key, saleEndsAt: this.saleEndsAt });
    let admission = await this.tally.in("admission", () => retrying(() => http("POST", `/api/events/${this.eventId}/admission`, session, { ticket }), this.live));
    // Not yet (the shard's threshold trails the document a little): the queue page asks again after its next poll.
    for (let tries = 0; admission.status === 409 && errorCode(admission.body) === "not_admitted_yet" && tries < 30 && this.live(); tries++) {
      await this.tally.in("not_admitted_yet", () => sleep(FAN_POLL_MS));
      admission = await this.tally.in("admission", () => retrying(() => http("POST", `/api/events/${this.eventId}/admission`, session, { ticket }), this.live));
    }
    const quantity = 1 + Math.floor(Math.random() * 4);
    if (admission.status === 409 && errorCode(admission.body) === "sold_out") return this.soldOut(http, session, quantity, mayWaitlist);
    const token = z.object({ token: z.string() }).safeParse(admission.body);
    if (!token.success) return this.tally.error(`admission ${admission.status} ${errorCode(admission.body)}`);
    // No `wanted` seats together: the fan ticks "seats may be apart" (the form's allowSplit) and asks again; fewer places
    // left than wanted: the fan takes fewer. Each is a new attempt, after the 5 s between attempts (429 with Retry-After).
    let held: Answer = { status: 0, body: undefined };
    let allowSplit = false;
    for (let wanted = quantity; wanted >= 1 && this.live(); ) {
      const requestId = randomUUID();
      const body = { requestId, quantity: wanted, ...(allowSplit ? { allowSplit } : {}) };
      held = await this.tally.in("hold", () => retrying(async () => {
        const sent = performance.now();
        const answer = await http("POST", `/api/events/${this.eventId}/holds/best`, token.data.token, body);
        if (answer.status !== 0 && answer.status !== 429) this.tally.holdLatencies.push(performance.now() - sent);
        return answer;
      }, this.live));
      if (!(held.status === 409 && errorCode(held.body) === "sold_out")) break;
      if (!allowSplit && wanted > 1 && /allow split/i.test(errorMessage(held.body))) allowSplit = true;
      else wanted--;
    }
    if (held.status === 409 && errorCode(held.body) === "sold_out") return this.soldOut(http, session, quantity, mayWaitlist);
    const hold = holdAnswerSchema.safeParse(held.body);
    if (held.status !== 201 || !hold.success) return this.tally.error(`hold ${held.status} ${errorCode(held.body)}`);
    this.tally.holds++;
    if (await this.tally.in("pay", () => this.pay(http, token.data.token, hold.data.hold.holdId, outcome()))) this.tally.paid++;
  }

  /** A fan in line told "sold out" by the queue page, joining the waitlist from there. */
  async waitlist(entrant: Entrant): Promise<void> {
    const http: FanCall = (method, route, token, body) => this.http(method, route, token, body, fanIp(entrant.index));
    await this.soldOut(http, await signFanSession(this.signingKey, entrant.accountId), 1 + Math.floor(Math.random() * 4), async () => true);
  }

  /** Pays (or not) as `plan` says; true once the payment succeeded. */
  private async pay(http: FanCall, token: string, holdId: string, plan: Outcome): Promise<boolean> {
    const route = `/api/events/${this.eventId}/holds/${holdId}/payment`;
    if (plan === "abandon") return false;
    const card = plan === "three_d_secure" ? "pm_card_authenticationRequired" : plan === "pay" ? "pm_card_visa" : "pm_card_chargeDeclined";
    let answer = await retrying(() => http("POST", route, token, { paymentMethod: card }), this.live);
    if (answer.status === 402 && plan === "decline") {
      await retrying(() => http("DELETE", `/api/events/${this.eventId}/holds/${holdId}`, token, undefined), this.live);
      return false;
    }
    if (answer.status === 402 && plan === "retry") {
      await sleep(300 + Math.random() * 700);
      answer = await retrying(() => http("POST", route, token, { paymentMethod: "pm_card_visa" }), this.live);
    }
    let payment = paymentSchema.safeParse(z.object({ payment: z.unknown() }).safeParse(answer.body).data?.payment);
    if (payment.success && payment.data.status === "requires_action" && payment.data.nextAction) {
      const intentId = payment.data.nextAction.clientSecret.split("_secret_")[0] ?? "";
      await fetch(`${this.gatewayUrl}${CHALLENGE_PATH}/${encodeURIComponent(intentId)}`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "outcome=pass",
        signal: AbortSignal.timeout(30_000),
      }).catch(() => undefined);
    }
    // Until the outcome is known (webhook or reconciliation), the checkout page polls.
    for (let polls = 0; polls < 90 && this.live() && !(payment.success && ["succeeded", "failed", "canceled", "refunded"].includes(payment.data.status)); polls++) {
      await this.tally.in("payment_pending", () => sleep(PAYMENT_POLL_MS));
      const polled = await http("GET", route, token, undefined);
      payment = paymentSchema.safeParse(z.object({ payment: z.unknown() }).safeParse(polled.body).data?.payment);
    }
    return payment.success && payment.data.status === "succeeded";
  }

  /** Told "sold out": the fan notes when, and may join the waitlist and pay an offer. */
  private async soldOut(http: FanCall, session: string, quantity: number, mayWaitlist: () => Promise<boolean>): Promise<void> {
    this.tally.toldByAnswer.push(Date.now());
    if (!(await mayWaitlist())) return;
    // The document says sold out a moment before the waitlist agrees (returned places are the waitlist's only after its pass): ask again.
    let joined = await retrying(() => http("POST", `/api/events/${this.eventId}/waitlist`, session, { quantity }), this.live);
    for (let tries = 0; joined.status === 409 && errorCode(joined.body) === "not_sold_out" && tries < 10 && this.live() && this.selling(); tries++) {
      await sleep(FAN_POLL_MS);
      joined = await retrying(() => http("POST", `/api/events/${this.eventId}/waitlist`, session, { quantity }), this.live);
    }
    if (joined.status !== 201) return this.tally.error(`waitlist ${joined.status} ${errorCode(joined.body)}`);
    this.tally.waitlistJoined++;
    this.waitingOnWaitlist++;
    try {
      while (this.live() && this.selling()) {
        await sleep(1_000);
        const entry = entrySchema.safeParse((await http("GET", `/api/events/${this.eventId}/waitlist`, session, undefined)).body);
        if (!entry.success) continue;
        const offer = entry.data.entry.offer;
        if (offer && entry.data.entry.status === "offered") {
          const plan = Math.random() < 0.8 ? "pay" : "abandon";
          if (await this.pay(http, session, offer.hold.holdId, plan)) {
            this.tally.paid++;
            this.tally.waitlistPaid++;
          }
          return;
        }
        if (entry.data.entry.status !== "waiting") return;
      }
    } finally {
      this.waitingOnWaitlist--;
    }
  }
}

// ------------------------------------------------------------------ chaos

/** The chaos mode's faults, each injected once at its moment of the sale; `injected` counts them by kind. */
class Chaos {
  readonly injected: Record<string, number> = {};

  constructor(private readonly settings: { gatewayUrl: string; mailUrl: string; postgresPid: number | undefined; secret: string; eventId: string; scale: number; seats: number }) {}

  /** Starts each fault at a fraction of the expected sale; returns the running faults. */
  plan(saleStartsAt: number, expectedSaleMs: number, url: () => string, restartWorker: () => Promise<void>): Promise<void>[] {
    const downMs = Math.max(2_000, 60_000 * this.settings.scale);
    // One after another, each given its share of the span (the first after 10% of it), so sales go on between them.
    const at = (fraction: number, kind: string, fault: () => Promise<void>) =>
      (async () => {
        if (!options.faults.includes(kind)) return;
        await sleep(Math.max(0, saleStartsAt + fraction * expectedSaleMs - Date.now()));
        if (stopping()) return;
        say(`chaos: ${kind}`);
        await fault().catch((error: unknown) => say(`chaos: ${kind} failed: ${String(error)}`));
        this.injected[kind] = (this.injected[kind] ?? 0) + 1;
      })();
    return [
      at(0.1, "gateway_timeouts_and_5xx", async () => {
        // A burst sized to the sale: about one payment in twenty fails each way.
        const burst = Math.max(2, Math.round(this.settings.seats / 200));
        await this.gatewayFault({ mode: "error500", count: burst, match: { method: "POST", path: "/v1/payment_intents" } });
        await this.gatewayFault({ mode: "error500", count: burst, match: { method: "POST", path: "/v1/payment_intents/*/confirm" } });
        await this.gatewayFault({ mode: "hang", count: burst, delayMs: Math.round(downMs), match: { method: "POST", path: "/v1/payment_intents/*/confirm" } });
        await this.gatewayFault({ mode: "lose_response", count: burst, match: { method: "POST", path: "/v1/payment_intents/*/confirm" } });
      }),
      at(0.25, "mail_provider_down", async () => {
        await post(`${this.settings.mailUrl}/__faults`, { mode: "error500", count: 1_000 });
        await sleep(downMs);
        await fetch(`${this.settings.mailUrl}/__faults`, { method: "DELETE" });
      }),
      at(0.4, "postgres_stopped", async () => {
        const pid = this.settings.postgresPid;
        if (pid === undefined) throw new Error("the stack's Postgres is not ours to stop");
        const tree = [pid, ...descendants(pid).map((p) => p.pid)];
        for (const p of tree) signal(p, "SIGSTOP");
        await sleep(downMs);
        for (const p of tree) signal(p, "SIGCONT");
      }),
      at(0.55, "consumer_failed_mid_batch", () => selloutProbe(url(), this.settings.secret, "fail-consumer/1")),
      at(0.7, "inventory_storage_wiped", () => selloutProbe(url(), this.settings.secret, `wipe/${this.settings.eventId}`)),
      at(0.85, "workerd_killed", restartWorker),
    ];
  }

  private async gatewayFault(spec: unknown): Promise<void> {
    await post(`${this.settings.gatewayUrl}/__faults`, spec);
  }
}

async function post(target: string, body: unknown): Promise<void> {
  const response = await fetch(target, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${target} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone meanwhile
  }
}

// ------------------------------------------------------------------ what Postgres, the ledger and the outbox say

type ObserverLike = Parameters<typeof seatClaims>[0];

async function count(observer: ObserverLike, query: ReturnType<typeof sql>): Promise<number> {
  const result = await observer.execute<{ n: number }>(query);
  return Number(result.rows[0]?.n ?? 0);
}

function soldSeats(observer: ObserverLike, eventId: string): Promise<number> {
  return count(observer, sql`select count(distinct seat_index)::int as n from tickets where event_id = ${eventId} and status <> 'void'`);
}

function ticketCount(observer: ObserverLike, eventId: string): Promise<number> {
  return count(observer, sql`select count(*)::int as n from tickets where event_id = ${eventId} and status <> 'void'`);
}

function ordersInPostgres(observer: ObserverLike, eventId: string): Promise<number> {
  return count(observer, sql`select count(*)::int as n from orders where event_id = ${eventId} and status = 'confirmed'`);
}

function overdueHolds(observer: ObserverLike, eventId: string): Promise<number> {
  return count(observer, sql`select count(*)::int as n from holds where event_id = ${eventId} and status = 'live' and expires_at < now()`);
}

type Charge = ReturnType<Awaited<ReturnType<typeof startStripeGateway>>["charges"]>[number];

/** The event's succeeded charges not refunded, per the gateway's own ledger. */
function keptCharges(charges: Charge[], eventId: string): Charge[] {
  return charges.filter((charge) => charge.status === "succeeded" && charge.metadata.event_id === eventId && charge.amountRefunded < charge.amount);
}

/**
 * DESIGN.md's invariants after the run, each a count of violations: seats
 * (also checked by seatClaims), nothing lost, no double charge, no stuck hold,
 * every ticket email sent.
 */
async function checkInvariants(observer: ObserverLike, eventId: string, charges: Charge[], mailUrl: string, cronMs: number): Promise<Record<string, number>> {
  const holdIds = keptCharges(charges, eventId).map((charge) => charge.metadata.hold_id ?? "");
  const withOrderOrRefund = new Set(
    (
      await observer.execute<{ hold_id: string }>(sql`
        select hold_id::text from orders where event_id = ${eventId}
        union select hold_id::text from payments where event_id = ${eventId} and status = 'refunded'`)
    ).rows.map((row) => row.hold_id),
  );
  const intentsByHold = new Map<string, number>();
  for (const id of holdIds) intentsByHold.set(id, (intentsByHold.get(id) ?? 0) + 1);
  return {
    seat_sold_twice: await count(observer, sql`
      select count(*)::int as n from (select seat_index from tickets where event_id = ${eventId} and status <> 'void' group by seat_index having count(*) > 1) t`),
    paid_order_without_tickets: await count(observer, sql`
      select count(*)::int as n from orders o where o.event_id = ${eventId} and o.status = 'confirmed'
      and not exists (select 1 from tickets t where t.order_id = o.id)`),
    charge_without_order_or_refund: holdIds.filter((id) => !withOrderOrRefund.has(id)).length,
    hold_charged_twice: [...intentsByHold.values()].filter((n) => n > 1).length,
    order_without_kept_charge: (
      await observer.execute<{ hold_id: string }>(sql`select hold_id::text from orders where event_id = ${eventId} and status = 'confirmed'`)
    ).rows.filter((row) => !intentsByHold.has(row.hold_id)).length,
    hold_stuck_past_ttl: await count(observer, sql`
      select count(*)::int as n from holds where event_id = ${eventId} and status = 'live'
      and expires_at < now() - make_interval(secs => ${(2 * cronMs) / 1000})`),
    ticket_email_missing: await ticketEmailsMissing(observer, eventId, mailUrl),
  };
}

/** Buyers of confirmed orders whom no ticket email reached yet. */
async function ticketEmailsMissing(observer: ObserverLike, eventId: string, mailUrl: string): Promise<number> {
  const emailed = await emailedAddresses(mailUrl);
  const owners = (await observer.execute<{ email: string }>(sql`
    select distinct a.email from orders o join accounts a on a.id = o.account_id where o.event_id = ${eventId} and o.status = 'confirmed'`)).rows;
  return owners.filter((owner) => !emailed.has(owner.email.toLowerCase())).length;
}

async function emailedAddresses(mailUrl: string): Promise<Set<string>> {
  const response = await fetch(`${mailUrl}/emails`, { signal: AbortSignal.timeout(30_000) });
  const list = z.object({ data: z.array(z.object({ to: z.array(z.string()), subject: z.string() })) }).parse(await response.json());
  return new Set(list.data.filter((m) => /ticket/i.test(m.subject)).flatMap((m) => m.to.map((to) => to.toLowerCase())));
}

// ------------------------------------------------------------------ numbers

/**
 * How long waiting fans took to learn the sale was sold out: each waiting fan
 * polls every FAN_POLL_MS at a random phase; it learns at its first poll
 * (served by the crowd's shared document) after the room published sold out.
 * Fans told by an answer (admission or hold refused) count from the same moment.
 */
function toldSoldOut(observations: { at: number; soldOut: boolean; updatedAt: number }[], first: { updatedAt: number; waiting: number } | undefined, byAnswer: number[]): number | null {
  if (!first) return null;
  const published = first.updatedAt;
  const soldOutSeen = observations.filter((o) => o.soldOut && o.at >= published).map((o) => o.at).sort((a, b) => a - b);
  const delays: number[] = [];
  const samples = Math.min(first.waiting, 10_000);
  for (let i = 0; i < samples; i++) {
    const polledAt = published + Math.random() * FAN_POLL_MS;
    const seen = soldOutSeen.find((at) => at >= polledAt);
    if (seen !== undefined) delays.push((seen - published) / 1000);
  }
  for (const at of byAnswer) if (at >= published) delays.push((at - published) / 1000);
  return delays.length === 0 ? null : quantile(delays, 0.99);
}

/** A process's resident memory (VmRSS), MB; 0 once it is gone. */
function rssMb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(match?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
