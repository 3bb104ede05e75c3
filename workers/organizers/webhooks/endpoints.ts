/**
 * Organizers' webhook endpoints and their delivery log: create (the secret
 * is shown once), list, update, delete, rotate the secret (the old one keeps
 * signing alongside for a grace period), read deliveries with their
 * attempts, and send a delivery again. Every function is scoped to the
 * organizer: another organizer's endpoint or delivery is a 404.
 */
import { and, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../../../core/db/client";
import { events, webhookAttempts, webhookDeliveries, webhookEndpoints } from "../../../core/db/schema";
import { invalidRequest, notFound } from "../../../core/errors";
import type { EmitContext, WebhookEventType } from "./emit";
import { queueDeliveries } from "./emit";
import { newWebhookSecret } from "./signing";
import { webhookUrlProblem, type WebhookUrlEnv, type WebhookUrlProblem } from "./urls";

/** How long a rotated-out secret keeps signing, so receivers can switch without missing a delivery. */
export const SECRET_ROTATION_GRACE_MS = 24 * 3_600_000;
/** The most endpoints one organizer may have. */
export const MAX_ENDPOINTS = 20;

/** An endpoint as the API shows it (never its secret). */
export interface EndpointView {
  id: string;
  url: string;
  eventTypes: WebhookEventType[];
  eventId: string | null;
  description: string;
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What an organizer sets on an endpoint. */
export interface EndpointInput {
  url: string;
  eventTypes: WebhookEventType[];
  eventId?: string | null | undefined;
  description?: string | undefined;
}

const PROBLEM_MESSAGES: Record<WebhookUrlProblem, string> = {
  not_a_url: "Invalid url: an absolute http(s) URL of at most 2048 characters is required.",
  https_required: "Invalid url: webhook endpoints must use https.",
  credentials_in_url: "Invalid url: it must not carry a user name or password.",
  private_address: "Invalid url: private, loopback, link-local and internal addresses are not allowed.",
};

type EndpointRow = typeof webhookEndpoints.$inferSelect;

function endpointView(row: EndpointRow): EndpointView {
  return {
    id: row.id,
    url: row.url,
    eventTypes: row.eventTypes as WebhookEventType[],
    eventId: row.eventId,
    description: row.description,
    previousSecretExpiresAt: row.previousSecret && row.previousSecretExpiresAt && row.previousSecretExpiresAt > new Date() ? row.previousSecretExpiresAt.toISOString() : null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Throws the 400 for a URL not allowed here, before anything is stored. */
function assertUrlAllowed(url: string, env: WebhookUrlEnv): void {
  const problem = webhookUrlProblem(url, env);
  if (problem) throw invalidRequest(PROBLEM_MESSAGES[problem], [{ path: "url", message: problem }]);
}

async function assertOwnEvent(db: Db, organizerId: string, eventId: string | null | undefined): Promise<void> {
  if (!eventId) return;
  const [row] = await db.select({ id: events.id }).from(events).where(and(eq(events.id, eventId), eq(events.organizerId, organizerId)));
  if (!row) throw notFound("Event");
}

/** Creates an endpoint; the secret is returned here and never again. */
export async function createEndpoint(db: Db, env: WebhookUrlEnv, organizerId: string, input: EndpointInput): Promise<{ endpoint: EndpointView; secret: string }> {
  assertUrlAllowed(input.url, env);
  await assertOwnEvent(db, organizerId, input.eventId);
  const count = await db.$count(webhookEndpoints, eq(webhookEndpoints.organizerId, organizerId));
  if (count >= MAX_ENDPOINTS) throw invalidRequest(`At most ${MAX_ENDPOINTS} webhook endpoints per organizer.`);
  const secret = newWebhookSecret();
  const [row] = await db
    .insert(webhookEndpoints)
    .values({ organizerId, url: input.url, eventTypes: [...new Set(input.eventTypes)], eventId: input.eventId ?? null, description: input.description ?? "", secret })
    .returning();
  if (!row) throw new Error("endpoint insert returned nothing");
  return { endpoint: endpointView(row), secret };
}

/** The organizer's endpoints, oldest first. */
export async function listEndpoints(db: Db, organizerId: string): Promise<EndpointView[]> {
  const rows = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.organizerId, organizerId)).orderBy(webhookEndpoints.createdAt, webhookEndpoints.id);
  return rows.map(endpointView);
}

async function ownEndpoint(db: Db, organizerId: string, endpointId: string): Promise<EndpointRow> {
  const [row] = await db.select().from(webhookEndpoints).where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.organizerId, organizerId)));
  if (!row) throw notFound("Webhook endpoint");
  return row;
}

/** One endpoint. */
export async function getEndpoint(db: Db, organizerId: string, endpointId: string): Promise<EndpointView> {
  return endpointView(await ownEndpoint(db, organizerId, endpointId));
}

/** Changes what is given of url, event types, event filter (null: every event) and description. */
export async function updateEndpoint(db: Db, env: WebhookUrlEnv, organizerId: string, endpointId: string, input: Partial<EndpointInput>): Promise<EndpointView> {
  if (input.url !== undefined) assertUrlAllowed(input.url, env);
  await ownEndpoint(db, organizerId, endpointId);
  await assertOwnEvent(db, organizerId, input.eventId);
  const [row] = await db
    .update(webhookEndpoints)
    .set({
      ...(input.url !== undefined ? { url: input.url } : {}),
      ...(input.eventTypes !== undefined ? { eventTypes: [...new Set(input.eventTypes)] } : {}),
      ...(input.eventId !== undefined ? { eventId: input.eventId } : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      updatedAt: new Date(),
    })
    .where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.organizerId, organizerId)))
    .returning();
  if (!row) throw notFound("Webhook endpoint");
  return endpointView(row);
}

/** Deletes an endpoint with its deliveries (messages still queued for it find nothing and stop). */
export async function deleteEndpoint(db: Db, organizerId: string, endpointId: string): Promise<void> {
  const deleted = await db
    .delete(webhookEndpoints)
    .where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.organizerId, organizerId)))
    .returning({ id: webhookEndpoints.id });
  if (deleted.length === 0) throw notFound("Webhook endpoint");
}

/** A new secret, returned once; the current one keeps signing (a second signature) for `SECRET_ROTATION_GRACE_MS`. */
export async function rotateSecret(db: Db, organizerId: string, endpointId: string): Promise<{ endpoint: EndpointView; secret: string }> {
  const secret = newWebhookSecret();
  const [row] = await db
    .update(webhookEndpoints)
    .set({ previousSecret: sql`${webhookEndpoints.secret}`, previousSecretExpiresAt: new Date(Date.now() + SECRET_ROTATION_GRACE_MS), secret, updatedAt: new Date() })
    .where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.organizerId, organizerId)))
    .returning();
  if (!row) throw notFound("Webhook endpoint");
  return { endpoint: endpointView(row), secret };
}

/** One try, as the log shows it. */
export interface AttemptView {
  attemptedAt: string;
  httpStatus: number | null;
  responseSnippet: string;
  error: string | null;
  durationMs: number;
}

/** A delivery with its attempts, oldest attempt first. */
export interface DeliveryView {
  id: string;
  endpointId: string;
  webhookId: string;
  eventType: string;
  status: "pending" | "delivered" | "dead";
  payload: unknown;
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
  attempts: AttemptView[];
}

/** Deliveries listed per page at most. */
export const MAX_DELIVERIES_PAGE = 100;

/** An endpoint's deliveries, newest first, `limit` per page; `cursor` (a delivery id of this endpoint) is the previous page's `nextCursor`. */
export async function listDeliveries(
  db: Db,
  organizerId: string,
  endpointId: string,
  page: { limit: number; cursor?: string | undefined; status?: DeliveryView["status"] | undefined },
): Promise<{ deliveries: DeliveryView[]; nextCursor: string | null }> {
  await ownEndpoint(db, organizerId, endpointId);
  const rows = await db
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.endpointId, endpointId),
        page.status ? eq(webhookDeliveries.status, page.status) : undefined,
        // The cursor is the last delivery shown: compared in Postgres, at its full (microsecond) precision.
        page.cursor
          ? sql`(${webhookDeliveries.createdAt}, ${webhookDeliveries.id}) < (select c.created_at, c.id from webhook_deliveries c where c.id = ${page.cursor})`
          : undefined,
      ),
    )
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(page.limit + 1);
  const shown = rows.slice(0, page.limit);
  const deliveries = await withAttempts(db, shown);
  const last = shown.at(-1);
  return { deliveries, nextCursor: rows.length > page.limit && last ? last.id : null };
}

type DeliveryRow = typeof webhookDeliveries.$inferSelect;

async function withAttempts(db: Db, rows: DeliveryRow[]): Promise<DeliveryView[]> {
  const attempts =
    rows.length === 0
      ? []
      : await db
          .select()
          .from(webhookAttempts)
          .where(
            inArray(
              webhookAttempts.deliveryId,
              rows.map((row) => row.id),
            ),
          )
          .orderBy(webhookAttempts.attemptedAt, webhookAttempts.id);
  return rows.map((row) => ({
    id: row.id,
    endpointId: row.endpointId,
    webhookId: row.webhookId,
    eventType: row.eventType,
    status: row.status,
    payload: row.payload,
    createdAt: row.createdAt.toISOString(),
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
    nextAttemptAt: row.nextAttemptAt?.toISOString() ?? null,
    attempts: attempts
      .filter((attempt) => attempt.deliveryId === row.id)
      .map((attempt) => ({
        attemptedAt: attempt.attemptedAt.toISOString(),
        httpStatus: attempt.httpStatus,
        responseSnippet: attempt.responseSnippet,
        error: attempt.error,
        durationMs: attempt.durationMs,
      })),
  }));
}

/** Sends a delivery again, whatever its state: pending again, a new message; its attempts so far stay in the log. */
export async function resendDelivery(ctx: EmitContext, organizerId: string, deliveryId: string): Promise<DeliveryView> {
  const updated = await ctx.db.execute<{ id: string }>(sql`
    update webhook_deliveries d set status = 'pending', next_attempt_at = null, queued_at = now()
    from webhook_endpoints e
    where d.id = ${deliveryId} and e.id = d.endpoint_id and e.organizer_id = ${organizerId}
    returning d.id`);
  if (updated.rows.length === 0) throw notFound("Webhook delivery");
  await queueDeliveries(ctx, [deliveryId]);
  const [row] = await ctx.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, deliveryId));
  if (!row) throw notFound("Webhook delivery");
  const [view] = await withAttempts(ctx.db, [row]);
  if (!view) throw notFound("Webhook delivery");
  return view;
}
