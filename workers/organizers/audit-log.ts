/**
 * The organizers' audit log: one row per admin write, appended in the same
 * Postgres transaction as the change it records when the change is a Postgres
 * write (`auditedChange`), or right after it otherwise (`appendAudit`).
 */
import { and, desc, eq, gte, lt, type SQL } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { organizerAuditLog } from "../../core/db/schema";

/** Who made a change and through which route: the key (id and name) and the route as the admin OpenAPI document names it. */
export interface AuditActor {
  organizerId: string;
  apiKey: { id: string; name: string };
  /** `PATCH /events/{id}`. */
  operation: string;
}

/** What a change did: its target, the event concerned, and the target before and after. */
export interface AuditRecord {
  targetId: string | null;
  eventId?: string | null;
  before?: unknown;
  after?: unknown;
}

const SECRET_FIELD = /secret|password|^token$|apikey|keyhash|authorization/i;

/** `value` as JSON with every field whose name smells of a secret replaced, at any depth. */
export function redactSecrets(value: unknown): unknown {
  if (value === undefined) return null;
  const json: unknown = JSON.parse(JSON.stringify(value));
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node !== "object" || node === null) return node;
    return Object.fromEntries(Object.entries(node).map(([field, inner]) => [field, SECRET_FIELD.test(field) ? "[redacted]" : walk(inner)]));
  };
  return walk(json);
}

/** Appends one audit row (on `db`, which may be the change's own transaction). */
export async function appendAudit(db: Db, actor: AuditActor, record: AuditRecord): Promise<void> {
  await db.insert(organizerAuditLog).values({
    organizerId: actor.organizerId,
    apiKeyId: actor.apiKey.id,
    apiKeyName: actor.apiKey.name,
    action: actor.operation,
    targetId: record.targetId,
    eventId: record.eventId ?? null,
    before: redactSecrets(record.before),
    after: redactSecrets(record.after),
    // The Worker's clock, as every other time the admin API writes (tests control it).
    createdAt: new Date(),
  });
}

/**
 * Runs a Postgres change in a transaction and appends its audit row in that
 * same transaction: both commit or neither does. `change` reads the target's
 * before inside the transaction and returns the result with its record.
 */
export function auditedChange<T>(db: Db, actor: AuditActor, change: (tx: Db) => Promise<{ result: T; audit: AuditRecord }>): Promise<T> {
  return db.transaction(async (tx) => {
    const { result, audit } = await change(tx);
    await appendAudit(tx, actor, audit);
    return result;
  });
}

/** An audit row as the API shows it. */
export interface AuditEntryView {
  id: number;
  apiKey: { id: string; name: string };
  action: string;
  targetId: string | null;
  eventId: string | null;
  before: unknown;
  after: unknown;
  createdAt: string;
}

/** The largest page of `GET /admin/audit-log`. */
export const MAX_AUDIT_PAGE = 200;

/** One page of an organizer's audit log, newest first, filtered by event, key and time; `nextCursor` continues it. */
export async function listAuditLog(
  db: Db,
  organizerId: string,
  query: { eventId?: string | undefined; apiKeyId?: string | undefined; since?: Date | undefined; limit: number; cursor?: number | undefined },
): Promise<{ entries: AuditEntryView[]; nextCursor: string | null }> {
  const conditions: SQL[] = [eq(organizerAuditLog.organizerId, organizerId)];
  if (query.eventId !== undefined) conditions.push(eq(organizerAuditLog.eventId, query.eventId));
  if (query.apiKeyId !== undefined) conditions.push(eq(organizerAuditLog.apiKeyId, query.apiKeyId));
  if (query.since !== undefined) conditions.push(gte(organizerAuditLog.createdAt, query.since));
  if (query.cursor !== undefined) conditions.push(lt(organizerAuditLog.id, query.cursor));
  const rows = await db
    .select()
    .from(organizerAuditLog)
    .where(and(...conditions))
    .orderBy(desc(organizerAuditLog.id))
    .limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    entries: page.map((row) => ({
      id: row.id,
      apiKey: { id: row.apiKeyId, name: row.apiKeyName },
      action: row.action,
      targetId: row.targetId,
      eventId: row.eventId,
      before: row.before,
      after: row.after,
      createdAt: row.createdAt.toISOString(),
    })),
    nextCursor: rows.length > query.limit && last ? String(last.id) : null,
  };
}
