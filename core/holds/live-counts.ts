/** The organizer's live counts of an event's places, as the inventory object and Postgres both give them (workers/events/live-stats.ts). */

/** Held and sold places of one section. */
export interface SectionCounts {
  sectionId: string;
  held: number;
  sold: number;
}

/** What the inventory holds right now, beyond availability. */
export interface LiveCounts {
  sections: SectionCounts[];
  /** Places sold and then returned to the pool (refunds, cancellations). */
  returned: number;
}
