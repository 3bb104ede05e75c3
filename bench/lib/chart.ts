/**
 * The benchmark's venue: a 70,000-seat stadium shaped like the demo's Harbor
 * Stadium, but all seated and with every row 2 mod 4 seats wide. Best
 * available fills a row from its middle pair outwards, so on such rows a sale
 * of pairs leaves no stranded single seat: "sold out" means all 70,000 seats
 * are held, after exactly 35,000 holds. (On the demo chart, pairs strand
 * 1,520 single seats and then spill into the standing pit.)
 */
import { pricesOf, stadiumChart } from "../../dev/seed.ts";
import type { SeatingChart } from "../../workers/venues/seating-chart.ts";

/** Seats in the benchmark stadium. */
export const BENCH_SEAT_COUNT = 70_000;

/** The price of each tier of the benchmark stadium, as `createEvent` wants them. */
export const BENCH_PRICES = pricesOf({ Floor: 19_900, Club: 17_500, "Lower Bowl Premium": 14_900, "Lower Bowl": 11_900, "Upper Deck": 6_900 });

/** The 70,000-seat benchmark stadium. */
export function benchStadiumChart(): SeatingChart {
  return stadiumChart({
    name: "Bench Stadium",
    floor: { sections: 4, rows: 20, seats: 50 }, // 4,000
    lowerBowl: { sections: 16, rows: 30, seats: 58 }, // 27,840
    club: { sections: 4, rows: 20, seats: 42 }, // 3,360
    upperDeck: { sections: 20, rows: 30, seats: 58 }, // 34,800
  });
}

/**
 * A smaller stadium of `seats` seats (a multiple of 200): the same four kinds
 * of sections, one of each, with rows of 50 seats shared evenly among them.
 */
export function sizedStadiumChart(seats: number): SeatingChart {
  if (!Number.isInteger(seats / 200) || seats <= 0) throw new Error(`a sized stadium takes a positive multiple of 200 seats, not ${seats}`);
  const block = { sections: 1, rows: seats / 200, seats: 50 };
  return stadiumChart({ name: `Bench Stadium ${seats}`, floor: block, lowerBowl: block, club: block, upperDeck: block });
}
