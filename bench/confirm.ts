/**
 * `npm run bench -- confirm`: how many confirmed sales a second the sales
 * consumer's write path puts into Postgres, and whether what it wrote is
 * whole. One JSON line on stdout; progress on stderr.
 *
 * Everything runs on loopback in a temporary folder: a fresh local stack
 * (Postgres behind the Neon WebSocket relay, as the Worker reaches it), a
 * 70,000-seat event, and 30,000 paid holds of a pair of seats each, with
 * their payment rows as checkout leaves them. The consumer's write path,
 * `writeSales`, is driven from Node with the Worker's own code and driver, in
 * queue batches of 100 sales (wrangler.toml's max_batch_size), a few batches
 * at once as Queues runs several consumer invocations at once, each on a
 * database connection that is already open. That is the measured line.
 *
 * `handleSalesBatch` also opens a connection per invocation (a Worker cannot
 * keep one between invocations); a second, smaller run on another event pays
 * that too, and its rate is reported on stderr. Afterwards every order,
 * ticket and payment link is checked in Postgres, and some batches are
 * delivered again to show that a redelivery writes nothing twice.
 */
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { sql } from "drizzle-orm";
import { findFreePort } from "../dev/ports.ts";
import { openDb } from "../dev/seed.ts";
import { confirmedSaleSchema, type ConfirmedSale } from "../workers/checkout/messages.ts";
import { writeSales } from "../workers/checkout/sales-consumer.ts";
import type { Db } from "../workers/db/client.ts";
import { createEvent, createEventSchema } from "../workers/events.ts";
import { createOrganizer } from "../workers/organizers.ts";
import { seatingChartSchema } from "../workers/seating-chart.ts";
import { importVenue } from "../workers/venues.ts";
import { BENCH_PRICES, BENCH_SEAT_COUNT, benchStadiumChart } from "./lib/chart.ts";
import { createFanAccounts } from "./lib/fans.ts";
import { machineCpuMs, processStat, totalCpu, treeCpuByName } from "./lib/processes.ts";
import { importWithoutExitHooks, runScenario, say, stopping } from "./lib/scenario.ts";

/** The queue's max_batch_size for ticket-sales (wrangler.toml). */
const BATCH = 100;
/** Consumer invocations at once. */
const CONCURRENCY = 8;
/** Paid holds of 2 seats each: 60,000 of the 70,000 seats. */
const SALES = 30_000;
/** Sales of the second run, each batch opening its own connection. */
const SALES_WITH_CONNECT = 6_000;
const SEATS_PER_SALE = 2;
const PRICE_CENTS = 11_900;
const FANS = 5_000;
/** Batches delivered again after the run (a redelivery must write nothing). */
const REDELIVERED_BATCHES = 10;
/** The bar on this machine. */
const BAR_PER_S = 5_000;

/** The line printed. */
interface ConfirmResult {
  bench: "confirm";
  batch: number;
  confirmations_per_s: number;
  p50_batch_ms: number;
  p99_batch_ms: number;
  sales: number;
  tickets: number;
}

runScenario(async (cleanup) => {
  const startedAt = Date.now();
  // A fresh stack, never one named by the environment (empty means "start one").
  process.env.DATABASE_URL = "";
  process.env.REDIS_URL = "";
  const workDir = await mkdtemp(path.join(tmpdir(), "edge-tickets-bench-"));
  cleanup.add("temporary files", () => rm(workDir, { recursive: true, force: true }));
  // As root, Postgres runs as `postgres` and must be able to enter its data folder below this one.
  await chmod(workDir, 0o755);

  const { DEFAULT_PORTS, startLocalStack } = await importWithoutExitHooks(() => import("../dev/stack.ts"));
  const services = Object.keys(DEFAULT_PORTS);
  const free = await distinctFreePorts(services.length);
  const ports = Object.fromEntries(services.map((service, i) => [service, free[i]]));
  const stack = await startLocalStack({ dataDir: path.join(workDir, "stack"), ports, log: say });
  cleanup.add("local stack", stack.stop);
  const { db, close } = await openDb(stack.databaseUrl, stack.neonWsProxy);
  cleanup.add("database handle", close);

  const venue = await setUpVenue(db);
  const measured = await setUpSales(db, venue, SALES, 0);
  const withConnect = await setUpSales(db, venue, SALES_WITH_CONNECT, 0);
  const open = () => openDb(stack.databaseUrl, stack.neonWsProxy);

  // The write path on open connections, one per consumer invocation at once.
  const lanes = await Promise.all(Array.from({ length: CONCURRENCY }, open));
  for (const lane of lanes) cleanup.add("consumer connection", lane.close);
  const onLane = (lane: number, batch: ConfirmedSale[]) => writeSales(lanes[lane % lanes.length]?.db ?? db, batch).then((d) => d.length);
  const postgresPid = await postmasterPid(path.join(workDir, "stack", "postgres"));
  const cpuBefore = cpuSnapshot(postgresPid);
  const run = await writeAll(measured.sales, onLane, "on open connections");
  reportCpu(cpuBefore, cpuSnapshot(postgresPid), measured.sales.length);

  // As handleSalesBatch runs: a connection opened and closed per invocation.
  const perInvocation = async (_lane: number, batch: ConfirmedSale[]) => {
    const handle = await open();
    try {
      return (await writeSales(handle.db, batch)).length;
    } finally {
      await handle.close();
    }
  };
  const connected = await writeAll(withConnect.sales, perInvocation, "with a connection opened per invocation");
  if (stopping()) return 130;

  const sound =
    (await verify(db, measured.eventId, measured.sales, run.deliveries)) && (await verify(db, withConnect.eventId, withConnect.sales, connected.deliveries));
  const again = await redeliver(chunk(measured.sales, BATCH), (batch) => onLane(0, batch));
  const unchanged = await verify(db, measured.eventId, measured.sales, run.deliveries + again);
  say(`${REDELIVERED_BATCHES} batches delivered again: ${again} deliveries queued, rows ${unchanged ? "unchanged" : "CHANGED"}`);
  say(run.perSecond >= BAR_PER_S ? `meets the bar of ${BAR_PER_S.toLocaleString("en-US")}/s` : `BELOW the bar of ${BAR_PER_S.toLocaleString("en-US")}/s`);

  const result: ConfirmResult = {
    bench: "confirm",
    batch: BATCH,
    confirmations_per_s: Math.round(run.perSecond),
    p50_batch_ms: round(percentile(run.latencies, 0.5), 2),
    p99_batch_ms: round(percentile(run.latencies, 0.99), 2),
    sales: SALES,
    tickets: SALES * SEATS_PER_SALE,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  say(`done in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  return sound && unchanged && again === 0 ? 0 : 1;
});

// ------------------------------------------------------------------ writing

/**
 * Writes `sales` in queue batches, CONCURRENCY at a time (a warm-up batch
 * first, untimed); `write` is one consumer invocation on lane `lane`.
 */
async function writeAll(
  sales: ConfirmedSale[],
  write: (lane: number, batch: ConfirmedSale[]) => Promise<number>,
  how: string,
): Promise<{ perSecond: number; latencies: number[]; deliveries: number }> {
  const [warmUp, ...timed] = chunk(sales, BATCH);
  if (!warmUp) throw new Error("no sales");
  let deliveries = await write(0, warmUp);
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
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
  const seconds = (performance.now() - started) / 1000;
  const written = sales.length - warmUp.length;
  const perSecond = written / seconds;
  latencies.sort((a, b) => a - b);
  say(
    `${how}: ${written.toLocaleString("en-US")} sales in ${seconds.toFixed(2)} s = ${perSecond.toFixed(0)}/s (${(perSecond * SEATS_PER_SALE).toFixed(0)} tickets/s), ` +
      `batch p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms, ${CONCURRENCY} at once`,
  );
  return { perSecond, latencies, deliveries };
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

/**
 * An event on sale at the venue, fans, and `count` paid holds of a pair of
 * seats each (the pairs from seat `firstSeat` on), with their payment rows.
 */
async function setUpSales(db: Db, venue: BenchVenue, count: number, firstSeat: number): Promise<{ eventId: string; sales: ConfirmedSale[] }> {
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
      items: Array.from({ length: SEATS_PER_SALE }, (_, s) => ({ seatIndex: firstSeat + SEATS_PER_SALE * i + s, sectionId: null, quantity: 1, priceCents: PRICE_CENTS })),
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

// ------------------------------------------------------------------ CPU

interface CpuSnapshot {
  /** This process: the driver, `writeSales` (ticket ids, JSON) and the Neon relay the stack runs here. */
  driver: number;
  postgres: number;
  machineBusy: number;
  machineTotal: number;
}

function cpuSnapshot(postgresPid: number | undefined): CpuSnapshot {
  const machine = machineCpuMs();
  return {
    driver: processStat(process.pid)?.cpuMs ?? 0,
    postgres: postgresPid === undefined ? 0 : totalCpu(treeCpuByName(postgresPid)),
    machineBusy: machine.busyMs,
    machineTotal: machine.totalMs,
  };
}

function reportCpu(before: CpuSnapshot, after: CpuSnapshot, sales: number): void {
  const per = (ms: number) => `${Math.round(ms)} ms (${((1000 * ms) / sales).toFixed(0)} µs/sale)`;
  const driver = after.driver - before.driver;
  const postgres = after.postgres - before.postgres;
  const busy = after.machineBusy - before.machineBusy;
  say(
    `CPU while writing: driver + relay ${per(driver)}, Postgres ${per(postgres)}; the machine was ` +
      `${Math.round((100 * busy) / Math.max(after.machineTotal - before.machineTotal, 1))}% busy, ${Math.round(Math.max(0, busy - driver - postgres))} ms of it outside this benchmark`,
  );
}

async function postmasterPid(postgresDir: string): Promise<number | undefined> {
  const contents = await readFile(path.join(postgresDir, "postmaster.pid"), "utf8").catch(() => undefined);
  const pid = Number(contents?.split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

// ------------------------------------------------------------------ helpers

function chunk<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await findFreePort());
  return [...ports];
}
