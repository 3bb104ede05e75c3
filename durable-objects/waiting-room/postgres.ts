/** The waiting room's view of an event in Postgres. */
import { sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../core/db/client";

/** Lobby and admission settings of an event (stored in the room as JSON, checked against this when read back). */
export const waitingRoomConfigSchema = z.object({
  eventId: z.string(),
  lobbyOpensAt: z.number(),
  saleStartsAt: z.number(),
  saleEndsAt: z.number(),
  admissionRatePerSecond: z.number(),
});

/** Lobby and admission settings of an event. */
export type WaitingRoomConfig = z.infer<typeof waitingRoomConfigSchema>;

/** Reads an event's lobby settings; undefined when the event does not exist. */
export async function loadWaitingRoomConfig(db: Db, eventId: string): Promise<WaitingRoomConfig | undefined> {
  const result = await db.execute<{ lobby_opens_minutes: number; sale_starts_at: string; sale_end: string; admission_rate_per_second: number }>(sql`
    select lobby_opens_minutes, sale_starts_at, coalesce(sale_ends_at, ends_at, starts_at) as sale_end, admission_rate_per_second
    from events where id = ${eventId}`);
  const row = result.rows[0];
  if (!row) return undefined;
  const saleStartsAt = Date.parse(row.sale_starts_at);
  return {
    eventId,
    lobbyOpensAt: saleStartsAt - row.lobby_opens_minutes * 60_000,
    saleStartsAt,
    saleEndsAt: Date.parse(row.sale_end),
    admissionRatePerSecond: row.admission_rate_per_second,
  };
}
