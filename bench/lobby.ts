/**
 * `npm run bench -- lobby`: a large lobby of one hot event, with its shards,
 * one JSON line per topology on stdout (progress on stderr). `--fans <n>` sets
 * the lobby's size (default 1,000,000; more with e.g. `-- lobby --fans
 * 2000000`; `LOBBY_FANS=<n>` does the same). `--topology` picks where the
 * objects run (lib/room-probe.ts; `single,shards_apart` runs both, one after
 * the other, each with its own event and lobby): `single` (the default), the
 * Worker and every object in one workerd, so a tick's visits to its shards run
 * one after another on one thread; `shards_apart`, the lobby shards in a
 * second workerd, reached through Miniflare's dev registry, so the room's own
 * work and its shards' run side by side (measured slower here: README,
 * Performance). `BENCH_PROFILE=<folder>` also takes a CPU profile of the
 * Worker's workerd (the room's, in `shards_apart`) while selling (ticks then
 * run slower).
 *
 * What each part measures:
 * - http_sample: HTTP_SAMPLE fans join through the Worker's real lobby route
 *   (session, rate limits, Turnstile through the local stand-in, bot signals
 *   in Redis, the account's shard), each from its own address and device:
 *   `http_joins_per_s` and `http_join_p99_ms`. An HTTP join costs ~5 ms of
 *   CPU on this machine, so the bulk does not go this way.
 * - bulk: the other fans join their shards (account hash, as the route does)
 *   through each shard's own `join`, run inside the shard for a batch at a
 *   time from a bench-only Worker entry (lib/room-probe.ts): `joins_per_s`
 *   is the bulk's rate, paced to at most JOINS_PER_SHARD_PER_S per shard
 *   (a shard's planned 50,000 fans in under two minutes). These joins skip
 *   the route's checks and the RPC hop, not the shard's work; each is counted
 *   as one request to its shard. The pace is a product rate, not the bench's
 *   bunching: the bulk goes in SLICES_PER_S slices a second, one slice in
 *   flight at a time, each started no sooner than 1/SLICES_PER_S s after the
 *   one before and never early to catch up. So a shard takes its joins spread
 *   over each second and, however slow the machine, at most
 *   (SLICES_PER_S + 1) slices' worth in any one second: a slow second makes
 *   the bulk slower, never burstier.
 * - the sale: the event's sale start is moved to a few seconds ahead through
 *   `PATCH /admin/events/:id` (the room follows its event), and the room
 *   admits at ADMISSION_RATE fans per second for SELL_SECONDS: `tick_p99_ms`
 *   is the p99 of those ticks' time, measured by the room (merging the shards'
 *   next fans and histograms, the inventory's grant, the document), with the
 *   whole lobby waiting; `tick_phase_p50_ms` is the median of each part: the
 *   visit for lists when a tick needs one (`step`), the inventory's grant, the
 *   visit that records admissions and lists the next fans (`record`), the
 *   document (`publish`).
 * - `object_requests_per_s_peak`: the most requests any one object (room or
 *   shard) served in one second over the whole run, from the counts the
 *   objects keep in their own storage (OBJECT_REQUEST_LOG=1).
 * - `state_bytes_per_fan`: the shards' SQLite bytes over the fans in line.
 * - `chi2_p`: Pearson's χ² test of independence between arrival order and
 *   final queue position (10 × 10 deciles); uniform keys give p > 0.01 but
 *   in one run of a hundred.
 */
import { loadavg } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { LocalStack } from "../dev/stack.ts";
import { TURNSTILE_DUMMY_TOKEN } from "../dev/turnstile.ts";
import type { Db } from "../core/db/client.ts";
import { openDb } from "../dev/seed.ts";
import { generateSigningKey } from "../dev/signing-key.ts";
import { createEvent, createEventSchema } from "../workers/events/events.ts";
import { signFanSession } from "../workers/sign-in/fan-session.ts";
import { createOrganizer } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import { adminJson, round } from "./lib/admin-api.ts";
import { BENCH_PRICES, benchStadiumChart } from "./lib/chart.ts";
import { lobbyShardCount } from "../core/waiting-room/lobby-shards.ts";
import { createFanAccounts } from "./lib/fans.ts";
import { joinShards, lobbyStats, peakPerSecond, startRoomProbeApp, type RoomTopology } from "./lib/room-probe.ts";
import { startProfile } from "./lib/profiler.ts";
import { runScenario, say, sleep, stopping, type Cleanup } from "./lib/scenario.ts";
import { startBenchStack } from "./lib/stack.ts";
import { atLeast, atMost, thresholdsMet } from "./lib/thresholds.ts";
import { contingency, independenceTest, quantile, rankOf } from "./lib/statistics.ts";

/** `BENCH_PROFILE=<folder>`: a CPU profile of the Worker (and its objects) while selling, written there (lib/profiler.ts). */
const PROFILE_DIR = process.env.BENCH_PROFILE;

const { values: flags } = parseArgs({ options: { fans: { type: "string" }, topology: { type: "string" } }, strict: true });
const FANS = Number(flags.fans ?? process.env.LOBBY_FANS ?? 1_000_000);
/** `--topology single` (the default), `shards_apart`, or both (`single,shards_apart`, run in that order): where the objects run (lib/room-probe.ts). */
const TOPOLOGIES = (flags.topology ?? "single").split(",").map((kind) => kind.trim());
const HTTP_SAMPLE = Math.min(500, FANS);
const HTTP_CONCURRENCY = 16;
/** Joins per shard per second the bulk is paced to: a lobby shard is planned for 50,000 fans (core/waiting-room/lobby-shards.ts), so a burst of its whole share in under two minutes. */
const JOINS_PER_SHARD_PER_S = 500;
/** The bulk's slices per second (see above): 50 joins per shard every 100 ms. */
const SLICES_PER_S = 10;
/** The events table's default admission rate. */
const ADMISSION_RATE = 500;
/** Ticks enough for a p99 that is not simply the slowest tick (nearest rank: the 119th of 120); 60,000 fans admitted, one place each, inside the stadium's 70,000. */
const SELL_SECONDS = 120;
/** The sale starts this long after the joins (moved there through the admin API). */
const SALE_DELAY_MS = 5_000;

if (!Number.isInteger(FANS) || FANS < 1_000) throw new Error(`--fans must be a whole number of at least 1000, not ${flags.fans ?? process.env.LOBBY_FANS}`);
const isTopology = (kind: string): kind is RoomTopology => kind === "single" || kind === "shards_apart";
if (TOPOLOGIES.length === 0 || !TOPOLOGIES.every(isTopology)) throw new Error(`--topology takes single and/or shards_apart, not ${flags.topology}`);

runScenario(async (cleanup) => {
  const { workDir, stack } = await startBenchStack(cleanup);
  const signingKey = await generateSigningKey("bench");
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  cleanup.add("setup connection", () => close());
  const { organizerId, apiKey } = await createOrganizer(db, "Bench Promotions");
  const venue = await importVenue(db, organizerId, seatingChartSchema.parse(benchStadiumChart()));
  let met = true;
  for (const topology of TOPOLOGIES.filter(isTopology)) {
    if (stopping()) return 130;
    const run = await runTopology({ topology, workDir: path.join(workDir, topology), stack, signingKey, db, organizerId, apiKey, venueId: venue.id, cleanup });
    if (run === "stopped") return 130;
    met &&= run;
  }
  return met ? 0 : 1;
});

/** One lobby in one topology, from the sample's accounts to the JSON line; whether its thresholds were met. */
async function runTopology(options: {
  topology: RoomTopology;
  workDir: string;
  stack: LocalStack;
  signingKey: string;
  db: Db;
  organizerId: string;
  apiKey: string;
  venueId: string;
  cleanup: Cleanup;
}): Promise<boolean | "stopped"> {
  const { topology, workDir, stack, signingKey, db, organizerId, apiKey, cleanup } = options;
  const loadAtStart = loadavg().map((l) => round(l, 1));
  say(`topology ${topology}`);
  const sampleFans = await createFanAccounts(db, HTTP_SAMPLE, `bench-lobby-${topology}-`);
  const { app, secret, stop } = await startRoomProbeApp({ workDir, stack, signingKey, cleanup, topology });

  // The sale is hours away (the lobby opens a day before it) until every fan is in line.
  const event = await createEvent(
    db,
    organizerId,
    createEventSchema.parse({
      venueId: options.venueId,
      name: `Bench lobby (${topology})`,
      startsAt: new Date(Date.now() + 30 * 24 * 3_600_000).toISOString(),
      saleStartsAt: new Date(Date.now() + 6 * 3_600_000).toISOString(),
      lobbyOpensMinutes: 1_440,
      purchaseLimit: 1,
      expectedDemand: FANS,
      demandClass: "hot",
      status: "published",
      prices: BENCH_PRICES,
      admissionRatePerSecond: ADMISSION_RATE,
    }),
  );
  const eventId = event.id;
  await adminJson(app, apiKey, "POST", `/admin/events/${eventId}/prepare`, {});
  say(`hot event ${eventId} prepared; ${FANS} fans: ${HTTP_SAMPLE} over HTTP, the rest through the shards' join RPC`);

  // ---------------------------------------------------------------- the HTTP sample
  const latencies: number[] = [];
  const httpKeys: number[] = [];
  let next = 0;
  const httpStarted = Date.now();
  await Promise.all(
    Array.from({ length: HTTP_CONCURRENCY }, async () => {
      while (next < sampleFans.length && !stopping()) {
        const i = next++;
        const accountId = sampleFans[i] ?? "";
        const token = await signFanSession(signingKey, accountId);
        const sent = performance.now();
        const response = await fetch(`${app.url}/api/events/${eventId}/lobby`, {
          method: "POST",
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "CF-Connecting-IP": `198.18.${i >> 8}.${i & 255}` },
          body: JSON.stringify({ turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: `bench-device-${i}` }),
          signal: AbortSignal.timeout(60_000),
        });
        const body = await response.text();
        latencies.push(performance.now() - sent);
        if (response.status !== 200) throw new Error(`an HTTP join answered ${response.status}: ${body.slice(0, 300)}`);
        httpKeys[i] = orderKeyOf(body);
      }
    }),
  );
  const httpSeconds = (Date.now() - httpStarted) / 1000;
  say(`http_sample: ${HTTP_SAMPLE} joins in ${httpSeconds.toFixed(1)} s`);

  // ---------------------------------------------------------------- the bulk
  const bulk = FANS - HTTP_SAMPLE;
  const bulkKeys = new Array<number>(bulk);
  // Paced (see above): a slice of JOINS_PER_SHARD_PER_S / SLICES_PER_S per shard every 1/SLICES_PER_S s, one in flight, never early.
  const batch = Math.ceil((JOINS_PER_SHARD_PER_S * lobbyShardCount(FANS)) / SLICES_PER_S);
  const sliceMs = 1_000 / SLICES_PER_S;
  const bulkStarted = Date.now();
  let reported = bulkStarted;
  for (let start = 0; start < bulk && !stopping(); start += batch) {
    const sent = Date.now();
    const ids = Array.from({ length: Math.min(batch, bulk - start) }, () => crypto.randomUUID());
    const keys = await joinShards(app.url, secret, eventId, ids);
    keys.forEach((key, j) => {
      if (key < 0) throw new Error("a shard refused a bulk join");
      bulkKeys[start + j] = key;
    });
    if (Date.now() - reported > 10_000) {
      reported = Date.now();
      const [load1] = loadavg();
      say(`bulk: ${start + ids.length} of ${bulk} joined (${Math.round((start + ids.length) / ((reported - bulkStarted) / 1000))}/s, load ${(load1 ?? 0).toFixed(1)})`);
    }
    const rest = sent + sliceMs - Date.now();
    if (rest > 0) await sleep(rest);
  }
  if (stopping()) return "stopped";
  const bulkSeconds = (Date.now() - bulkStarted) / 1000;
  say(`bulk: ${bulk} joins in ${bulkSeconds.toFixed(1)} s`);

  // ---------------------------------------------------------------- the sale
  const saleStartsAt = Date.now() + SALE_DELAY_MS;
  await adminJson(app, apiKey, "PATCH", `/admin/events/${eventId}`, { saleStartsAt: new Date(saleStartsAt).toISOString() });
  say(`sale moved to ${new Date(saleStartsAt).toISOString()}; selling for ${SELL_SECONDS} s at ${ADMISSION_RATE}/s`);
  const profile = PROFILE_DIR ? await startProfile(app.inspectorPort, app.workerName) : undefined;
  while (Date.now() < saleStartsAt + SELL_SECONDS * 1000 && !stopping()) await sleep(500);
  if (profile && PROFILE_DIR) {
    const summary = await profile.stop(PROFILE_DIR, "lobby-sale");
    say(`lobby-sale: CPU profile (self time; ticks ran under the profiler, so their times are not the measurement):\n${summary.text.split("\n").slice(0, 50).join("\n")}`);
    for (const name of ["alarm", "step", "grantAdmissions", "stepShards", "publish"]) say(`  inclusive ${name}: ${summary.inclusiveMs(name).toFixed(0)} ms over ${SELL_SECONDS} s`);
  }
  if (stopping()) return "stopped";

  const stats = await lobbyStats(app.url, secret, eventId);
  const selling = stats.room.ticks.filter((tick) => tick.at >= saleStartsAt);
  say(`ticks while selling (ms, step/grant/record/publish): ${selling.map((tick) => `${tick.ms} (${tick.phases.step}/${tick.phases.grant}/${tick.phases.record}/${tick.phases.publish})`).join(", ")}`);
  const tickMs = selling.map((tick) => tick.ms).sort((a, b) => a - b);
  const admitted = selling.reduce((sum, tick) => sum + tick.admitted, 0);
  const peaks = [peakPerSecond(stats.room.requests), ...stats.shards.map((shard) => peakPerSecond(shard.requests))];
  const keys = [...httpKeys, ...bulkKeys];
  const chi2 = independenceTest(contingency(keys.map((_, i) => i), rankOf(keys)));
  const stateBytes = stats.shards.reduce((sum, shard) => sum + shard.bytes, 0);
  const line = {
    bench: "lobby",
    topology,
    fans: FANS,
    shards: stats.shards.length,
    joins_per_s: round(bulk / bulkSeconds, 1),
    http_joins_per_s: round(HTTP_SAMPLE / httpSeconds, 1),
    http_join_p99_ms: round(quantile(latencies, 0.99), 1),
    object_requests_per_s_peak: Math.max(...peaks),
    room_requests_per_s_peak: peaks[0] ?? 0,
    ticks: tickMs.length,
    admitted,
    tick_p50_ms: round(quantile(tickMs, 0.5), 1),
    tick_p99_ms: round(quantile(tickMs, 0.99), 1),
    tick_phase_p50_ms: Object.fromEntries((["step", "grant", "record", "publish"] as const).map((phase) => [phase, round(quantile(selling.map((tick) => tick.phases[phase]), 0.5), 1)])),
    state_bytes_per_fan: round(stateBytes / FANS, 1),
    chi2_p: round(chi2.p, 4),
  };
  const thresholds = {
    object_requests_per_s_peak: atMost(line.object_requests_per_s_peak, 999),
    tick_p99_ms: atMost(line.tick_p99_ms, 50),
    chi2_p: atLeast(line.chi2_p, 0.01),
    admitted: atLeast(admitted, 1),
  };
  const load = loadavg().map((l) => round(l, 1));
  process.stdout.write(`${JSON.stringify({ ...line, load_average: { start: loadAtStart, end: load }, thresholds })}\n`);
  await stop();
  return thresholdsMet(thresholds);
}

function orderKeyOf(body: string): number {
  const parsed: unknown = JSON.parse(body);
  if (typeof parsed === "object" && parsed !== null && "orderKey" in parsed && typeof parsed.orderKey === "number") return parsed.orderKey;
  throw new Error(`a join's answer has no orderKey: ${body.slice(0, 200)}`);
}
