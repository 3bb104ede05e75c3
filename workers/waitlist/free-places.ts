/** Free places per price tier, from an availability snapshot: what the waitlist can still offer. */
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import type { Availability, HoldView } from "../../core/holds/contract";
import { IsolateCache } from "../../core/isolate-cache";

/** Free places per price tier, from an availability snapshot. */
export interface FreePlaces {
  /** Places free in a price tier, or anywhere (`null`). */
  inScope(priceTier: string | null): number;
  /** Counts a hold's places as gone. */
  take(hold: HoldView): void;
}

/** Seats priced differently from their section, per venue (charts never change once imported), per isolate. */
const repricedSeats = new IsolateCache<string, { seat_index: number; price_tier: string; section_tier: string | null }[]>(200);

async function repriced(db: Db, venueId: string) {
  const cached = repricedSeats.get(venueId);
  if (cached) return cached;
  const rows = await db.execute<{ seat_index: number; price_tier: string; section_tier: string | null }>(sql`
    select st.seat_index, st.price_tier, s.price_tier as section_tier
    from seats st join sections s on s.id = st.section_id
    where st.venue_id = ${venueId} and st.price_tier is distinct from s.price_tier`);
  repricedSeats.set(venueId, rows.rows);
  return rows.rows;
}

/**
 * Free places per price tier. Availability counts per section; a row priced
 * differently from its section is corrected seat by seat from the bitmap.
 */
export async function freePlaces(db: Db, venueId: string, availability: Availability): Promise<FreePlaces> {
  const byTier = new Map<string, number>();
  const add = (tier: string | null, n: number) => byTier.set(tier ?? "", (byTier.get(tier ?? "") ?? 0) + n);
  let total = 0;
  for (const section of availability.sections) {
    add(section.priceTier, section.available);
    total += section.available;
  }
  for (const seat of await repriced(db, venueId)) {
    if (!isFree(availability.bitmap, seat.seat_index)) continue;
    add(seat.section_tier, -1);
    add(seat.price_tier, 1);
  }
  return {
    inScope: (priceTier) => (priceTier === null ? total : (byTier.get(priceTier) ?? 0)),
    take(hold) {
      for (const seat of hold.seats) add(seat.priceTier, -1);
      for (const ga of hold.generalAdmission) add(ga.priceTier, -ga.quantity);
      total -= placesOf(hold);
    },
  };
}

function isFree(bitmap: Uint8Array, seatIndex: number): boolean {
  return ((bitmap[seatIndex >> 3] ?? 0) & (0x80 >> (seatIndex & 7))) !== 0;
}

/** Places a hold takes: its seats and general-admission places. */
export function placesOf(hold: HoldView): number {
  return hold.seats.length + hold.generalAdmission.reduce((sum, ga) => sum + ga.quantity, 0);
}
