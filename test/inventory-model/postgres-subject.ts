/**
 * The harness adapter for calm events: `PostgresInventory` called directly,
 * with a clock the harness moves. Its stored state is read from `holds`,
 * `hold_items`, `event_seats` and `event_ga_sections`.
 */
import { env } from "cloudflare:test";
import { sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import { loadConfig } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";
import { PostgresInventory } from "../../workers/holds/postgres-holds";
import type { OpenSubject, Subject } from "./harness";
import type { StoredHold, StoredState } from "./model";

const ms = (column: SQL) => sql`(extract(epoch from ${column}) * 1000)::float8`;

const storedSchema = z.object({
  holds: z.array(
    z.object({
      id: z.string(),
      account_id: z.string(),
      status: z.enum(["live", "confirmed", "released", "expired"]),
      expires_at: z.number(),
      created_at: z.number(),
      seats: z.array(z.number()),
      ga: z.array(z.object({ sectionId: z.string(), quantity: z.number() })),
    }),
  ),
  seats: z.array(z.object({ seat_index: z.number(), status: z.string(), hold_id: z.string().nullable(), held_until: z.number().nullable() })),
  counters: z.array(z.object({ section_id: z.string(), capacity: z.number(), sold: z.number() })),
});

/** Reads an event's holds (every claim, and every hold a seat points at), seats and counters in one statement, and checks them against each other. */
export async function readPostgresInventory(db: Db, eventId: string, now: number): Promise<StoredState> {
  const at = new Date(now).toISOString();
  const problems: string[] = [];
  const result = await db.execute<{ state: unknown }>(sql`
    select jsonb_build_object(
      'holds', (select coalesce(jsonb_agg(h), '[]') from (
        select h.id, h.account_id, h.status, ${ms(sql`h.expires_at`)} as expires_at, ${ms(sql`h.created_at`)} as created_at,
               coalesce(jsonb_agg(hi.seat_index order by hi.seat_index) filter (where hi.seat_index is not null), '[]') as seats,
               coalesce(jsonb_agg(jsonb_build_object('sectionId', hi.section_id, 'quantity', hi.quantity)) filter (where hi.seat_index is null), '[]') as ga
        from holds h left join hold_items hi on hi.hold_id = h.id
        where h.event_id = ${eventId}
          and (h.status = 'confirmed' or (h.status = 'live' and h.expires_at > ${at}::timestamptz)
               or h.id in (select hold_id from event_seats where event_id = ${eventId} and hold_id is not null))
        group by h.id) h),
      'seats', (select coalesce(jsonb_agg(jsonb_build_object('seat_index', seat_index, 'status', status, 'hold_id', hold_id, 'held_until', ${ms(sql`held_until`)}) order by seat_index), '[]')
                from event_seats where event_id = ${eventId}),
      'counters', (select coalesce(jsonb_agg(jsonb_build_object('section_id', section_id, 'capacity', capacity, 'sold', sold)), '[]')
                   from event_ga_sections where event_id = ${eventId})
    ) as state`);
  const state = storedSchema.parse(result.rows[0]?.state);
  const holds = new Map<string, StoredHold>(
    state.holds.map((h) => [h.id, { holdId: h.id, accountId: h.account_id, status: h.status, expiresAt: h.expires_at, createdAt: h.created_at, seats: h.seats, ga: h.ga }]),
  );
  const seats = state.seats.map((seat) => {
    const hold = seat.hold_id === null ? undefined : holds.get(seat.hold_id);
    const listed = hold?.seats.includes(seat.seat_index) ?? false;
    if (seat.status === "available" && (seat.hold_id !== null || seat.held_until !== null)) problems.push(`seat ${seat.seat_index} is available but points at hold ${seat.hold_id ?? "-"}`);
    if (seat.status === "held" && (!hold || !listed || seat.held_until !== hold.expiresAt)) {
      problems.push(`seat ${seat.seat_index} is held until ${seat.held_until ?? "-"} by ${seat.hold_id ?? "nobody"}, which does not list it or expires at ${hold?.expiresAt ?? "-"}`);
    }
    if (seat.status === "held" && hold && seat.held_until !== null && seat.held_until > now && hold.status !== "live") problems.push(`seat ${seat.seat_index} is held by ${hold.status} hold ${hold.holdId}`);
    if (seat.status === "sold" && (hold?.status !== "confirmed" || !listed)) problems.push(`seat ${seat.seat_index} is sold to ${seat.hold_id ?? "nobody"}, not a confirmed hold listing it`);
    if (seat.status === "blocked") problems.push(`seat ${seat.seat_index} is blocked`);
    const free = seat.status === "available" || (seat.status === "held" && seat.held_until !== null && seat.held_until <= now);
    return { seatIndex: seat.seat_index, takenBy: free ? null : seat.hold_id, sold: seat.status === "sold" };
  });
  for (const counter of state.counters) {
    let confirmed = 0;
    let live = 0;
    for (const hold of holds.values()) {
      const places = hold.ga.filter((g) => g.sectionId === counter.section_id).reduce((sum, g) => sum + g.quantity, 0);
      if (hold.status === "confirmed") confirmed += places;
      else if (hold.status === "live" && hold.expiresAt > now) live += places;
    }
    if (counter.sold !== confirmed || counter.sold < 0 || counter.sold + live > counter.capacity) {
      problems.push(`general admission ${counter.section_id}: sold ${counter.sold}, confirmed ${confirmed}, live ${live}, capacity ${counter.capacity}`);
    }
  }
  return { holds: [...holds.values()], seats, problems };
}

/** Opens a calm event's `PostgresInventory` as a harness subject, on its own pool and clock. */
export const openPostgresSubject: OpenSubject = async ({ eventId }) => {
  let now = Date.now();
  const clock = () => now;
  let connection = createDb(loadConfig(env));
  let inventory = new PostgresInventory(connection.db, eventId, clock);
  const subject: Subject = {
    hold: async (requests) => {
      const results = [];
      for (const request of requests) results.push(await inventory.hold(request));
      return results;
    },
    release: (request) => inventory.release(request),
    confirm: (request) => inventory.confirm(request),
    getHold: (holdId, accountId) => inventory.getHold(holdId, accountId),
    accountHolds: (accountId) => inventory.accountHolds(accountId),
    availability: () => inventory.availability(),
    setTime: (at) => {
      now = at;
    },
    runAlarm: async () => undefined,
    settle: async () => undefined,
    restart: async () => {
      await connection.close();
      connection = createDb(loadConfig(env));
      inventory = new PostgresInventory(connection.db, eventId, clock);
    },
    audit: async (at, withAvailability) => ({
      stored: await readPostgresInventory(connection.db, eventId, at),
      availability: withAvailability ? await inventory.availability() : undefined,
    }),
    close: () => connection.close(),
  };
  return subject;
};
