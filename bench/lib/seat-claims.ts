/**
 * The final state of an event's seats, read from where it is kept rather
 * than from what the load generator was told: Postgres (holds, hold_items,
 * event_seats) and the Worker's availability.
 */
import { sql } from "drizzle-orm";
import { z } from "zod";
import type { Observer } from "./observer.ts";

/** Seats claimed by live (unexpired) or confirmed holds of an event, per Postgres. */
export interface SeatClaims {
  /** Live or confirmed holds. */
  holds: number;
  /** (hold, seat) pairs of those holds. */
  claims: number;
  /** Distinct existing seats they claim. */
  claimedSeats: number;
  /** Claims beyond one per existing seat: a second claim on a seat, or a claim on a seat that does not exist. */
  oversold: number;
  /** Seats claimed by two or more of those holds. */
  doubleBooked: number;
}

/** Reads the seat claims of an event's live and confirmed holds. */
export async function seatClaims(observer: Observer, eventId: string): Promise<SeatClaims> {
  const result = await observer.execute<{ holds: number; claims: number; claimed_seats: number; double_booked: number }>(sql`
    with claiming as (
      select h.id from holds h
      where h.event_id = ${eventId} and (h.status = 'confirmed' or (h.status = 'live' and h.expires_at > now()))
    ), claims as (
      select hi.seat_index from hold_items hi join claiming on claiming.id = hi.hold_id where hi.seat_index is not null
    ), per_seat as (
      select c.seat_index, count(*) as n, bool_or(es.seat_index is not null) as real_seat
      from claims c left join event_seats es on es.event_id = ${eventId} and es.seat_index = c.seat_index
      group by c.seat_index
    )
    select (select count(*) from claiming)::int as holds,
           (select count(*) from claims)::int as claims,
           (select count(*) from per_seat where real_seat)::int as claimed_seats,
           (select count(*) from per_seat where n > 1)::int as double_booked`);
  const row = result.rows[0];
  if (!row) throw new Error("the seat-claims query returned nothing");
  return { holds: row.holds, claims: row.claims, claimedSeats: row.claimed_seats, oversold: row.claims - row.claimed_seats, doubleBooked: row.double_booked };
}

/** How a calm event's per-seat rows agree with its holds. */
export interface SeatRows {
  /** Seats whose row says held (unexpired) or sold. */
  taken: number;
  /** Claims of live or confirmed holds whose seat row does not name that hold as holder. */
  disowned: number;
}

/** Compares a calm event's `event_seats` with its holds' items. */
export async function seatRows(observer: Observer, eventId: string): Promise<SeatRows> {
  const result = await observer.execute<{ taken: number; disowned: number }>(sql`
    select
      (select count(*) from event_seats where event_id = ${eventId} and (status = 'sold' or (status = 'held' and held_until > now())))::int as taken,
      (select count(*) from hold_items hi join holds h on h.id = hi.hold_id
       where h.event_id = ${eventId} and hi.seat_index is not null
         and (h.status = 'confirmed' or (h.status = 'live' and h.expires_at > now()))
         and not exists (
           select 1 from event_seats es
           where es.event_id = ${eventId} and es.seat_index = hi.seat_index and es.hold_id = h.id and es.status in ('held', 'sold')))::int as disowned`);
  const row = result.rows[0];
  if (!row) throw new Error("the seat-rows query returned nothing");
  return row;
}

const availabilitySchema = z.object({
  seatCount: z.number(),
  generatedAt: z.string(),
  sections: z.array(z.object({ kind: z.enum(["seated", "general_admission"]), available: z.number() })),
  bitmap: z.string(),
});

/** What the Worker says is free. */
export interface Availability {
  seatCount: number;
  generatedAt: number;
  /** Seats whose bit is set. */
  freeInBitmap: number;
  /** Sum of the seated sections' available counts. */
  freeInSections: number;
}

/** Reads `GET /api/events/:id/availability`. */
export async function availability(appUrl: string, eventId: string): Promise<Availability> {
  const response = await fetch(`${appUrl}/api/events/${eventId}/availability`, { signal: AbortSignal.timeout(30_000) });
  if (response.status !== 200) throw new Error(`availability answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  const body = availabilitySchema.parse(await response.json());
  let freeInBitmap = 0;
  for (const byte of Buffer.from(body.bitmap, "base64")) freeInBitmap += popcount(byte);
  const freeInSections = body.sections.filter((s) => s.kind === "seated").reduce((sum, s) => sum + s.available, 0);
  return { seatCount: body.seatCount, generatedAt: Date.parse(body.generatedAt), freeInBitmap, freeInSections };
}

function popcount(byte: number): number {
  let bits = 0;
  for (let b = byte; b !== 0; b &= b - 1) bits++;
  return bits;
}
