/**
 * Seating charts: the JSON an organizer uploads to create a venue, its
 * validation, and the plan (seat indexes, best-available ranks) written to
 * Postgres. Pure: no I/O here.
 */
import { z } from "@hono/zod-openapi";

/** Largest venue we accept (seats plus general-admission places). */
export const MAX_CAPACITY = 200_000;
const MAX_SECTIONS = 500;
const MAX_ROWS_PER_SECTION = 300;
const MAX_SEATS_PER_ROW = 1_000;

const label = z
  .string()
  .min(1)
  .max(24)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._\-]*$/, "use letters, digits, spaces, '.', '_' or '-', starting with a letter or digit");
const priceTier = z.string().trim().min(1).max(40);

const rowSchema = z
  .strictObject({
    label,
    priceTier: priceTier.optional(),
    seats: z.union([
      z.number().int().min(1).max(MAX_SEATS_PER_ROW),
      z.array(label).min(1).max(MAX_SEATS_PER_ROW),
    ]),
  })
  .openapi("ChartRow", { description: "A row: a seat count (labelled 1..n) or explicit seat labels, in order." });

const sectionSchema = z
  .strictObject({
    label,
    name: z.string().trim().min(1).max(80).optional(),
    priceTier: priceTier.optional(),
    rows: z.array(rowSchema).min(1).max(MAX_ROWS_PER_SECTION).optional(),
    generalAdmission: z.strictObject({ capacity: z.number().int().min(1).max(MAX_CAPACITY) }).optional(),
  })
  .openapi("ChartSection", {
    description: "A seated section (rows) or a general-admission section (a capacity). Rows may override the price tier.",
  });

/** The seating-chart document accepted by `POST /admin/venues`. */
export const seatingChartSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(120),
    city: z.string().trim().min(1).max(120).optional(),
    timezone: z.string().trim().min(1).max(64).optional(),
    sections: z.array(sectionSchema).min(1).max(MAX_SECTIONS),
  })
  .superRefine((chart, ctx) => {
    const sectionLabels = new Set<string>();
    let capacity = 0;
    chart.sections.forEach((section, s) => {
      const at = (...path: (string | number)[]) => ["sections", s, ...path];
      if (sectionLabels.has(section.label)) ctx.addIssue({ code: "custom", path: at("label"), message: `duplicate section label "${section.label}"` });
      sectionLabels.add(section.label);
      if ((section.rows === undefined) === (section.generalAdmission === undefined)) {
        ctx.addIssue({ code: "custom", path: at(), message: "a section has either rows or generalAdmission, not both or neither" });
        return;
      }
      if (section.generalAdmission) {
        if (!section.priceTier) ctx.addIssue({ code: "custom", path: at("priceTier"), message: "a general-admission section needs a price tier" });
        capacity += section.generalAdmission.capacity;
        return;
      }
      const rowLabels = new Set<string>();
      section.rows?.forEach((row, r) => {
        if (rowLabels.has(row.label)) ctx.addIssue({ code: "custom", path: at("rows", r, "label"), message: `duplicate row label "${row.label}"` });
        rowLabels.add(row.label);
        if (!row.priceTier && !section.priceTier) {
          ctx.addIssue({ code: "custom", path: at("rows", r, "priceTier"), message: "give the row or its section a price tier" });
        }
        if (Array.isArray(row.seats)) {
          const seen = new Set<string>();
          for (const [i, seat] of row.seats.entries()) {
            if (seen.has(seat)) ctx.addIssue({ code: "custom", path: at("rows", r, "seats", i), message: `duplicate seat label "${seat}"` });
            seen.add(seat);
          }
        }
        capacity += Array.isArray(row.seats) ? row.seats.length : row.seats;
      });
    });
    if (capacity > MAX_CAPACITY) {
      ctx.addIssue({ code: "custom", path: ["sections"], message: `the chart holds ${capacity} places; at most ${MAX_CAPACITY} are allowed` });
    }
  })
  .openapi("SeatingChart");

/** A validated seating chart. */
export type SeatingChart = z.infer<typeof seatingChartSchema>;

/** A seat as it will be stored. */
export interface PlannedSeat {
  seatIndex: number;
  label: string;
  position: number;
  bestRank: number;
  priceTier: string;
}

/** A row as it will be stored. */
export interface PlannedRow {
  label: string;
  sortOrder: number;
  priceTier: string;
  seats: PlannedSeat[];
}

/** A section as it will be stored. */
export interface PlannedSection {
  label: string;
  name: string;
  sortOrder: number;
  kind: "seated" | "general_admission";
  priceTier: string | null;
  gaCapacity: number | null;
  rows: PlannedRow[];
}

/** Everything the import writes, computed up front. */
export interface ChartPlan {
  sections: PlannedSection[];
  seatCount: number;
  capacity: number;
  priceTiers: string[];
}

/**
 * Numbers the seats of a validated chart 0..n-1 in chart order and ranks them
 * for best available: earlier sections first, then front rows, then seats
 * nearest the middle of their row.
 */
export function planChart(chart: SeatingChart): ChartPlan {
  let seatIndex = 0;
  const ranked: PlannedSeat[] = [];
  const tiers = new Set<string>();
  const sections = chart.sections.map((section, sortOrder): PlannedSection => {
    const base = { label: section.label, name: section.name ?? section.label, sortOrder };
    if (section.generalAdmission) {
      const tier = section.priceTier ?? "";
      tiers.add(tier);
      return { ...base, kind: "general_admission", priceTier: tier, gaCapacity: section.generalAdmission.capacity, rows: [] };
    }
    const rows = (section.rows ?? []).map((row, rowOrder): PlannedRow => {
      const tier = row.priceTier ?? section.priceTier ?? "";
      tiers.add(tier);
      const labels = Array.isArray(row.seats) ? row.seats : Array.from({ length: row.seats }, (_, i) => String(i + 1));
      const middle = (labels.length - 1) / 2;
      const seats = labels.map((seatLabel, position) => ({ seatIndex: seatIndex++, label: seatLabel, position, bestRank: 0, priceTier: tier }));
      // Middle seats first; ties (either side of the middle) broken left to right.
      ranked.push(...[...seats].sort((a, b) => Math.abs(a.position - middle) - Math.abs(b.position - middle) || a.position - b.position));
      return { label: row.label, sortOrder: rowOrder, priceTier: tier, seats };
    });
    return { ...base, kind: "seated", priceTier: section.priceTier ?? null, gaCapacity: null, rows };
  });
  ranked.forEach((seat, rank) => (seat.bestRank = rank));
  const gaPlaces = sections.reduce((sum, s) => sum + (s.gaCapacity ?? 0), 0);
  return { sections, seatCount: seatIndex, capacity: seatIndex + gaPlaces, priceTiers: [...tiers].sort() };
}
