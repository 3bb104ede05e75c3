/** Venues: importing a seating chart into Postgres and reading it back. */
import { z } from "@hono/zod-openapi";
import { and, asc, eq, sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { seatRows, sections, venues } from "../../core/db/schema";
import { notFound } from "../../core/errors";
import { planChart, type SeatingChart } from "./seating-chart";

/** Seats per INSERT statement: bounded so one statement's JSON stays a few MB. */
const SEAT_BATCH = 20_000;

/** A section of a venue's chart, as the APIs show it. */
export const sectionSchema = z.object({
  id: z.uuid(),
  label: z.string(),
  name: z.string(),
  kind: z.enum(["seated", "general_admission"]),
  priceTier: z.string().nullable(),
  capacity: z.number(),
});

/** A venue in the organizer's list. */
export const venueSummarySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  city: z.string().nullable(),
  timezone: z.string(),
  capacity: z.number(),
  seatCount: z.number(),
  createdAt: z.string(),
});

/** A venue with its sections and rows, as the admin API shows it. */
export const venueViewSchema = venueSummarySchema
  .extend({
    priceTiers: z.array(z.string()),
    sections: z.array(sectionSchema.extend({ rows: z.array(z.object({ label: z.string(), priceTier: z.string(), seats: z.number() })) })),
  })
  .openapi("Venue");

/** A venue as the admin API shows it. */
export type VenueView = z.infer<typeof venueViewSchema>;

/**
 * Creates a venue from a validated chart in one transaction: the venue, its
 * sections, rows and every seat (seats go in as JSON batches, so a
 * 70,000-seat chart takes a handful of statements).
 */
export async function importVenue(db: Db, organizerId: string, chart: SeatingChart): Promise<VenueView> {
  const plan = planChart(chart);
  const venueId = await db.transaction(async (tx) => {
    const [venue] = await tx
      .insert(venues)
      .values({
        organizerId,
        name: chart.name,
        city: chart.city ?? null,
        timezone: chart.timezone ?? "UTC",
        capacity: plan.capacity,
        seatCount: plan.seatCount,
      })
      .returning({ id: venues.id });
    if (!venue) throw new Error("venue insert returned nothing");
    const sectionRows = await tx
      .insert(sections)
      .values(plan.sections.map(({ rows: _rows, ...section }) => ({ ...section, venueId: venue.id })))
      .returning({ id: sections.id, label: sections.label });
    const sectionIds = new Map(sectionRows.map((s) => [s.label, s.id]));
    const rowValues = plan.sections.flatMap((section) =>
      section.rows.map((row) => ({ sectionId: sectionIds.get(section.label) ?? "", label: row.label, sortOrder: row.sortOrder, priceTier: row.priceTier })),
    );
    const rowIds = new Map<string, string>();
    if (rowValues.length > 0) {
      const inserted = await tx.insert(seatRows).values(rowValues).returning({ id: seatRows.id, sectionId: seatRows.sectionId, label: seatRows.label });
      for (const row of inserted) rowIds.set(`${row.sectionId}/${row.label}`, row.id);
    }
    const seatJson = plan.sections.flatMap((section) => {
      const sectionId = sectionIds.get(section.label) ?? "";
      return section.rows.flatMap((row) => {
        const rowId = rowIds.get(`${sectionId}/${row.label}`) ?? "";
        return row.seats.map((seat) => ({ i: seat.seatIndex, s: sectionId, r: rowId, l: seat.label, p: seat.position, b: seat.bestRank, t: seat.priceTier }));
      });
    });
    for (let start = 0; start < seatJson.length; start += SEAT_BATCH) {
      const batch = JSON.stringify(seatJson.slice(start, start + SEAT_BATCH));
      await tx.execute(sql`
        insert into seats (venue_id, seat_index, section_id, row_id, label, position, best_rank, price_tier)
        select ${venue.id}, x.i, x.s, x.r, x.l, x.p, x.b, x.t
        from jsonb_to_recordset(${batch}::jsonb) as x(i int, s uuid, r uuid, l text, p int, b int, t text)`);
    }
    return venue.id;
  });
  return getVenue(db, organizerId, venueId);
}

/** Lists an organizer's venues, newest first, without their charts. */
export async function listVenues(db: Db, organizerId: string) {
  const rows = await db.select().from(venues).where(eq(venues.organizerId, organizerId)).orderBy(sql`${venues.createdAt} desc`);
  return rows.map((v) => ({ id: v.id, name: v.name, city: v.city, timezone: v.timezone, capacity: v.capacity, seatCount: v.seatCount, createdAt: v.createdAt.toISOString() }));
}

/** Reads one of the organizer's venues with its sections and rows; 404 for anyone else's. */
export async function getVenue(db: Db, organizerId: string, venueId: string): Promise<VenueView> {
  const [venue] = await db.select().from(venues).where(and(eq(venues.id, venueId), eq(venues.organizerId, organizerId)));
  if (!venue) throw notFound("Venue");
  const sectionList = await db.select().from(sections).where(eq(sections.venueId, venueId)).orderBy(asc(sections.sortOrder));
  const rowList = await db
    .select({
      sectionId: seatRows.sectionId,
      label: seatRows.label,
      priceTier: seatRows.priceTier,
      seats: sql<number>`(select count(*)::int from seats where seats.row_id = ${seatRows.id})`,
    })
    .from(seatRows)
    .innerJoin(sections, eq(sections.id, seatRows.sectionId))
    .where(eq(sections.venueId, venueId))
    .orderBy(asc(sections.sortOrder), asc(seatRows.sortOrder));
  const tiers = new Set<string>();
  const view = sectionList.map((section) => {
    const rows = rowList.filter((r) => r.sectionId === section.id).map(({ label, priceTier, seats }) => ({ label, priceTier, seats }));
    rows.forEach((r) => tiers.add(r.priceTier));
    if (section.priceTier && section.kind === "general_admission") tiers.add(section.priceTier);
    return {
      id: section.id,
      label: section.label,
      name: section.name,
      kind: section.kind,
      priceTier: section.priceTier,
      capacity: section.gaCapacity ?? rows.reduce((sum, r) => sum + r.seats, 0),
      rows,
    };
  });
  return {
    id: venue.id,
    name: venue.name,
    city: venue.city,
    timezone: venue.timezone,
    capacity: venue.capacity,
    seatCount: venue.seatCount,
    priceTiers: [...tiers].sort(),
    sections: view,
    createdAt: venue.createdAt.toISOString(),
  };
}

/** The price tiers a venue's chart uses (what an event must price). */
export async function venuePriceTiers(db: Db, venueId: string): Promise<string[]> {
  const result = await db.execute<{ price_tier: string }>(sql`
    select distinct seat_rows.price_tier from seat_rows join sections on sections.id = seat_rows.section_id where sections.venue_id = ${venueId}
    union
    select price_tier from sections where venue_id = ${venueId} and kind = 'general_admission'
    order by 1`);
  return result.rows.map((r) => r.price_tier);
}
