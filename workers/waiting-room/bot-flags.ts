/** The accounts bot defense flagged in an event's lobby (waiting-room/bot-defense.ts writes them), for the organizer, and the organizer's decisions on them. */
import { and, count, desc, eq } from "drizzle-orm";
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
  /** The organizer's decision on the account (null: none yet). */
  decision: "clear" | "confirm" | null;
  decidedAt: string | null;
  createdAt: string;
}

/** An event's flags, newest first. */
export async function listBotFlags(db: Db, eventId: string): Promise<BotFlagView[]> {
  const rows = await db
    .select({ accountId: botFlags.accountId, email: accounts.email, reason: botFlags.reason, deprioritized: botFlags.deprioritized, detail: botFlags.detail, decision: botFlags.decision, decidedAt: botFlags.decidedAt, createdAt: botFlags.createdAt })
    .from(botFlags)
    .innerJoin(accounts, eq(accounts.id, botFlags.accountId))
    .where(eq(botFlags.eventId, eventId))
    .orderBy(desc(botFlags.createdAt))
    .limit(FLAGS_LISTED);
  return rows.map((r) => ({ ...r, detail: r.detail as Record<string, unknown>, decidedAt: r.decidedAt?.toISOString() ?? null, createdAt: r.createdAt.toISOString() }));
}

/** How many accounts were flagged at an event. */
export async function countBotFlags(db: Db, eventId: string): Promise<number> {
  const [flags] = await db.select({ n: count() }).from(botFlags).where(eq(botFlags.eventId, eventId));
  return flags?.n ?? 0;
}

/** The account's decision at the event, or undefined when it was never flagged there. */
export async function botFlagDecision(db: Db, eventId: string, accountId: string): Promise<{ decision: "clear" | "confirm" | null } | undefined> {
  const [row] = await db.select({ decision: botFlags.decision }).from(botFlags).where(and(eq(botFlags.eventId, eventId), eq(botFlags.accountId, accountId))).limit(1);
  return row;
}

/** Records the organizer's decision on every flag of the account at the event. */
export async function recordBotFlagDecision(db: Db, eventId: string, accountId: string, decision: "clear" | "confirm", at: Date): Promise<void> {
  await db.update(botFlags).set({ decision, decidedAt: at }).where(and(eq(botFlags.eventId, eventId), eq(botFlags.accountId, accountId)));
}
