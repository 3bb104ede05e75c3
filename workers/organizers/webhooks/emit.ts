/**
 * Emitting organizer events: one call per source change, after its
 * Postgres commit. Each notification becomes a delivery row for every
 * endpoint of the event's organizer that subscribes to its type (and to
 * that event, when the endpoint filters), keyed by a `webhook-id` derived
 * from the source row: emitting the same source again (a redelivered sales
 * batch, a retried refund) inserts nothing and sends nothing. A delivery is
 * marked queued in the same statement and unmarked when the send fails, so
 * emitting again sends what was not sent.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../../../core/db/client";
import type { WEBHOOK_EVENT_TYPES } from "../../../core/db/schema";
import type { WebhookMessage } from "./messages";

/** One of the event types endpoints subscribe to. */
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What emitting needs: Postgres and the webhooks queue. */
export interface EmitContext {
  db: Db;
  env: Pick<Env, "WEBHOOK_QUEUE">;
}

/** One thing that happened at an event, for the organizer's endpoints. */
export interface OrganizerEvent {
  type: WebhookEventType;
  eventId: string;
  /** The source row (an order, a ticket, the event): the same source is delivered once. */
  sourceId: string;
  data: Record<string, unknown>;
}

/** The most messages one `sendBatch` takes. */
const SEND_BATCH = 100;

/** Records and queues `notifications` for every subscribed endpoint; returns the deliveries queued now. */
export async function emitOrganizerEvents(ctx: EmitContext, notifications: OrganizerEvent[]): Promise<number> {
  if (notifications.length === 0) return 0;
  return emitFromQuery(
    ctx,
    sql`select x.type, x."eventId" as event_id, x."sourceId" as source_id, x.data
        from jsonb_to_recordset(${JSON.stringify(notifications)}::jsonb) as x(type text, "eventId" uuid, "sourceId" text, data jsonb)`,
  );
}

/**
 * `emitOrganizerEvents` for notifications a query finds (columns `type`,
 * `event_id`, `source_id`, `data`), in the same statement: one round trip
 * whatever the count, and nothing to read back when no endpoint listens.
 */
export async function emitFromQuery(ctx: EmitContext, notifications: SQL): Promise<number> {
  const occurredAt = new Date().toISOString();
  const rows = await ctx.db.execute<{ id: string }>(sql`
    with n as (${notifications})
    insert into webhook_deliveries (endpoint_id, webhook_id, event_type, payload, queued_at)
    select e.id,
           'msg_' || substr(encode(sha256(convert_to(n.type || ':' || n.source_id, 'UTF8')), 'hex'), 1, 32),
           n.type,
           jsonb_build_object('type', n.type, 'timestamp', ${occurredAt}::text, 'data', n.data),
           now()
    from n
    join events ev on ev.id = n.event_id
    join webhook_endpoints e on e.organizer_id = ev.organizer_id and n.type = any(e.event_types) and (e.event_id is null or e.event_id = ev.id)
    order by e.id
    on conflict (endpoint_id, webhook_id) do update set queued_at = now() where webhook_deliveries.queued_at is null
    returning webhook_deliveries.id`);
  await queueDeliveries(ctx, rows.rows.map((row) => row.id));
  return rows.rows.length;
}

/** Sends a message per delivery; when a send fails, unmarks what it did not send and throws. */
export async function queueDeliveries(ctx: EmitContext, deliveryIds: string[]): Promise<void> {
  for (let start = 0; start < deliveryIds.length; start += SEND_BATCH) {
    const chunk = deliveryIds.slice(start, start + SEND_BATCH);
    try {
      await ctx.env.WEBHOOK_QUEUE.sendBatch(chunk.map((deliveryId) => ({ body: { kind: "webhook", deliveryId } satisfies WebhookMessage })));
    } catch (error) {
      const unsent = deliveryIds.slice(start);
      await ctx.db.execute(sql`update webhook_deliveries set queued_at = null where id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(unsent)}::jsonb))`);
      throw error;
    }
  }
}
