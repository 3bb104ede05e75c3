/**
 * The benchmark's venue: a 70,000-seat stadium shaped like the demo's Harbor
 * Stadium, but all seated and with every row 2 mod 4 seats wide. Best
 * available fills a row from its middle pair outwards, so on such rows a sale
 * of pairs leaves no stranded single seat: "sold out" means all 70,000 seats
 * are held, after exactly 35,000 holds. (On the demo chart, pairs strand
 * 1,520 single seats and then spill into the standing pit.)
 */
import type { SeatingChart } from "../../workers/venues/seating-chart.ts";

/** Seats in the benchmark stadium. */
export const BENCH_SEAT_COUNT = 70_000;

/** The price of each tier of the benchmark stadium, as `createEvent` wants them. */
export const BENCH_PRICES = [
  { priceTier: "Floor", priceCents: 19_900 },
  { priceTier: "Club", priceCents: 17_500 },
  { priceTier: "Lower Bowl Premium", priceCents: 14_900 },
  { priceTier: "Lower Bowl", priceCents: 11_900 },
  { priceTier: "Upper Deck", priceCents: 6_900 },
];

/** The 70,000-seat benchmark stadium. */
export function benchStadiumChart(): SeatingChart {
  const rows = (count: number, seats: number, tierOf: (row: number) => string | undefined = () => undefined) =>
    Array.from({ length: count }, (_, i) => {
      const priceTier = tierOf(i);
      return priceTier ? { label: String(i + 1), seats, priceTier } : { label: String(i + 1), seats };
    });
  const numbered = (from: number, count: number) => Array.from({ length: count }, (_, i) => String(from + i));
  return {
    name: "Bench Stadium",
    city: "Seattle",
    timezone: "America/Los_Angeles",
    sections: [
      // 4 x 20 rows x 50 = 4,000
      ...["F1", "F2", "F3", "F4"].map((label) => ({ label, name: `Floor ${label.slice(1)}`, priceTier: "Floor", rows: rows(20, 50) })),
      // 16 x 30 rows x 58 = 27,840; the first 10 rows are premium
      ...numbered(101, 16).map((label) => ({
        label,
        name: `Lower Bowl ${label}`,
        rows: rows(30, 58, (row) => (row < 10 ? "Lower Bowl Premium" : "Lower Bowl")),
      })),
      // 4 x 20 rows x 42 = 3,360
      ...["C1", "C2", "C3", "C4"].map((label) => ({ label, name: `Club ${label.slice(1)}`, priceTier: "Club", rows: rows(20, 42) })),
      // 20 x 30 rows x 58 = 34,800
      ...numbered(301, 20).map((label) => ({ label, name: `Upper Deck ${label}`, priceTier: "Upper Deck", rows: rows(30, 58) })),
    ],
  };
}
