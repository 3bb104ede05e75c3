/**
 * `npm run bench -- queue`: the waiting room of a hot 70,000-seat event under
 * a crowd of 64 connections, in three phases, one JSON line each on stdout
 * (progress on stderr):
 *
 * - lobby_join: 20,000 fans join the lobby before the sale, each with a
 *   session of its own, from an IP and device of its own (the bot defenses'
 *   rate limits and shared-device flags never trigger) and with Turnstile's
 *   always-pass test token, answered by the local stand-in. Their tickets are
 *   kept.
 * - queue_poll: 15 s of polls of the published queue state, with the room's
 *   request counts read before and after (through a bench-only probe entry,
 *   see lib/room-probe.ts): polls reach the room only when the data centre's
 *   cache of the document expires, at most once a second
 *   (`origin_requests_per_1000_polls`).
 * - admission_exchange: once the sale started (waited for in real time) and
 *   the admission rate was raised through the admin API so everyone is
 *   admitted, every fan exchanges its ticket for an admission token once.
 * - sold_out: a small event sells out while 200 waiting fans poll its queue
 *   document as the queue page does (lib/told-sold-out.ts):
 *   `told_sold_out_p99_s`, from the last place going to each poller reading
 *   `soldOut`.
 *
 * The last line (`queue_summary`) carries the figures with their bars
 * (`thresholds`, each with `met`): `origin_requests_per_1000_polls` with the
 * cache layer (the bar: the room served at most one document request per
 * second of polling, plus one at each edge of the phase, in this one data
 * centre), `told_sold_out_p99_s` (≤ 5) and `kv_writes_per_key_per_s_max`
 * (≤ 1: the most KV writes any key took in one second, counted by a wrapper
 * around the rooms' KV binding in the bench entry, failed writes included).
 *
 * Same frame as `holds`: a fresh local stack and `wrangler dev` on a snapshot
 * in a temporary folder, wrk as the crowd, everything cleaned up at the end.
 */
import { readFile, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN } from "../dev/turnstile.ts";
import { openDb } from "../dev/seed.ts";
import { generateSigningKey } from "../dev/signing-key.ts";
import { signFanSession } from "../workers/sign-in/fan-session.ts";
import { createOrganizer } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import type { BenchApp } from "./lib/app.ts";
import { adminJson, round } from "./lib/admin-api.ts";
import { BENCH_PRICES, benchStadiumChart } from "./lib/chart.ts";
import { cpuDelta, cpuSnapshot, type CpuSnapshot } from "./lib/cpu.ts";
import { createFanAccounts, writeTokens } from "./lib/fans.ts";
import { createHotBenchEvent } from "./lib/hot-event.ts";
import { kvPuts, servedDelta, servedRequests, startRoomProbeApp } from "./lib/room-probe.ts";
import { atMost, thresholdsMet } from "./lib/thresholds.ts";
import { toldSoldOut } from "./lib/told-sold-out.ts";
import { startBenchStack } from "./lib/stack.ts";
import { runScenario, say, sleep, stopping, type Cleanup } from "./lib/scenario.ts";
import { runWrk } from "./lib/wrk.ts";

const CONCURRENCY = 64;
const WRK_THREADS = 2;
const FANS = 20_000;
/** 2 places per fan: 20,000 fans need 40,000 of the 70,000 seats, so the inventory lets everyone in. */
const PURCHASE_LIMIT = 2;
/** The sale starts this long after the event is created (the lobby phase and the polls happen before). */
const SALE_STARTS_IN_MS = 120_000;
const LOBBY_OPENS_MINUTES = 60;
/** Bounds of each phase. */
const LOBBY_MAX_SECONDS = 60;
const POLL_SECONDS = 15;
const EXCHANGE_MAX_SECONDS = 60;
/** After the rate is raised, every joined fan must be admitted within this. */
const ADMIT_TIMEOUT_MS = 90_000;
const RAISED_RATE_PER_SECOND = 100_000;

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const script = (name: string) => path.join(BENCH_DIR, `queue-${name}.lua`);

const timing = { duration_us: z.number(), requests: z.number(), socket_errors: z.number(), timeouts: z.number(), p50_us: z.number(), p99_us: z.number(), max_us: z.number() };
const lobbyResult = z.object({
  joined: z.number(),
  rejoined: z.number(),
  too_fast: z.number(),
  bad_request: z.number(),
  unauthorized: z.number(),
  conflict: z.number(),
  server_error: z.number(),
  other: z.number(),
  no_ticket: z.number(),
  exhausted: z.number(),
  ...timing,
});
const pollResult = z.object({ ok: z.number(), not_found: z.number(), server_error: z.number(), other: z.number(), ...timing });
const exchangeResult = z.object({
  admitted: z.number(),
  not_admitted_yet: z.number(),
  sold_out: z.number(),
  unauthorized: z.number(),
  conflict: z.number(),
  server_error: z.number(),
  other: z.number(),
  exhausted: z.number(),
  ...timing,
});
const queueStateSchema = z.object({ threshold: z.number(), admitted: z.number(), entrants: z.object({ lobby: z.number(), late: z.number(), flagged: z.number() }), ratePerSecond: z.number() });

runScenario(async (cleanup) => {
  const { workDir, stack } = await startBenchStack(cleanup);

  // Organizer, venue and fans through the app's own functions; the event comes once the Worker is up, so its sale starts on time.
  const signingKey = await generateSigningKey("bench");
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  cleanup.add("setup connection", () => close());
  let lap = Date.now();
  const { organizerId, apiKey } = await createOrganizer(db, "Bench Promotions");
  const venue = await importVenue(db, organizerId, seatingChartSchema.parse(benchStadiumChart()));
  const fans = await createFanAccounts(db, FANS, "bench-fan-");
  const [probeFan] = await createFanAccounts(db, 1, "bench-probe-");
  if (!probeFan) throw new Error("no probe account");
  const sessionsFile = path.join(workDir, "sessions.txt");
  await writeTokens(sessionsFile, fans, (accountId) => signFanSession(signingKey, accountId));
  const sessionOf = new Map<string, string>();
  (await readFile(sessionsFile, "utf8")).trim().split("\n").forEach((token, i) => sessionOf.set(fans[i] ?? "", token));
  say(`venue of ${venue.seatCount} seats, ${FANS} fans with sessions (${seconds(Date.now() - lap)} s)`);

  const { app, secret: probeSecret } = await startRoomProbeApp({ workDir, stack, signingKey, cleanup });
  const postgresPid = stack.postgresPid;

  const saleStartsAt = Date.now() + SALE_STARTS_IN_MS;
  const eventId = await createHotBenchEvent(db, organizerId, {
    venueId: venue.id,
    name: "Bench waiting room",
    saleStartsAt,
    lobbyOpensMinutes: LOBBY_OPENS_MINUTES,
    purchaseLimit: PURCHASE_LIMIT,
    prices: BENCH_PRICES,
  });
  say(`hot event ${eventId}: lobby open, sale starts at ${new Date(saleStartsAt).toISOString()}`);
  lap = Date.now();
  const prepared = await adminJson(app, apiKey, "POST", `/admin/events/${eventId}/prepare`, {});
  say(`prepared the inventory: ${JSON.stringify(prepared)} (${seconds(Date.now() - lap)} s)`);

  // One join outside the crowd: the path works (and the room is configured and ticking) before it is timed.
  const probeJoin = await fetch(`${app.url}/api/events/${eventId}/lobby`, {
    method: "POST",
    headers: { Authorization: `Bearer ${await signFanSession(signingKey, probeFan)}`, "Content-Type": "application/json", "CF-Connecting-IP": "192.0.2.1" },
    body: JSON.stringify({ turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: "bench-probe-device" }),
    signal: AbortSignal.timeout(60_000),
  });
  const probeBody = await probeJoin.text();
  if (probeJoin.status !== 200) throw new Error(`a single lobby join answered ${probeJoin.status}: ${probeBody.slice(0, 300)}`);

  // ---------------------------------------------------------------- phase 1: lobby joins
  const lobbySeconds = Math.min(LOBBY_MAX_SECONDS, Math.floor((saleStartsAt - Date.now() - (POLL_SECONDS + 15) * 1000) / 1000));
  if (lobbySeconds < 10) throw new Error(`only ${lobbySeconds} s left before the sale for the lobby phase`);
  const ticketsPrefix = path.join(workDir, "tickets-");
  const lobby = lobbyResult.parse(
    await phase(app, postgresPid, cleanup, "lobby_join", `${FANS} joins, at most ${lobbySeconds} s`, {
      script: script("lobby"),
      durationSeconds: lobbySeconds,
      scriptArgs: [sessionsFile, `/api/events/${eventId}/lobby`, String(WRK_THREADS), ticketsPrefix, TURNSTILE_DUMMY_TOKEN],
    }),
  );
  const lobbyErrors = lobby.too_fast + lobby.bad_request + lobby.unauthorized + lobby.conflict + lobby.server_error + lobby.other + lobby.no_ticket + lobby.socket_errors + lobby.timeouts;
  const lobbyAnswers = lobby.joined + lobby.rejoined + lobbyErrors - lobby.socket_errors - lobby.timeouts;
  say(`lobby_join answers: ${JSON.stringify(lobby)}`);
  emit({ phase: "lobby_join", ...rates(lobby, lobby.joined + lobby.rejoined), requests: lobbyAnswers, errors: lobbyErrors });

  // Pair each ticket with its account's session by the ticket's subject.
  const pairs: string[] = [];
  for (let k = 0; k < WRK_THREADS; k++) {
    const text = await readFile(`${ticketsPrefix}${k}.txt`, "utf8").catch(() => "");
    for (const ticket of text.split("\n").filter(Boolean)) {
      const payload = JSON.parse(Buffer.from(ticket.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: string };
      const session = sessionOf.get(payload.sub ?? "");
      if (session) pairs.push(`${session} ${ticket}`);
    }
  }
  const pairsFile = path.join(workDir, "exchange-pairs.txt");
  await writeFile(pairsFile, `${pairs.join("\n")}\n`, { mode: 0o600 });
  say(`kept ${pairs.length} tickets`);

  // ---------------------------------------------------------------- phase 2: queue polls
  if (stopping()) return 130;
  const queuePath = `/api/events/${eventId}/queue`;
  const first = await fetch(`${app.url}${queuePath}`, { signal: AbortSignal.timeout(30_000) });
  if (first.status !== 200) throw new Error(`GET queue answered ${first.status}: ${(await first.text()).slice(0, 300)}`);
  say(`queue state before the polls: ${JSON.stringify(queueStateSchema.parse(await first.json()))}`);
  // Joins wrk sent but stopped waiting for at the end of phase 1 still reach the room: wait until its counts stop moving.
  const servedBefore = await settledServedRequests(app, probeSecret, eventId);
  const poll = pollResult.parse(
    await phase(app, postgresPid, cleanup, "queue_poll", `${POLL_SECONDS} s`, {
      script: script("poll"),
      durationSeconds: POLL_SECONDS,
      scriptArgs: [queuePath],
    }),
  );
  const servedAfter = await servedRequests(app.url, probeSecret, eventId);
  const served = servedDelta(servedBefore, servedAfter);
  say(`room served before the polls ${JSON.stringify(servedBefore)}, after ${JSON.stringify(servedAfter)}: ${served.total} requests during them`);
  const pollAnswers = poll.ok + poll.not_found + poll.server_error + poll.other;
  const originPer1000 = pollAnswers > 0 ? round((1000 * served.total) / pollAnswers, 3) : Number.POSITIVE_INFINITY;
  emit({
    phase: "queue_poll",
    ...rates(poll, poll.ok),
    requests: pollAnswers,
    errors: pollAnswers - poll.ok + poll.socket_errors + poll.timeouts,
    origin_requests_per_1000_polls: originPer1000,
  });

  // ---------------------------------------------------------------- phase 3: admission exchanges
  const wait = saleStartsAt + 1_500 - Date.now();
  if (wait > 0) {
    say(`waiting ${seconds(wait)} s for the sale to start...`);
    while (Date.now() < saleStartsAt + 1_500 && !stopping()) await sleep(250);
  }
  if (stopping()) return 130;
  await adminJson(app, apiKey, "PATCH", `/admin/events/${eventId}/admission`, { ratePerSecond: RAISED_RATE_PER_SECOND });
  lap = Date.now();
  let state = queueStateSchema.parse(await (await fetch(`${app.url}${queuePath}`)).json());
  const everyone = state.entrants.lobby + state.entrants.late + state.entrants.flagged;
  while (state.admitted < everyone && Date.now() - lap < ADMIT_TIMEOUT_MS && !stopping()) {
    await sleep(500);
    state = queueStateSchema.parse(await (await fetch(`${app.url}${queuePath}`)).json());
  }
  say(`rate raised to ${RAISED_RATE_PER_SECOND}/s: ${state.admitted} of ${everyone} entrants admitted after ${seconds(Date.now() - lap)} s`);
  // The published state is edge-cached for 1 s: let the Worker's own read catch up before the exchanges check it.
  await sleep(2_000);
  const exchange = exchangeResult.parse(
    await phase(app, postgresPid, cleanup, "admission_exchange", `${pairs.length} exchanges, at most ${EXCHANGE_MAX_SECONDS} s`, {
      script: script("exchange"),
      durationSeconds: EXCHANGE_MAX_SECONDS,
      scriptArgs: [pairsFile, `/api/events/${eventId}/admission`, String(WRK_THREADS)],
    }),
  );
  say(`admission_exchange answers: ${JSON.stringify(exchange)}`);
  const exchangeErrors = exchange.not_admitted_yet + exchange.sold_out + exchange.unauthorized + exchange.conflict + exchange.server_error + exchange.other;
  emit({
    phase: "admission_exchange",
    ...rates(exchange, exchange.admitted),
    requests: exchange.admitted + exchangeErrors,
    errors: exchangeErrors + exchange.socket_errors + exchange.timeouts,
  });

  // A wrk thread that runs out of pairs stops with its connections' last requests unanswered (at most one per connection).
  const unanswered = pairs.length - exchange.admitted - exchangeErrors;
  if (unanswered > 0) say(`admission_exchange: ${unanswered} exchanges sent but not waited for (wrk stops a thread with its last requests in flight)`);

  // ---------------------------------------------------------------- phase 4: a sell-out, as waiting fans learn it
  if (stopping()) return 130;
  const soldOut = await toldSoldOut(app, db, organizerId, apiKey, signingKey);
  emit({ phase: "sold_out", ...soldOut.result });

  const puts = [...(await kvPuts(app.url, probeSecret, eventId)), ...(await kvPuts(app.url, probeSecret, soldOut.eventId))];
  const perKeySecond = new Map<string, number>();
  for (const put of puts) perKeySecond.set(`${put.key} ${put.second}`, (perKeySecond.get(`${put.key} ${put.second}`) ?? 0) + put.n);
  // One data centre here: the edge cache may fetch the document from the room once a second (and once more at each edge of the phase).
  const originBar = pollAnswers > 0 ? round((1000 * (POLL_SECONDS + 2)) / pollAnswers, 3) : 0;
  const thresholds = {
    origin_requests_per_1000_polls: atMost(originPer1000, originBar),
    told_sold_out_p99_s: atMost(soldOut.result.told_sold_out_p99_s, 5),
    kv_writes_per_key_per_s_max: atMost(Math.max(0, ...perKeySecond.values()), 1),
  };
  emit({
    phase: "queue_summary",
    origin_requests_per_1000_polls: originPer1000,
    origin_requests_during_polls: served.total,
    poll_seconds: POLL_SECONDS,
    told_sold_out_p99_s: soldOut.result.told_sold_out_p99_s,
    kv_writes_per_key_per_s_max: thresholds.kv_writes_per_key_per_s_max.value,
    kv_writes: puts.reduce((sum, put) => sum + put.n, 0),
    load_average: loadavg().map((l) => round(l, 1)),
    thresholds,
  });
  const met = thresholdsMet(thresholds);
  const sound = (served.byKind.document ?? 0) === served.total && lobbyErrors === 0 && exchangeErrors === 0 && unanswered <= CONCURRENCY;
  if (!sound) say("PROBLEMS: see the error counts above (polls reach the room only for the document; every join and exchange must succeed)");
  return sound && met ? 0 : 1;
});

/** The room's served requests once two reads 3 s apart agree (bounded: 60 s). */
async function settledServedRequests(app: BenchApp, secret: string, eventId: string): Promise<Record<string, number>> {
  const started = Date.now();
  let last = await servedRequests(app.url, secret, eventId);
  while (Date.now() - started < 60_000 && !stopping()) {
    await sleep(3_000);
    const now = await servedRequests(app.url, secret, eventId);
    if (servedDelta(last, now).total === 0) return now;
    say(`the room is still serving phase 1's last requests: ${JSON.stringify(now)}`);
    last = now;
  }
  say("the room's counts did not settle within 60 s: the poll phase's count may include other requests");
  return last;
}

/** Runs one wrk phase with CPU accounting around it; returns wrk's result line. */
async function phase(
  app: BenchApp,
  postgresPid: number | undefined,
  cleanup: Cleanup,
  name: string,
  what: string,
  run: { script: string; durationSeconds: number; scriptArgs: string[] },
): Promise<unknown> {
  const [load1, load5] = loadavg();
  say(`${name}: ${CONCURRENCY} connections, ${what} (load average before: ${(load1 ?? 0).toFixed(2)} / ${(load5 ?? 0).toFixed(2)})...`);
  const before = cpuSnapshot(app, postgresPid);
  const wrk = runWrk({ url: app.url, threads: WRK_THREADS, connections: CONCURRENCY, timeoutSeconds: run.durationSeconds, ...run });
  const forget = cleanup.add("wrk", () => wrk.kill());
  const result = await wrk.result;
  forget();
  reportCpu(name, cpuDelta(before, cpuSnapshot(app, postgresPid)));
  return result;
}

function reportCpu(name: string, cpu: CpuSnapshot): void {
  const ours = cpu.workerd + cpu.wrangler + cpu.postgres + cpu.relay + cpu.wrk;
  say(
    `${name}: CPU: workerd ${Math.round(cpu.workerd)} ms, wrangler ${Math.round(cpu.wrangler)} ms, postgres ${Math.round(cpu.postgres)} ms, ` +
      `relay+bridge+turnstile (this process) ${Math.round(cpu.relay)} ms, wrk ${Math.round(cpu.wrk)} ms; machine ${Math.round((100 * cpu.machineBusy) / Math.max(cpu.machineTotal, 1))}% busy, ` +
      `${Math.round(Math.max(0, cpu.machineBusy - ours))} ms of it outside this benchmark`,
  );
}

function rates(result: { duration_us: number; p50_us: number; p99_us: number }, succeeded: number) {
  return { concurrency: CONCURRENCY, per_s: round(succeeded / (result.duration_us / 1e6), 1), p50_ms: round(result.p50_us / 1000, 2), p99_ms: round(result.p99_us / 1000, 2) };
}

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: "queue", ...line })}\n`);
}



function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
