/**
 * Property-based fuzz of the seating-chart import, through the Worker: valid
 * charts are created whole, anything else is a 4xx that writes nothing, and
 * nothing ever makes the Worker fail with a 5xx.
 */
import { countDistinct, eq, max, min } from "drizzle-orm";
import fc from "fast-check";
import { expect, it } from "vitest";
import { seats } from "../../../core/db/schema";
import type { SeatingChart } from "../../../workers/venues/seating-chart";
import { chartTotals } from "../../fixtures/charts";
import { openDb } from "../../fixtures/db";
import { expectApiError, rawRequest } from "../../fixtures/http";
import { newOrganizer } from "../../fixtures/seeding";
import { countVenueRows, venueViewSchema } from "../../fixtures/venues";

type Section = SeatingChart["sections"][number];
type Row = NonNullable<Section["rows"]>[number];

/** Labels as the chart accepts them; at most 6 characters, so `LONG_LABEL` can never collide. */
const labelArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,5}$/);
const LONG_LABEL = "mutation-only-label";
const tierArb = fc.constantFrom("A", "B", "VIP", "Floor", "  padded  ", "Ünïcode tier");

/** A row; without a section tier it must bring its own, with one it may override it. */
const rowArb = (needsTier: boolean): fc.Arbitrary<Row> =>
  fc
    .record({
      label: labelArb,
      tier: needsTier ? tierArb : fc.option(tierArb, { nil: undefined }),
      seats: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.uniqueArray(labelArb, { minLength: 1, maxLength: 12 })),
    })
    .map(({ label, tier, seats }) => (tier === undefined ? { label, seats } : { label, priceTier: tier, seats }));

const seatedSectionArb: fc.Arbitrary<Omit<Section, "label">> = fc.option(tierArb, { nil: undefined }).chain((tier) =>
  fc
    .record({
      name: fc.option(fc.constantFrom("Lower bowl", "Upper tier", " Club "), { nil: undefined }),
      rows: fc.uniqueArray(rowArb(tier === undefined), { minLength: 1, maxLength: 5, selector: (row) => row.label }),
    })
    .map(({ name, rows }) => ({ ...(name === undefined ? {} : { name }), ...(tier === undefined ? {} : { priceTier: tier }), rows })),
);

const gaSectionArb: fc.Arbitrary<Omit<Section, "label">> = fc.record({
  priceTier: tierArb,
  generalAdmission: fc.record({ capacity: fc.integer({ min: 1, max: 5_000 }) }),
});

/** Valid charts; the first section is always seated, so row and seat mutations have a target. */
const validChartArb: fc.Arbitrary<SeatingChart> = fc
  .tuple(
    fc.uniqueArray(labelArb, { minLength: 1, maxLength: 5 }),
    seatedSectionArb,
    fc.array(fc.oneof(seatedSectionArb, gaSectionArb), { minLength: 4, maxLength: 4 }),
    fc.option(fc.constantFrom("Paris", "Osaka"), { nil: undefined }),
  )
  .map(([labels, first, rest, city]) => ({
    name: "Fuzzed venue",
    ...(city === undefined ? {} : { city }),
    sections: labels.map((label, i) => ({ label, ...(i === 0 ? first : (rest[i - 1] ?? first)) })),
  }));

/** A chart's first seated section and its first row (the generator guarantees both). */
function firstSeated(chart: SeatingChart): { section: Section; row: Row } {
  const section = chart.sections[0];
  const row = section?.rows?.[0];
  if (!section || !row) throw new Error("generator invariant: the first section is seated");
  return { section, row };
}

/** Replaces the first section of a chart. */
function withFirstSection(chart: SeatingChart, section: Record<string, unknown>): Record<string, unknown> {
  return { ...chart, sections: [section, ...chart.sections.slice(1)] };
}

/** Replaces the first row of the first section. */
function withFirstRow(chart: SeatingChart, row: Record<string, unknown>): Record<string, unknown> {
  const { section } = firstSeated(chart);
  return withFirstSection(chart, { ...section, rows: [row, ...(section.rows ?? []).slice(1)] });
}

const nested = (depth: number, leaf: unknown, asArray: boolean): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { deeper: value };
  return value;
};

const wrongTypeArb = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant({}), fc.constant([]), fc.string());
const extraKeyArb = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "prototype", "toString", "", "Name", "seat", "rows ", "capacity"),
  fc.string({ minLength: 1, maxLength: 8 }),
);
const CHART_KEYS = new Set(["name", "city", "timezone", "sections"]);
const SECTION_KEYS = new Set(["label", "name", "priceTier", "rows", "generalAdmission"]);
const ROW_KEYS = new Set(["label", "priceTier", "seats"]);

/** Mutations of a valid chart that each make it invalid: the import must answer 400. */
const invalidChartArb: fc.Arbitrary<{ kind: string; body: unknown }> = validChartArb.chain((chart) => {
  const { section, row } = firstSeated(chart);
  const mutations: fc.Arbitrary<{ kind: string; body: unknown }>[] = [
    fc.constant({ kind: "duplicate section label", body: { ...chart, sections: [...chart.sections, { ...section }] } }),
    fc.constant({ kind: "duplicate row label", body: withFirstSection(chart, { ...section, rows: [...(section.rows ?? []), { ...row }] }) }),
    labelArb.map((seat) => ({ kind: "duplicate seat label", body: withFirstRow(chart, { ...row, seats: [seat, "x", seat] }) })),
    fc
      .oneof(fc.integer({ max: 0 }), fc.integer({ min: 1_001 }), fc.constantFrom(1e9, 2.5, -0.5, 1e308), wrongTypeArb.filter((v) => typeof v !== "number" && !Array.isArray(v)))
      .map((seats) => ({ kind: "bad seat count", body: withFirstRow(chart, { ...row, seats }) })),
    fc.constant({ kind: "empty seat list", body: withFirstRow(chart, { ...row, seats: [] }) }),
    fc
      .oneof(fc.integer({ max: 0 }), fc.integer({ min: 200_001 }), fc.constantFrom(1.5, "100"))
      .map((capacity) => ({
        kind: "bad general-admission capacity",
        body: { ...chart, sections: [...chart.sections, { label: LONG_LABEL, priceTier: "GA", generalAdmission: { capacity } }] },
      })),
    fc.constant({
      kind: "over capacity",
      body: { ...chart, sections: [...chart.sections, ...Array.from({ length: 201 }, (_, i) => ({ label: `${LONG_LABEL}${i}`, priceTier: "A", rows: [{ label: "1", seats: 1_000 }] }))] },
    }),
    fc.constant({ kind: "rows and general admission", body: withFirstSection(chart, { ...section, priceTier: "A", generalAdmission: { capacity: 10 } }) }),
    fc.constant({ kind: "neither rows nor general admission", body: withFirstSection(chart, { label: section.label, priceTier: "A" }) }),
    fc.constant({
      kind: "missing price tier",
      body: withFirstSection(chart, { label: section.label, rows: [{ label: row.label, seats: row.seats }] }),
    }),
    fc.constantFrom("name", "sections").map((key) => ({ kind: `missing ${key}`, body: Object.fromEntries(Object.entries(chart).filter(([k]) => k !== key)) })),
    fc.constant({ kind: "no sections", body: { ...chart, sections: [] } }),
    fc.constant({ kind: "no rows", body: withFirstSection(chart, { ...section, rows: [] }) }),
    fc.constantFrom("", " leading space", "a/b", "x".repeat(25), "ü").map((label) => ({ kind: "bad label", body: withFirstRow(chart, { ...row, label }) })),
    fc
      .tuple(fc.constantFrom("name", "sections", "city"), wrongTypeArb)
      .filter(([key, value]) => !(key !== "sections" && typeof value === "string" && value.trim().length > 0 && value.trim().length <= 120))
      .map(([key, value]) => ({ kind: `wrong type for ${key}`, body: { ...chart, [key]: value } })),
    wrongTypeArb
      .filter((value) => typeof value !== "string" || !/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,23}$/.test(value))
      .map((label) => ({ kind: "wrong type for a section label", body: withFirstSection(chart, { ...section, label }) })),
    fc
      .tuple(fc.constantFrom("chart", "section", "row", "generalAdmission"), extraKeyArb, fc.jsonValue())
      .filter(([where, key]) => !(where === "chart" ? CHART_KEYS : where === "section" ? SECTION_KEYS : where === "row" ? ROW_KEYS : new Set(["capacity"])).has(key))
      .map(([where, key, value]) => {
        // Computed keys define own properties, so "__proto__" really is sent.
        if (where === "chart") return { kind: `extra key on chart`, body: { ...chart, [key]: value } };
        if (where === "section") return { kind: `extra key on section`, body: withFirstSection(chart, { ...section, [key]: value }) };
        if (where === "row") return { kind: `extra key on row`, body: withFirstRow(chart, { ...row, [key]: value }) };
        return {
          kind: "extra key on generalAdmission",
          body: { ...chart, sections: [...chart.sections, { label: LONG_LABEL, priceTier: "GA", generalAdmission: { capacity: 5, [key]: value } }] },
        };
      }),
    fc.tuple(fc.integer({ min: 1, max: 3_000 }), fc.boolean(), fc.constantFrom("sections", "name", "extra", "seats")).map(([depth, asArray, where]) => {
      const deep = nested(depth, 1, asArray);
      if (where === "seats") return { kind: "deep nesting in seats", body: withFirstRow(chart, { ...row, seats: [deep] }) };
      return { kind: `deep nesting in ${where}`, body: { ...chart, [where]: deep } };
    }),
  ];
  return fc.oneof(...mutations);
});

type FuzzCase =
  | { kind: "valid"; chart: SeatingChart }
  | { kind: "invalid"; mutation: string; body: unknown }
  | { kind: "random json"; body: unknown }
  | { kind: "raw text"; text: string };

const caseArb: fc.Arbitrary<FuzzCase> = fc.oneof(
  { weight: 3, arbitrary: validChartArb.map((chart): FuzzCase => ({ kind: "valid", chart })) },
  { weight: 5, arbitrary: invalidChartArb.map(({ kind, body }): FuzzCase => ({ kind: "invalid", mutation: kind, body })) },
  { weight: 1, arbitrary: fc.jsonValue().map((body): FuzzCase => ({ kind: "random json", body })) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 60 }).map((text): FuzzCase => ({ kind: "raw text", text })) },
);

function requestBody(testCase: FuzzCase): string {
  if (testCase.kind === "raw text") return testCase.text;
  return JSON.stringify(testCase.kind === "valid" ? testCase.chart : testCase.body);
}

it("imports valid charts whole and rejects everything else without writing or failing", async () => {
  const { apiKey, organizerId } = await newOrganizer("Fuzz");
  const { db, close } = openDb();
  try {
    await fc.assert(
      fc.asyncProperty(caseArb, async (testCase) => {
        const before = await countVenueRows(db, organizerId);
        const response = await rawRequest("/admin/venues", {
          method: "POST",
          headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
          body: requestBody(testCase),
        });
        expect(response.status, response.text).toBeLessThan(500);
        const after = await countVenueRows(db, organizerId);

        if (response.status !== 201) {
          expect(after, `${testCase.kind}: a ${response.status} wrote something`).toEqual(before);
          expectApiError(response, 400, "invalid_request");
          expect(testCase.kind, response.text).not.toBe("valid");
          return;
        }
        expect(testCase.kind === "valid" || testCase.kind === "random json", `${testCase.kind === "invalid" ? testCase.mutation : testCase.kind} was accepted`).toBe(true);
        if (testCase.kind !== "valid") return;

        const totals = chartTotals(testCase.chart);
        const venue = venueViewSchema.parse(response.json);
        expect(venue).toMatchObject({ seatCount: totals.seatCount, capacity: totals.capacity });
        expect(venue.sections.map((s) => s.label)).toEqual(testCase.chart.sections.map((s) => s.label));
        expect(after).toEqual({
          venues: before.venues + 1,
          sections: before.sections + testCase.chart.sections.length,
          rows: before.rows + totals.rowCount,
          seats: before.seats + totals.seatCount,
        });
        const [numbering] = await db
          .select({ indexes: countDistinct(seats.seatIndex), minIndex: min(seats.seatIndex), maxIndex: max(seats.seatIndex), ranks: countDistinct(seats.bestRank), minRank: min(seats.bestRank), maxRank: max(seats.bestRank) })
          .from(seats)
          .where(eq(seats.venueId, venue.id));
        // The first section is seated, so there is at least one seat; indexes and ranks are both 0..n-1.
        const last = totals.seatCount - 1;
        expect(numbering).toEqual({ indexes: totals.seatCount, minIndex: 0, maxIndex: last, ranks: totals.seatCount, minRank: 0, maxRank: last });
      }),
      { numRuns: 250 },
    );
  } finally {
    await close();
  }
}, 120_000);
