/**
 * The organizer's live view of a sale, beyond availability: places held and
 * sold per section (from Postgres for calm events, from the inventory object
 * for hot ones, each class's source of truth), places returned after a sale,
 * and the per-minute history behind the charts (admissions sampled from the
 * waiting room, sales counted from tickets).
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { log } from "../../core/logger";
import type { QueueState } from "../../core/waiting-room/queue-state";
import type { LiveCounts } from "../../core/holds/live-counts";
import type { WorkContext } from "../work-context";

/** The live view's history covers this many hours (and keeps no more). */
export const HISTORY_HOURS = 6;
const MINUTE_MS = 60_000;
/** Hot sales the cron samples in one pass at most (a room read each). */
const SAMPLED_AT_MOST = 200;

/** One minute of the sale: fans admitted and places sold in it, and the admission rate set then. */
export interface HistoryPoint {
  /** The minute's start (ISO 8601). */
  at: string;
  admitted: number;
  sold: number;
  /** Fans per second (hot events; null before the first sample, and for calm events). */
  ratePerSecond: number | null;
  paused: boolean;
}

/** What the admission history records of the room's document. */
export type AdmissionSample = Pick<QueueState, "admitted" | "ratePerSecond" | "paused">;

const iso = (ms: number) => new Date(ms).toISOString();
const minuteOf = (ms: number) => Math.floor(ms / MINUTE_MS) * MINUTE_MS;

/** A calm event's held and sold places per section, from Postgres (a held seat whose hold ran out counts as free, as holds do). */
export async function calmCounts(db: Db, eventId: string, now = Date.now()): Promise<LiveCounts> {
  const sections = await db.execute<{ section_id: string; held: number; sold: number }>(sql`
    with seat_counts as (
      select st.section_id,
             (count(*) filter (where es.status = 'held' and es.held_until > ${iso(now)}::timestamptz))::int as held,
             (count(*) filter (where es.status = 'sold'))::int as sold
      from event_seats es
      join events e on e.id = es.event_id
      join seats st on st.venue_id = e.venue_id and st.seat_index = es.seat_index
      where es.event_id = ${eventId}
      group by st.section_id
    ), ga_held as (
      select hi.section_id, sum(hi.quantity)::int as places
      from hold_items hi join holds h on h.id = hi.hold_id
      where hi.event_id = ${eventId} and hi.seat_index is null and h.status = 'live' and h.expires_at > ${iso(now)}::timestamptz
      group by hi.section_id
    )
    select s.id as section_id,
           (coalesce(c.held, 0) + coalesce(gh.places, 0))::int as held,
           (coalesce(c.sold, 0) + coalesce(g.sold, 0))::int as sold
    from events e
    join sections s on s.venue_id = e.venue_id
    left join seat_counts c on c.section_id = s.id
    left join event_ga_sections g on g.event_id = e.id and g.section_id = s.id
    left join ga_held gh on gh.section_id = s.id
    where e.id = ${eventId}`);
  const returned = await db.execute<{ n: number }>(sql`
    select coalesce(sum(hi.quantity), 0)::int as n from holds h join hold_items hi on hi.hold_id = h.id where h.event_id = ${eventId} and h.status = 'refunded'`);
  return {
    sections: sections.rows.map((r) => ({ sectionId: r.section_id, held: r.held, sold: r.sold })),
    returned: returned.rows[0]?.n ?? 0,
  };
}

/** A hot event's held and sold places per section, from its inventory object. */
export async function hotCounts(env: Env, eventId: string): Promise<LiveCounts> {
  return env.EVENT_INVENTORY.getByName(eventId).liveCounts();
}

/**
 * Records the room's admitted count and settings for the current minute (the
 * last sample in a minute wins) and drops samples older than the window.
 */
export async function recordAdmissionSample(db: Db, eventId: string, sample: AdmissionSample, now = Date.now()): Promise<void> {
  await db.execute(sql`
    insert into admission_samples (event_id, minute, admitted, rate_per_second, paused)
    values (${eventId}, ${iso(minuteOf(now))}::timestamptz, ${sample.admitted}, ${Math.round(sample.ratePerSecond)}, ${sample.paused})
    on conflict (event_id, minute) do update set admitted = excluded.admitted, rate_per_second = excluded.rate_per_second, paused = excluded.paused`);
  // The last sample before the window stays: the window's first minutes subtract from it and take its rate.
  const start = iso(minuteOf(now) - HISTORY_HOURS * 3_600_000);
  await db.execute(sql`
    delete from admission_samples
    where event_id = ${eventId} and minute < (select max(minute) from admission_samples where event_id = ${eventId} and minute < ${start}::timestamptz)`);
}

/**
 * The sale's last HISTORY_HOURS, one point per minute from the first minute
 * with anything in it (or the window's start) to now: fans admitted in each minute (the difference of
 * the room's cumulative count between samples), places sold (tickets issued,
 * whatever became of them since) and the admission rate then.
 */
export async function saleHistory(db: Db, eventId: string, now = Date.now()): Promise<HistoryPoint[]> {
  const end = minuteOf(now);
  const start = end - HISTORY_HOURS * 3_600_000;
  const samples = await db.execute<{ minute: string; admitted: number; rate_per_second: number; paused: boolean }>(sql`
    select minute, admitted - coalesce(lag(admitted) over (order by minute), 0) as admitted, rate_per_second, paused
    from admission_samples where event_id = ${eventId} order by minute`);
  const sales = await db.execute<{ minute: string; sold: number }>(sql`
    select date_trunc('minute', created_at) as minute, count(*)::int as sold
    from tickets where event_id = ${eventId} and created_at >= ${iso(start)}::timestamptz
    group by 1`);
  const admittedAt = new Map<number, { admitted: number; ratePerSecond: number; paused: boolean }>();
  let before: { ratePerSecond: number; paused: boolean } | null = null;
  for (const s of samples.rows) {
    const at = new Date(s.minute).getTime();
    const sample = { admitted: Math.max(0, Number(s.admitted)), ratePerSecond: s.rate_per_second, paused: s.paused };
    if (at < start) before = sample;
    else admittedAt.set(at, sample);
  }
  const soldAt = new Map(sales.rows.map((r) => [new Date(r.minute).getTime(), r.sold]));
  // With a sample before the window, the sale was running all through it: the window is full.
  const first = before ? start : Math.min(...admittedAt.keys(), ...soldAt.keys());
  if (!Number.isFinite(first)) return [];
  const points: HistoryPoint[] = [];
  let setting = before;
  for (let at = Math.max(first, start); at <= end; at += MINUTE_MS) {
    const sample = admittedAt.get(at);
    if (sample) setting = sample;
    points.push({ at: iso(at), admitted: sample?.admitted ?? 0, sold: soldAt.get(at) ?? 0, ratePerSecond: setting?.ratePerSecond ?? null, paused: setting?.paused ?? false });
  }
  return points;
}

/**
 * The cron's pass: samples the published document of every prepared hot
 * event whose lobby is open and whose sale has not ended more than a minute
 * ago (SAMPLED_AT_MOST, the latest sales first), so the history has a point
 * each minute even while nobody watches. One failed room is logged and skipped.
 */
export async function sampleHotSales(ctx: Pick<WorkContext, "env" | "db">, now = Date.now()): Promise<number> {
  const due = await ctx.db.execute<{ id: string }>(sql`
    select id from events
    where demand_class = 'hot' and status = 'published' and inventory_prepared_at is not null
      and sale_starts_at - make_interval(mins => lobby_opens_minutes) <= ${iso(now)}::timestamptz
      and coalesce(sale_ends_at, starts_at) > ${iso(now - MINUTE_MS)}::timestamptz
    order by sale_starts_at desc limit ${SAMPLED_AT_MOST}`);
  let sampled = 0;
  for (const { id } of due.rows) {
    try {
      const document = await ctx.env.WAITING_ROOM.getByName(id).published();
      if (!document) continue;
      await recordAdmissionSample(ctx.db, id, document, now);
      sampled++;
    } catch (error) {
      log.warn("admission_sample_failed", { eventId: id, error: String(error) });
    }
  }
  return sampled;
}
