/**
 * Read-only counts for the organizer's live view: places in live holds and
 * places sold, per section, and places returned after a sale (refunded or
 * cancelled). Read from the `holds` table (holds.ts owns it) with the chart's
 * `seats` table (places.ts): O(holds), a stats read, never on the hot path.
 */
import type { LiveCounts, SectionCounts } from "../../core/holds/live-counts";
import type { Sql } from "../lib/sql";

/** Counts live and confirmed holds' places per section (call after due holds were released). */
export function liveCounts(sql: Sql): LiveCounts {
  const bySection = new Map<string, SectionCounts>();
  const add = (sectionId: string, status: string, places: number) => {
    const counts = bySection.get(sectionId) ?? { sectionId, held: 0, sold: 0 };
    if (status === "live") counts.held += places;
    else counts.sold += places;
    bySection.set(sectionId, counts);
  };
  for (const row of sql<{ section_id: string; status: string; places: number }>`
    SELECT s.section_id, h.status, count(*) AS places
    FROM holds h, json_each(h.seat_list) j JOIN seats s ON s.seat_index = j.value
    WHERE h.status IN ('live', 'confirmed')
    GROUP BY s.section_id, h.status`) {
    add(row.section_id, row.status, row.places);
  }
  for (const row of sql<{ section_id: string; status: string; places: number }>`
    SELECT json_extract(j.value, '$.sectionId') AS section_id, h.status, sum(json_extract(j.value, '$.quantity')) AS places
    FROM holds h, json_each(h.ga_list) j
    WHERE h.status IN ('live', 'confirmed')
    GROUP BY 1, h.status`) {
    add(row.section_id, row.status, row.places);
  }
  const returned = sql<{ n: number }>`SELECT coalesce(sum(places), 0) AS n FROM holds WHERE status = 'refunded'`.one().n;
  return { sections: [...bySection.values()], returned };
}
