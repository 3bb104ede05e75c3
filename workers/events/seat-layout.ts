/** The seat map's drawing of a published event: its venue's sections, and each row as a run of seat indexes. */
import { z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { notFound } from "../../core/errors";
import { sectionSchema } from "../venues/venues";

/** The seat map's layout of an event on the wire. */
export const seatLayoutSchema = z
  .object({
    eventId: z.uuid(),
    venueId: z.uuid(),
    seatCount: z.number().openapi({ description: "Seats are numbered 0..seatCount-1, as in the availability bitmap." }),
    sections: z.array(sectionSchema.extend({ priceTier: z.string().nullable().openapi({ description: "The section's tier; null when its rows set their own." }) })),
    rows: z.array(
      z.object({
        section: z.uuid().openapi({ description: "The row's section id." }),
        label: z.string(),
        priceTier: z.string(),
        firstSeat: z.number().openapi({ description: "Seat index of the row's first seat; its seats are firstSeat..firstSeat+count-1, left to right." }),
        count: z.number(),
        seatLabels: z.array(z.string()).optional().openapi({ description: "Present only when the seats are not labelled 1..count." }),
      }),
    ),
  })
  .openapi("SeatLayout");

/** The seat map's layout of an event. */
export type SeatLayout = z.infer<typeof seatLayoutSchema>;

interface LayoutRow extends Record<string, unknown> {
  section: string;
  label: string;
  price_tier: string;
  first_seat: number;
  count: number;
  consecutive: boolean;
  seat_labels: string[] | null;
}

/** The layout of a published event's venue: sections, then rows in chart order, each a run of seat indexes. */
export async function seatLayout(db: Db, eventId: string): Promise<SeatLayout> {
  const [event] = (
    await db.execute<{ venue_id: string; seat_count: number }>(sql`
      select e.venue_id, v.seat_count from events e join venues v on v.id = e.venue_id where e.id = ${eventId} and e.status = 'published'`)
  ).rows;
  if (!event) throw notFound("Event");
  const [sectionRows, rowRows] = await Promise.all([
    db.execute<{ id: string; label: string; name: string; kind: "seated" | "general_admission"; price_tier: string | null; capacity: number }>(sql`
      select s.id, s.label, s.name, s.kind, s.price_tier,
        coalesce(s.ga_capacity, (select count(*)::int from seats where seats.section_id = s.id)) as capacity
      from sections s where s.venue_id = ${event.venue_id} order by s.sort_order`),
    // planChart numbers a row's seats consecutively in position order; `consecutive` checks that the stored data still says so.
    db.execute<LayoutRow>(sql`
      select r.section_id as section, r.label, r.price_tier,
        min(st.seat_index)::int as first_seat, count(*)::int as count,
        (min(st.seat_index - st.position) = max(st.seat_index - st.position) and min(st.position) = 0 and max(st.position) = count(*) - 1) as consecutive,
        case when bool_and(st.label = (st.position + 1)::text) then null else json_agg(st.label order by st.position) end as seat_labels
      from seats st
      join seat_rows r on r.id = st.row_id
      join sections s on s.id = r.section_id
      where st.venue_id = ${event.venue_id}
      group by r.id, r.section_id, r.label, r.price_tier, s.sort_order, r.sort_order
      order by s.sort_order, r.sort_order`),
  ]);
  const rows = rowRows.rows.map((row) => {
    if (!row.consecutive) throw new Error(`seat layout: row ${row.label} of section ${row.section} is not numbered consecutively`);
    const base = { section: row.section, label: row.label, priceTier: row.price_tier, firstSeat: row.first_seat, count: row.count };
    return row.seat_labels ? { ...base, seatLabels: row.seat_labels } : base;
  });
  return {
    eventId,
    venueId: event.venue_id,
    seatCount: event.seat_count,
    sections: sectionRows.rows.map((s) => ({ id: s.id, label: s.label, name: s.name, kind: s.kind, priceTier: s.price_tier, capacity: s.capacity })),
    rows,
  };
}
