/** A published hot event for the waiting-room benches, written through the app's own `createEvent`. */
import type { Db } from "../../core/db/client.ts";
import { createEvent, createEventSchema } from "../../workers/events/events.ts";

/** What a bench chooses of its hot event; the event itself is 30 days after its sale. */
export interface HotBenchEvent {
  venueId: string;
  name: string;
  saleStartsAt: number;
  lobbyOpensMinutes: number;
  purchaseLimit: number;
  prices: { priceTier: string; priceCents: number }[];
}

/** Creates the event; returns its id. */
export async function createHotBenchEvent(db: Db, organizerId: string, event: HotBenchEvent): Promise<string> {
  const created = await createEvent(
    db,
    organizerId,
    createEventSchema.parse({
      venueId: event.venueId,
      name: event.name,
      startsAt: new Date(event.saleStartsAt + 30 * 24 * 3_600_000).toISOString(),
      saleStartsAt: new Date(event.saleStartsAt).toISOString(),
      lobbyOpensMinutes: event.lobbyOpensMinutes,
      purchaseLimit: event.purchaseLimit,
      demandClass: "hot",
      status: "published",
      prices: event.prices,
    }),
  );
  return created.id;
}
