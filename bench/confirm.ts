/**
 * `npm run bench -- confirm`: how many confirmed sales a second the sales
 * consumer writes into Postgres, and whether what it wrote is whole. One JSON
 * line on stdout; progress on stderr.
 *
 * Everything runs on loopback in a temporary folder: a fresh local stack
 * (Postgres behind PgBouncer in transaction mode and the Neon WebSocket relay,
 * as the Worker reaches Neon's pooled endpoint in production) and a
 * 70,000-seat event per pass with 20,000 paid holds of a pair of seats each,
 * their payment rows as checkout leaves them. Each pass runs the Worker's own
 * queue handler, `handleSalesBatch`, from Node with the Worker's own driver
 * and configuration (DATABASE_URL: the pooler), on queue batches of 100 sales
 * (wrangler.toml's max_batch_size), a few invocations at once as Queues runs
 * them (max_concurrency), each invocation opening and closing its own
 * connection as it does in production. The line reports the median pass.
 *
 * Enough to tell two runs apart from the output alone: the machine (processor,
 * load, stolen time, a calibration of fixed work at start and end), Postgres'
 * settings, and per pass the CPU of every process group (this process:
 * consumer, driver and relay; PgBouncer; Postgres' backends and its
 * background work), the connections Postgres started and PgBouncer held, WAL
 * and checkpoints. Two phases measured apart split an invocation's cost:
 * connecting alone (`phase_connect`), and the write alone on open pooled
 * connections (`phase_write`); one batch's statement is profiled with
 * EXPLAIN ANALYZE (rolled back) to show where Postgres' time goes. Afterwards
 * every order, ticket and payment link is checked in Postgres, and some
 * batches are delivered to the handler again to show that a redelivery writes
 * nothing twice.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { sql, type SQL } from "drizzle-orm";
import type { LocalStack } from "../dev/stack.ts";
import { openDb } from "../dev/seed.ts";
import { stackVars } from "../dev/worker-vars.ts";
import { confirmedSaleSchema, type ConfirmedSale } from "../workers/checkout/messages.ts";
import { handleSalesBatch, writeSales } from "../workers/checkout/sales-consumer.ts";
import type { ConfigEnv } from "../core/config.ts";
import type { Db } from "../core/db/client.ts";
import { createEvent, createEventSchema } from "../workers/events/events.ts";
import { createOrganizer } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import { BENCH_PRICES, BENCH_SEAT_COUNT, benchStadiumChart } from "./lib/chart.ts";
import { groupDelta, readGroups } from "./lib/cpu.ts";
import { createFanAccounts } from "./lib/fans.ts";
import { calibrate, load1, machineInfo, stealPct, stealTicks } from "./lib/machine.ts";
import { openObserver, type Observer } from "./lib/observer.ts";
import { COUNTERS_SETTLE_MS, countersDelta, poolerState, postgresCounters, postgresCpuByRole, postgresSettings, profileStatement, type PoolerState, type StatementProfile } from "./lib/postgres-stats.ts";
import { totalCpu, treeCpuByName } from "./lib/processes.ts";
import { CountingQueue, DeliveredBatch } from "./lib/queues.ts";
import { startBenchStack } from "./lib/stack.ts";
import { runScenario, say, sleep, stopping } from "./lib/scenario.ts";
import { atLeast, thresholdsMet, type Threshold } from "./lib/thresholds.ts";

/** The queue's max_batch_size for ticket-sales (wrangler.toml). */
const BATCH = 100;
/** Consumer invocations at once: the queue's max_concurrency for ticket-sales (wrangler.toml). */
const CONCURRENCY = 8;
/** Measured passes, each on its own event; the line reports the median. */
const PASSES = 3;
/** Paid holds of 2 seats each per pass: 40,000 of the event's 70,000 seats. */
const SALES_PER_PASS = 20_000;
/** Sales of the write phase, on connections already open. */
const SALES_ON_OPEN_CONNECTIONS = 6_000;
/** Connections of the connect phase (opened, one query, closed), CONCURRENCY at once. */
const CONNECTIONS = 800;
const SEATS_PER_SALE = 2;
const PRICE_CENTS = 11_900;
const FANS = 5_000;
/** Batches delivered again after the passes (a redelivery must write nothing). */
const REDELIVERED_BATCHES = 10;
/** The bar on this machine. */
const BAR_PER_S = 5_000;

/** What one measured run says about the machine, the processes and Postgres. */
interface RunReport {
  per_s: number;
  p50_batch_ms: number;
  p99_batch_ms: number;
  /** CPU per item (sale or connection) by process group, µs. */
  cpu_us: Record<string, number>;
  machine_busy_pct: number;
  outside_cpu_ms: number;
  steal_pct: number;
  load_avg_start: number;
  load_avg_end: number;
  postgres: ReturnType<typeof countersDelta>;
  pgbouncer: { server_connections: number; clients_waiting_at_end: number; transactions: number; avg_wait_us: number } | undefined;
}

/** The line printed. */
interface ConfirmResult {
  bench: "confirm";
  path: string;
  batch: number;
  concurrency: number;
  /** The median pass's rate. */
  confirmations_per_s: number;
  passes_per_s: number[];
  /** Medians over the passes. */
  p50_batch_ms: number;
  p99_batch_ms: number;
  process_cpu_us_per_sale: number;
  postgres_cpu_us_per_sale: number;
  machine_busy_pct: number;
  passes: RunReport[];
  phase_connect: RunReport;
  phase_write: RunReport;
  statement: StatementProfile;
  postgres_settings: Record<string, string>;
  pgbouncer: { pool_mode: string; pool_size: number } | undefined;
  machine: ReturnType<typeof machineInfo> & { start: ReturnType<typeof calibrate>; end: ReturnType<typeof calibrate>; load_avg_start: number; load_avg_end: number };
  sales_per_pass: number;
  tickets_per_pass: number;
  /** The bar: the median pass at BAR_PER_S or more. */
  thresholds: Record<string, Threshold>;
}

/** What a run needs to read its CPU and counters. */
interface Meter {
  stack: LocalStack;
  observer: Observer;
}

runScenario(async (cleanup) => {
  const machineStart = { ...calibrate(), load: load1() };
  const { stack } = await startBenchStack(cleanup);
  const { observer, close: closeObserver } = await openObserver(stack.databaseUrl);
  cleanup.add("observer connection", closeObserver);
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  cleanup.add("database handle", close);
  const meter: Meter = { stack, observer };
  const settings = await postgresSettings(observer);
  const pooled = stack.pgbouncer ? await poolerState(stack.pgbouncer.adminUrl, databaseName(stack)) : undefined;
  say(`Postgres ${settings.server_version ?? "?"}: ${Object.entries(settings).map(([name, value]) => `${name}=${value}`).join(", ")}`);
  say(stack.pgbouncer ? `PgBouncer: ${pooled?.poolMode ?? "?"} mode, ${stack.pgbouncer.poolSize} server connections per pool` : "no PgBouncer (DATABASE_URL pointed elsewhere)");

  const venue = await setUpVenue(db);
  const consumer = consumerConfig(stack);
  const invoke = (_lane: number, batch: ConfirmedSale[]) => invokeConsumer(consumer, batch);

  // The measured passes: the consumer as Queues runs it, each invocation opening its connection through the pooler.
  const passes: { eventId: string; sales: ConfirmedSale[]; run: Run }[] = [];
  for (let pass = 1; pass <= PASSES && !stopping(); pass++) {
    const { eventId, sales } = await setUpSales(db, venue, SALES_PER_PASS);
    const run = await writeAll(sales, invoke, `pass ${pass}/${PASSES}, handleSalesBatch with a connection per invocation`, meter);
    passes.push({ eventId, sales, run });
  }

  // The phases apart: connecting alone, then the write alone on connections already open.
  const connect = await connectPhase(meter);
  const comparison = await setUpSales(db, venue, SALES_ON_OPEN_CONNECTIONS);
  const lanes = await Promise.all(Array.from({ length: CONCURRENCY }, () => openDb(stack.pooledDatabaseUrl, stack.neonWsProxy)));
  for (const lane of lanes) cleanup.add("consumer connection", lane.close);
  const onLane = (lane: number, batch: ConfirmedSale[]) => writeSales(lanes[lane % lanes.length]?.db ?? db, batch).then((d) => d.length);
  const open = await writeAll(comparison.sales, onLane, "the write alone: writeSales on open pooled connections", meter);
  if (stopping()) return 130;

  // Where one batch's statement spends Postgres' time (run on fresh sales, rolled back).
  const sample = await setUpSales(db, venue, BATCH);
  const statement = await profileStatement(stack.databaseUrl, await capturedStatement(sample.sales));
  say(
    `one batch's statement (EXPLAIN ANALYZE, rolled back): planning ${statement.planning_ms} ms, execution ${statement.execution_ms} ms; ` +
      `costliest nodes ${statement.nodes.map((n) => `${n.node} ${n.own_ms} ms`).join(", ")}; triggers ${statement.triggers.map((t) => `${t.trigger} ${t.calls}x ${t.ms} ms`).join(", ") || "none"}`,
  );

  let sound = await verify(db, comparison.eventId, comparison.sales, open.deliveries);
  for (const { eventId, sales, run } of passes) sound = (await verify(db, eventId, sales, run.deliveries)) && sound;
  const first = passes[0];
  if (!first) throw new Error("no pass ran");
  const again = await redeliver(chunk(first.sales, BATCH), (batch) => invokeConsumer(consumer, batch, 2));
  const unchanged = await verify(db, first.eventId, first.sales, first.run.deliveries + again);
  say(`${REDELIVERED_BATCHES} batches delivered to handleSalesBatch again: ${again} deliveries queued, rows ${unchanged ? "unchanged" : "CHANGED"}`);

  const rates = passes.map((p) => p.run.report.per_s);
  const perSecond = median(rates);
  say(`median of ${passes.length} passes: ${perSecond.toFixed(0)}/s; ${perSecond >= BAR_PER_S ? "meets" : "BELOW"} the bar of ${BAR_PER_S.toLocaleString("en-US")}/s`);

  const postgresUs = (report: RunReport) => (report.cpu_us.postgres_backends ?? 0) + (report.cpu_us.postgres_background ?? 0) + (report.cpu_us.postgres_postmaster ?? 0);
  const result: ConfirmResult = {
    bench: "confirm",
    path: `handleSalesBatch, a connection per invocation${stack.pgbouncer ? ", through PgBouncer (transaction mode)" : ""}`,
    batch: BATCH,
    concurrency: CONCURRENCY,
    confirmations_per_s: Math.round(perSecond),
    passes_per_s: rates.map((rate) => Math.round(rate)),
    p50_batch_ms: round(median(passes.map((p) => p.run.report.p50_batch_ms)), 2),
    p99_batch_ms: round(median(passes.map((p) => p.run.report.p99_batch_ms)), 2),
    process_cpu_us_per_sale: Math.round(median(passes.map((p) => p.run.report.cpu_us.bench ?? 0))),
    postgres_cpu_us_per_sale: Math.round(median(passes.map((p) => postgresUs(p.run.report)))),
    machine_busy_pct: Math.round(median(passes.map((p) => p.run.report.machine_busy_pct))),
    passes: passes.map((p) => p.run.report),
    phase_connect: connect,
    phase_write: open.report,
    statement,
    postgres_settings: settings,
    pgbouncer: stack.pgbouncer && pooled ? { pool_mode: pooled.poolMode, pool_size: stack.pgbouncer.poolSize } : undefined,
    machine: { ...machineInfo(), start: machineStart, end: calibrate(), load_avg_start: machineStart.load, load_avg_end: load1() },
    sales_per_pass: SALES_PER_PASS,
    tickets_per_pass: SALES_PER_PASS * SEATS_PER_SALE,
    thresholds: { confirmations_per_s: atLeast(Math.round(perSecond), BAR_PER_S) },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return thresholdsMet(result.thresholds) && sound && unchanged && again === 0 ? 0 : 1;
});

// ------------------------------------------------------------------ the consumer

/** The consumer's configuration against the local stack (what loadConfig requires): DATABASE_URL is the pooler. */
function consumerConfig(stack: LocalStack): ConfigEnv {
  return { ...stackVars(stack), MAIL_FROM: "Edge Tickets <no-reply@bench.invalid>", PUBLIC_ORIGIN: "http://127.0.0.1:8787" };
}

/**
 * One consumer invocation: `sales` delivered as a batch to handleSalesBatch,
 * with producer bindings of its own that count what it queues. Returns the
 * deliveries it queued; throws unless it acknowledged every message without
 * dead-lettering any.
 */
async function invokeConsumer(config: ConfigEnv, sales: ConfirmedSale[], attempts = 1): Promise<number> {
  const env = { ...config, DELIVERY_QUEUE: new CountingQueue(), DEAD_LETTERS: new CountingQueue(), WEBHOOK_QUEUE: new CountingQueue() };
  const batch = new DeliveredBatch("ticket-sales", sales, attempts);
  await handleSalesBatch(batch, env);
  const unacked = batch.messages.filter((m) => m.outcome !== "acked").length;
  if (unacked > 0 || env.DEAD_LETTERS.sent > 0) {
    throw new Error(`the consumer left ${unacked} of ${sales.length} sales unacknowledged and dead-lettered ${env.DEAD_LETTERS.sent}`);
  }
  return env.DELIVERY_QUEUE.sent;
}

/** The one statement `writeSales` sends for `sales`, captured instead of sent. */
async function capturedStatement(sales: ConfirmedSale[]): Promise<SQL> {
  const captured: SQL[] = [];
  const capturing = { execute: async (query: SQL) => (captured.push(query), { rows: [] }) };
  await writeSales(capturing as unknown as Db, sales);
  const [statement] = captured;
  if (!statement || captured.length !== 1) throw new Error(`writeSales sent ${captured.length} statements, not one`);
  return statement;
}

// ------------------------------------------------------------------ measuring

/** One measured run of a batch writer over some sales. */
interface Run {
  deliveries: number;
  report: RunReport;
}

/** Every counter a run reads before and after. */
interface Reading {
  cpu: ReturnType<typeof readGroups>;
  counters: Awaited<ReturnType<typeof postgresCounters>>;
  pooler: PoolerState | undefined;
  steal: ReturnType<typeof stealTicks>;
  load: number;
  at: number;
}

/** Reads every counter; at a run's end, the Postgres counters a little later (they trail the backends by up to a second). */
async function read(meter: Meter, end = false): Promise<Reading> {
  const { stack } = meter;
  const at = performance.now();
  const groups: Record<string, number> = stack.postgresPid === undefined ? {} : postgresCpuByRole(stack.postgresPid);
  if (stack.pgbouncer?.pid !== undefined) groups.pgbouncer = totalCpu(treeCpuByName(stack.pgbouncer.pid));
  const cpu = readGroups(groups, undefined);
  const steal = stealTicks();
  const load = load1();
  if (end) await sleep(COUNTERS_SETTLE_MS);
  return {
    // Postgres is counted by role above, not as one tree.
    cpu,
    counters: await postgresCounters(meter.observer),
    pooler: stack.pgbouncer ? await poolerState(stack.pgbouncer.adminUrl, databaseName(stack)) : undefined,
    steal,
    load,
    at,
  };
}

function report(before: Reading, after: Reading, items: number, latencies: number[]): RunReport {
  const cpu = groupDelta(before.cpu, after.cpu);
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    per_s: items / ((after.at - before.at) / 1000),
    p50_batch_ms: round(percentile(sorted, 0.5), 1),
    p99_batch_ms: round(percentile(sorted, 0.99), 1),
    cpu_us: Object.fromEntries(Object.entries(cpu.groups).flatMap(([name, ms]) => (ms > 0 ? [[name, Math.round((1000 * ms) / Math.max(items, 1))]] : []))),
    machine_busy_pct: cpu.machineBusyPct,
    outside_cpu_ms: cpu.outsideMs,
    steal_pct: stealPct(before.steal, after.steal),
    load_avg_start: before.load,
    load_avg_end: after.load,
    postgres: countersDelta(before.counters, after.counters, items),
    pgbouncer:
      before.pooler && after.pooler
        ? {
            server_connections: after.pooler.serverConnections,
            clients_waiting_at_end: after.pooler.clientsWaiting,
            transactions: after.pooler.transactions - before.pooler.transactions,
            avg_wait_us: Math.round((after.pooler.waitUs - before.pooler.waitUs) / Math.max(after.pooler.transactions - before.pooler.transactions, 1)),
          }
        : undefined,
  };
}

function describe(name: string, run: RunReport, unit: string): string {
  const cpu = Object.entries(run.cpu_us)
    .map(([group, us]) => `${group} ${us} µs`)
    .join(", ");
  const bouncer = run.pgbouncer ? `; PgBouncer: ${run.pgbouncer.server_connections} server connections, ${run.pgbouncer.transactions} transactions, avg wait ${run.pgbouncer.avg_wait_us} µs` : "";
  return (
    `${name}: ${run.per_s.toFixed(0)} ${unit}/s, batch p50 ${run.p50_batch_ms} ms, p99 ${run.p99_batch_ms} ms; CPU per ${unit}: ${cpu}; ` +
    `the machine ${run.machine_busy_pct}% busy (${run.outside_cpu_ms} ms outside this benchmark, ${run.steal_pct}% stolen), load ${run.load_avg_start} -> ${run.load_avg_end}; ` +
    `Postgres: ${run.postgres.sessions_started} sessions started, ${run.postgres.commits} commits, ${run.postgres.checkpoints} checkpoints, ` +
    `${run.postgres.wal_bytes_per_item} WAL bytes per ${unit}, cache hits ${run.postgres.cache_hit_pct}%${bouncer}`
  );
}

/**
 * Writes `sales` in queue batches, CONCURRENCY at a time (a warm-up batch
 * first, untimed); `write` is one consumer invocation on lane `lane` and
 * returns the deliveries it queued.
 */
async function writeAll(sales: ConfirmedSale[], write: (lane: number, batch: ConfirmedSale[]) => Promise<number>, how: string, meter: Meter): Promise<Run> {
  const [warmUp, ...timed] = chunk(sales, BATCH);
  if (!warmUp) throw new Error("no sales");
  let deliveries = await write(0, warmUp);
  const latencies: number[] = [];
  let next = 0;
  const before = await read(meter);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, lane) => {
      while (!stopping()) {
        const batch = timed[next++];
        if (!batch) return;
        const t0 = performance.now();
        const queued = await write(lane, batch);
        latencies.push(performance.now() - t0);
        deliveries += queued;
      }
    }),
  );
  const run = report(before, await read(meter, true), sales.length - warmUp.length, latencies);
  say(describe(how, run, "sale"));
  return { deliveries, report: run };
}

/** Connecting alone, as each invocation does: open a connection through the pooler, one query, close; CONCURRENCY at once. */
async function connectPhase(meter: Meter): Promise<RunReport> {
  const { stack } = meter;
  const latencies: number[] = [];
  let left = CONNECTIONS;
  const before = await read(meter);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0 && !stopping()) {
        const t0 = performance.now();
        const { db, close } = await openDb(stack.pooledDatabaseUrl, stack.neonWsProxy);
        await db.execute(sql`select 1`);
        await close();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const run = report(before, await read(meter, true), CONNECTIONS, latencies);
  say(describe("connecting alone (open, select 1, close)", run, "connection"));
  return run;
}

function databaseName(stack: LocalStack): string {
  return new URL(stack.databaseUrl).pathname.slice(1);
}

// ------------------------------------------------------------------ setting up

interface BenchVenue {
  organizerId: string;
  venueId: string;
}

async function setUpVenue(db: Db): Promise<BenchVenue> {
  const started = Date.now();
  const { organizerId } = await createOrganizer(db, "Bench Promotions");
  const venue = await importVenue(db, organizerId, seatingChartSchema.parse(benchStadiumChart()));
  if (venue.seatCount !== BENCH_SEAT_COUNT) throw new Error(`the bench venue has ${venue.seatCount} seats, not ${BENCH_SEAT_COUNT}`);
  say(`imported the ${BENCH_SEAT_COUNT.toLocaleString("en-US")}-seat venue (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return { organizerId, venueId: venue.id };
}

/** An event on sale at the venue, fans, and `count` paid holds of a pair of seats each, with their payment rows. */
async function setUpSales(db: Db, venue: BenchVenue, count: number): Promise<{ eventId: string; sales: ConfirmedSale[] }> {
  const started = Date.now();
  const now = Date.now();
  const event = await createEvent(
    db,
    venue.organizerId,
    createEventSchema.parse({
      venueId: venue.venueId,
      name: `Bench sale (${count} confirmations)`,
      startsAt: new Date(now + 30 * 24 * 3_600_000).toISOString(),
      saleStartsAt: new Date(now - 60_000).toISOString(),
      purchaseLimit: 4,
      demandClass: "hot",
      status: "published",
      prices: BENCH_PRICES,
    }),
  );
  const fans = await createFanAccounts(db, FANS, `bench-confirm-${event.id}-`);
  const sales = Array.from({ length: count }, (_, i): ConfirmedSale => {
    const holdId = randomUUID();
    return confirmedSaleSchema.parse({
      kind: "sale",
      holdId,
      eventId: event.id,
      accountId: fans[i % fans.length],
      paymentId: randomUUID(),
      providerPaymentId: `pi_bench_${holdId.replaceAll("-", "")}`,
      amountCents: PRICE_CENTS * SEATS_PER_SALE,
      currency: "USD",
      items: Array.from({ length: SEATS_PER_SALE }, (_, s) => ({ seatIndex: SEATS_PER_SALE * i + s, sectionId: null, quantity: 1, priceCents: PRICE_CENTS })),
      confirmedAt: now,
    });
  });
  // The payment rows checkout wrote before the sale was queued; the consumer links each to its order.
  for (const part of chunk(sales, 5_000)) {
    const rows = part.map((s) => ({ p: s.paymentId, h: s.holdId, a: s.accountId, i: s.providerPaymentId, t: s.amountCents }));
    await db.execute(sql`
      insert into payments (id, hold_id, event_id, account_id, provider_payment_id, idempotency_key, payment_method, amount_cents, currency, status, attempt, gateway_calls)
      select x.p, x.h, ${event.id}, x.a, x.i, 'hold_' || x.h || '_attempt_1', 'pm_card_visa', x.t, 'USD', 'succeeded', 1, 1
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(p uuid, h uuid, a uuid, i text, t int)`);
  }
  say(`created an event, ${FANS.toLocaleString("en-US")} fans and ${count.toLocaleString("en-US")} paid holds with their payment rows (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return { eventId: event.id, sales };
}

// ------------------------------------------------------------------ checking

/** Every sale is one order with its tickets on its seats, its payment linked and its delivery queued once. */
async function verify(db: Db, eventId: string, sales: ConfirmedSale[], deliveries: number): Promise<boolean> {
  const [counts] = (
    await db.execute<{ orders: number; confirmed: number; total: number; queued: number; tickets: number; seats: number; sectionless: number; linked: number; mislinked: number }>(sql`
      select
        (select count(*)::int from orders where event_id = ${eventId}) as orders,
        (select count(*)::int from orders where event_id = ${eventId} and status = 'confirmed') as confirmed,
        (select coalesce(sum(total_cents), 0)::int from orders where event_id = ${eventId}) as total,
        (select count(*)::int from orders where event_id = ${eventId} and delivery_queued_at is not null) as queued,
        (select count(*)::int from tickets where event_id = ${eventId}) as tickets,
        (select count(distinct seat_index)::int from tickets where event_id = ${eventId}) as seats,
        (select count(*)::int from tickets t where t.event_id = ${eventId} and not exists (
          select 1 from seats s join events e on e.venue_id = s.venue_id where e.id = t.event_id and s.seat_index = t.seat_index and s.section_id = t.section_id)) as sectionless,
        (select count(*)::int from payments where event_id = ${eventId} and order_id is not null) as linked,
        (select count(*)::int from payments p join orders o on o.id = p.order_id where p.event_id = ${eventId} and o.hold_id <> p.hold_id) as mislinked`)
  ).rows;
  if (!counts) throw new Error("no counts");
  // Each sale's tickets are on its own seats.
  const holdOfSeat = new Map(sales.flatMap((s) => s.items.map((item) => [item.seatIndex, s.holdId] as const)));
  const misplaced = (
    await db.execute<{ seat_index: number; hold_id: string }>(sql`
      select t.seat_index, o.hold_id from tickets t join orders o on o.id = t.order_id where t.event_id = ${eventId}`)
  ).rows.filter((row) => holdOfSeat.get(row.seat_index) !== row.hold_id).length;
  const count = sales.length;
  const tickets = count * SEATS_PER_SALE;
  const problems: string[] = [];
  if (counts.orders !== count || counts.confirmed !== count) problems.push(`${counts.orders} orders (${counts.confirmed} confirmed), not ${count}`);
  if (counts.total !== count * SEATS_PER_SALE * PRICE_CENTS) problems.push(`orders total ${counts.total} cents`);
  if (counts.tickets !== tickets || counts.seats !== tickets) problems.push(`${counts.tickets} tickets on ${counts.seats} seats, not ${tickets}`);
  if (counts.sectionless > 0) problems.push(`${counts.sectionless} tickets not in their seat's section`);
  if (misplaced > 0) problems.push(`${misplaced} tickets on another sale's seat`);
  if (counts.linked !== count || counts.mislinked > 0) problems.push(`${counts.linked} payments linked (${counts.mislinked} to the wrong order), not ${count}`);
  if (counts.queued !== count || deliveries !== count) problems.push(`${counts.queued} orders marked for delivery, ${deliveries} deliveries queued, not ${count}`);
  say(`Postgres: ${counts.orders} orders, ${counts.tickets} tickets, ${counts.linked} payments linked: ${problems.length === 0 ? "consistent" : `PROBLEMS: ${problems.join("; ")}`}`);
  return problems.length === 0;
}

/** Delivers some batches again (a consumer that crashed after its commit); returns the deliveries they queued. */
async function redeliver(batches: ConfirmedSale[][], consume: (batch: ConfirmedSale[]) => Promise<number>): Promise<number> {
  let queued = 0;
  for (let i = 0; i < REDELIVERED_BATCHES; i++) {
    const batch = batches[Math.floor((i * batches.length) / REDELIVERED_BATCHES)];
    if (batch) queued += await consume(batch);
  }
  return queued;
}

// ------------------------------------------------------------------ helpers

function chunk<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

