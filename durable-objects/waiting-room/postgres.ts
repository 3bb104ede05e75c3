/** The waiting room's view of an event in Postgres. */
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import type { EventSettings } from "./settings";

/** Reads an event's lobby, admission and bot settings; undefined when the event does not exist. */
export async function loadEventSettings(db: Db, eventId: string): Promise<EventSettings | undefined> {
  const result = await db.execute<{
    lobby_opens_minutes: number;
    sale_starts_at: string;
    sale_end: string;
    admission_rate_per_second: number;
    bot_policy: "deprioritize" | "refuse";
    max_accounts_per_device: number;
    max_accounts_per_ip: number;
    expected_demand: number;
  }>(sql`
    select lobby_opens_minutes, sale_starts_at, coalesce(sale_ends_at, ends_at, starts_at) as sale_end, admission_rate_per_second,
      bot_policy, max_accounts_per_device, max_accounts_per_ip, expected_demand
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
    botPolicy: row.bot_policy,
    maxAccountsPerDevice: row.max_accounts_per_device,
    maxAccountsPerIp: row.max_accounts_per_ip,
    expectedDemand: Number(row.expected_demand),
  };
}
