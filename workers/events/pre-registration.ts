/**
 * Pre-registration (seed "Deep Dive 1": "How to predict demand: Pre-registration
 * count"). Fans register interest before the sale; the count can only raise
 * the event's expected demand, and once expected demand / capacity reaches the
 * hot ratio the event becomes hot (waiting room, Durable Object inventory).
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { HOT_DEMAND_RATIO } from "./events";
import { ApiError, notFound } from "../../core/errors";

/** The hot ratio: `HOT_DEMAND_RATIO` when set, else the seed's 5. */
export function hotDemandRatio(env: { HOT_DEMAND_RATIO?: string }): number {
  const ratio = Number(env.HOT_DEMAND_RATIO);
  return Number.isFinite(ratio) && ratio > 0 ? ratio : HOT_DEMAND_RATIO;
}

/** Registers an account's interest in an event (once) and reclassifies it; only before the sale. */
export async function preRegister(db: Db, options: { eventId: string; accountId: string; ratio: number; now?: Date }) {
  const now = (options.now ?? new Date()).toISOString();
  const result = await db.execute<{ expected_demand: number; demand_class: "calm" | "hot"; registrations: number }>(sql`
    with event as (
      select e.id from events e where e.id = ${options.eventId} and e.status = 'published' and e.sale_starts_at > ${now}
    ), inserted as (
      insert into pre_registrations (event_id, account_id) select id, ${options.accountId} from event
      on conflict do nothing returning 1
    ), counted as (
      select (select count(*) from pre_registrations where event_id = ${options.eventId}) + (select count(*) from inserted) as n
    )
    update events e set
      expected_demand = greatest(e.expected_demand, counted.n),
      demand_class = case when e.demand_class = 'hot' or greatest(e.expected_demand, counted.n)::float8 / v.capacity >= ${options.ratio} then 'hot' else 'calm' end,
      updated_at = now()
    from counted, venues v, event
    where e.id = event.id and v.id = e.venue_id
    returning e.expected_demand, e.demand_class, counted.n::int as registrations`);
  const row = result.rows[0];
  if (row) return { expectedDemand: row.expected_demand, demandClass: row.demand_class, registrations: row.registrations };
  const exists = await db.execute<{ status: string }>(sql`select status from events where id = ${options.eventId} and status <> 'draft'`);
  if (exists.rows.length === 0) throw notFound("Event");
  throw new ApiError(409, "registration_closed", "Pre-registration closes when the sale starts.");
}
