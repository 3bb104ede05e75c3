/** The waiting room's view of an event in Postgres. */
import { sql } from "drizzle-orm";
import type { Db } from "../core/db/client";

/** Lobby and admission settings of an event. */
export interface WaitingRoomConfig {
  eventId: string;
  lobbyOpensAt: number;
  saleStartsAt: number;
  saleEndsAt: number;
  admissionRatePerSecond: number;
}

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
