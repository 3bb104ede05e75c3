/**
 * GET /api/events/:id/seats: the seat map's layout. Each row is a run of seat
 * indexes (firstSeat..firstSeat+count-1, left to right), which only works
 * because planChart numbers a row's seats consecutively in position order:
 * that is checked here for random charts, against the stored seats and
 * against what a hold reports for a seat picked from the layout.
 */
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { PostgresInventory } from "../../../workers/holds/postgres-holds";
import { planChart, seatingChartSchema, type SeatingChart } from "../../../workers/venues/seating-chart";
import { stadiumChart, theatreChart } from "../../fixtures/charts";
import { uniqueName, withDb } from "../../fixtures/db";
import { expectApiError, rawRequest } from "../../fixtures/http";
import { openEvent } from "../../fixtures/seeding";

const layoutSchema = z.strictObject({
  eventId: z.uuid(),
  venueId: z.uuid(),
  seatCount: z.number().int().min(0),
  sections: z.array(
    z.strictObject({
      id: z.uuid(),
      label: z.string(),
      name: z.string(),
      kind: z.enum(["seated", "general_admission"]),
      priceTier: z.string().nullable(),
      capacity: z.number().int().min(1),
    }),
  ),
  rows: z.array(
    z.strictObject({
      section: z.uuid(),
      label: z.string(),
      priceTier: z.string(),
      firstSeat: z.number().int().min(0),
      count: z.number().int().min(1),
      seatLabels: z.array(z.string()).optional(),
    }),
  ),
});
type Layout = z.infer<typeof layoutSchema>;

async function getLayout(eventId: string): Promise<{ layout: Layout; cacheControl: string | null; bytes: number }> {
  const response = await rawRequest(`/api/events/${eventId}/seats`);
  expect(response.status, response.text).toBe(200);
  return { layout: layoutSchema.parse(response.json), cacheControl: response.headers.get("Cache-Control"), bytes: response.text.length };
}

/** Every seat the layout describes, by seat index: what the seat map draws. */
function expand(layout: Layout): { seatIndex: number; section: string; row: string; seat: string; priceTier: string }[] {
  const sectionLabel = new Map(layout.sections.map((s) => [s.id, s.label]));
  return layout.rows.flatMap((row) =>
    Array.from({ length: row.count }, (_, k) => ({
      seatIndex: row.firstSeat + k,
      section: sectionLabel.get(row.section) ?? "?",
      row: row.label,
      seat: row.seatLabels?.[k] ?? String(k + 1),
      priceTier: row.priceTier,
    })),
  );
}

/** The same, from the chart itself: sections, rows and seats in chart order. */
function expectedSeats(chart: SeatingChart) {
  return chart.sections.flatMap((section) =>
    (section.rows ?? []).flatMap((row) => {
      const labels = Array.isArray(row.seats) ? row.seats : Array.from({ length: row.seats }, (_, i) => String(i + 1));
      return labels.map((seat) => ({ section: section.label, row: row.label, seat, priceTier: (row.priceTier ?? section.priceTier ?? "").trim() }));
    }),
  );
}

async function storedSeats(venueId: string) {
  return withDb(async (db) => {
    const result = await db.execute<{ seat_index: number; section: string; row: string; seat: string; price_tier: string }>(sql`
      select st.seat_index, s.label as section, r.label as row, st.label as seat, st.price_tier
      from seats st join seat_rows r on r.id = st.row_id join sections s on s.id = st.section_id
      where st.venue_id = ${venueId} order by st.seat_index`);
    return result.rows.map((r) => ({ seatIndex: r.seat_index, section: r.section, row: r.row, seat: r.seat, priceTier: r.price_tier }));
  });
}

describe("planChart", () => {
  const label = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9]{0,3}$/);
  const row = fc.record({
    priceTier: fc.option(fc.constantFrom("A", "B"), { nil: undefined }),
    seats: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.uniqueArray(label, { minLength: 1, maxLength: 10 })),
  });
  const section = fc.oneof(
    fc.record({ priceTier: fc.constant("S"), rows: fc.array(row, { minLength: 1, maxLength: 6 }) }),
    fc.record({ priceTier: fc.constant("GA"), generalAdmission: fc.record({ capacity: fc.integer({ min: 1, max: 100 }) }) }),
  );
  const chartArb: fc.Arbitrary<SeatingChart> = fc.array(section, { minLength: 1, maxLength: 6 }).map((sections) =>
    seatingChartSchema.parse({
      name: "Random hall",
      sections: sections.map((s, i) => ({
        label: `S${i}`,
        ...s,
        ...("rows" in s ? { rows: s.rows.map((r, j) => ({ label: `R${j}`, ...r })) } : {}),
      })),
    }),
  );

  it("numbers every row's seats consecutively, left to right, rows in chart order", () => {
    fc.assert(
      fc.property(chartArb, (chart) => {
        const plan = planChart(chart);
        let next = 0;
        for (const plannedSection of plan.sections) {
          for (const plannedRow of plannedSection.rows) {
            plannedRow.seats.forEach((seat, position) => {
              expect(seat.position).toBe(position);
              expect(seat.seatIndex).toBe(next + position);
            });
            next += plannedRow.seats.length;
          }
        }
        expect(next).toBe(plan.seatCount);
      }),
      { numRuns: 300 },
    );
  });
});

describe("GET /api/events/:id/seats", () => {
  it("describes a theatre: tiers per row, explicit seat labels only where they are not 1..n, a GA section without rows", async () => {
    const chart = theatreChart();
    const { event, venue } = await openEvent({ demandClass: "calm", chart, accounts: 0 });
    const { layout, cacheControl } = await getLayout(event.id);

    expect(cacheControl).toBe("public, max-age=300");
    expect(layout).toMatchObject({ eventId: event.id, venueId: venue.id, seatCount: 24 });
    expect(layout.sections.map(({ id: _id, ...s }) => s)).toEqual([
      { label: "ORCH", name: "Orchestra", kind: "seated", priceTier: "orchestra", capacity: 19 },
      { label: "BALC", name: "Balcony", kind: "seated", priceTier: null, capacity: 5 },
      { label: "PIT", name: "Standing pit", kind: "general_admission", priceTier: "standing", capacity: 20 },
    ]);
    const [orch, balc] = layout.sections;
    expect(layout.rows).toEqual([
      { section: orch?.id, label: "A", priceTier: "premium", firstSeat: 0, count: 4 },
      { section: orch?.id, label: "B", priceTier: "orchestra", firstSeat: 4, count: 6 },
      { section: orch?.id, label: "C", priceTier: "orchestra", firstSeat: 10, count: 9, seatLabels: ["101", "102", "103", "104", "105", "106", "107", "108", "109"] },
      { section: balc?.id, label: "1", priceTier: "balcony", firstSeat: 19, count: 5, seatLabels: ["1A", "1B", "2", "3", "4"] },
    ]);
    // The section ids are the ones availability and best-available use.
    expect(layout.sections.map((s) => s.id).sort()).toEqual(venue.sections.map((s) => s.id).sort());
  });

  it("matches the stored seats and what a hold reports for a seat picked on the map", async () => {
    const { event, venue, accounts } = await openEvent({ demandClass: "calm", chart: theatreChart(), accounts: 1 });
    const { layout } = await getLayout(event.id);
    const drawn = expand(layout);
    expect(drawn).toEqual(await storedSeats(venue.id));

    const picked = drawn.find((seat) => seat.section === "ORCH" && seat.row === "C" && seat.seat === "105");
    const balcony = drawn.find((seat) => seat.section === "BALC" && seat.seat === "1B");
    if (!picked || !balcony) throw new Error("the layout lacks ORCH C 105 or BALC 1B");
    const result = await withDb((db) =>
      new PostgresInventory(db, event.id).hold({
        kind: "seats",
        accountId: accounts[0] ?? "",
        requestId: crypto.randomUUID(),
        attemptKey: crypto.randomUUID(),
        seatIndexes: [picked.seatIndex, balcony.seatIndex],
      }),
    );
    if (!result.ok) throw new Error(`hold refused: ${result.reason}`);
    expect(result.hold.seats.map(({ seatIndex, section, row, seat }) => ({ seatIndex, section, row, seat }))).toEqual([
      { seatIndex: picked.seatIndex, section: "ORCH", row: "C", seat: "105" },
      { seatIndex: balcony.seatIndex, section: "BALC", row: "1", seat: "1B" },
    ]);

    // The availability bitmap, read with the layout's indexes, shows exactly those two seats taken.
    const availability = await rawRequest(`/api/events/${event.id}/availability`);
    const bitmap = Uint8Array.from(atob(z.object({ bitmap: z.string() }).parse(availability.json).bitmap), (ch) => ch.charCodeAt(0));
    const taken = drawn.filter((seat) => ((bitmap[seat.seatIndex >> 3] ?? 0) >> (7 - (seat.seatIndex % 8))) % 2 === 0).map((seat) => seat.seatIndex);
    expect(taken).toEqual([picked.seatIndex, balcony.seatIndex].sort((a, b) => a - b));
  });

  it("agrees with the chart and the stored seats for random charts", async () => {
    const label = fc.stringMatching(/^[A-Z0-9][A-Z0-9]{0,2}$/);
    const chartArb = fc
      .array(
        fc.record({
          tier: fc.constantFrom("low", "high"),
          rows: fc.array(fc.oneof(fc.integer({ min: 1, max: 12 }), fc.uniqueArray(label, { minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 4 }),
        }),
        { minLength: 1, maxLength: 3 },
      )
      .map((sections) =>
        seatingChartSchema.parse({
          name: uniqueName("Random hall"),
          sections: sections.map((s, i) => ({ label: `S${i}`, priceTier: s.tier, rows: s.rows.map((seats, j) => ({ label: `R${j}`, seats })) })),
        }),
      );
    await fc.assert(
      fc.asyncProperty(chartArb, async (chart) => {
        const { event, venue } = await openEvent({ demandClass: "calm", chart, accounts: 0 });
        const { layout } = await getLayout(event.id);
        const drawn = expand(layout);
        expect(drawn.map(({ seatIndex: _i, ...seat }) => seat)).toEqual(expectedSeats(chart));
        expect(drawn.map((seat) => seat.seatIndex)).toEqual(drawn.map((_, i) => i));
        expect(drawn).toEqual(await storedSeats(venue.id));
        expect(layout.seatCount).toBe(drawn.length);
      }),
      { numRuns: 6 },
    );
  });

  it("stays small for a 1,000-row stadium: one entry per row, not per seat", async () => {
    const chart = stadiumChart({ sections: 40, rows: 25, seatsPerRow: 20 });
    const { event } = await openEvent({ demandClass: "hot", chart, accounts: 0 });
    const { layout, bytes } = await getLayout(event.id);
    expect(layout.seatCount).toBe(20_000);
    expect(layout.rows).toHaveLength(1_000);
    expect(layout.rows.every((row) => row.seatLabels === undefined)).toBe(true);
    expect(bytes).toBeLessThan(120_000);
  });

  it("is a 404 for a draft or unknown event and a 400 for a malformed id", async () => {
    const { event, organizerId } = await openEvent({ demandClass: "calm", accounts: 0 });
    await withDb((db) => db.execute(sql`update events set status = 'draft' where id = ${event.id} and organizer_id = ${organizerId}`));
    expectApiError(await rawRequest(`/api/events/${event.id}/seats`), 404, "not_found");
    expectApiError(await rawRequest(`/api/events/${crypto.randomUUID()}/seats`), 404, "not_found");
    expectApiError(await rawRequest("/api/events/not-a-uuid/seats"), 400, "invalid_request");
  });
});
