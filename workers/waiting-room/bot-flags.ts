/** The accounts bot defense flagged in an event's lobby (waiting-room/bot-defense.ts writes them), for the organizer. */
import { count, desc, eq } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { accounts, botFlags } from "../../core/db/schema";

/** Flags listed at most. */
const FLAGS_LISTED = 1_000;

/** A flagged account. */
export interface BotFlagView {
  accountId: string;
  email: string;
  reason: string;
  deprioritized: boolean;
  detail: Record<string, unknown>;
  createdAt: string;
}

/** An event's flags, newest first. */
export async function listBotFlags(db: Db, eventId: string): Promise<BotFlagView[]> {
  const rows = await db
    .select({ accountId: botFlags.accountId, email: accounts.email, reason: botFlags.reason, deprioritized: botFlags.deprioritized, detail: botFlags.detail, createdAt: botFlags.createdAt })
    .from(botFlags)
    .innerJoin(accounts, eq(accounts.id, botFlags.accountId))
    .where(eq(botFlags.eventId, eventId))
    .orderBy(desc(botFlags.createdAt))
    .limit(FLAGS_LISTED);
  return rows.map((r) => ({ ...r, detail: r.detail as Record<string, unknown>, createdAt: r.createdAt.toISOString() }));
}

/** How many accounts were flagged at an event. */
export async function countBotFlags(db: Db, eventId: string): Promise<number> {
  const [flags] = await db.select({ n: count() }).from(botFlags).where(eq(botFlags.eventId, eventId));
  return flags?.n ?? 0;
}
