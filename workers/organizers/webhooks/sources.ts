/**
 * The organizer events each source change emits, built from its committed
 * rows: one function per call site, each a single `emitOrganizerEvents`.
 * Payloads carry ids and amounts, no fan's personal data (the orders API
 * has it for whoever holds a key).
 */
import { sql } from "drizzle-orm";
import type { IssuedTicket } from "../../tickets/issued-tickets";
import { emitFromQuery, emitOrganizerEvents, type EmitContext } from "./emit";

/**
 * After a sales batch is written: `order.created` for each order of these
 * holds, and `event.sold_out` for each of their events with no place left
 * (once per sell-out: the source is the event at its count of tickets ever
 * issued, which a redelivered batch does not change and a new sell-out
 * after returns does).
 */
export async function emitSalesEvents(ctx: EmitContext, holdIds: string[]): Promise<number> {
  if (holdIds.length === 0) return 0;
  return emitFromQuery(
    ctx,
    sql`
      with placed as (
        select o.* from orders o
        where o.hold_id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(holdIds)}::jsonb))
      ),
      -- Counting an event's tickets only for organizers listening for sell-outs.
      listening as (
        select ev.id, v.capacity from events ev join venues v on v.id = ev.venue_id
        where ev.id in (select distinct event_id from placed)
          and exists (select 1 from webhook_endpoints e where e.organizer_id = ev.organizer_id and 'event.sold_out' = any(e.event_types))
      ),
      sold_out as (
        select l.id, l.capacity, count(*) as issued, count(*) filter (where t.status <> 'void') as live
        from listening l join tickets t on t.event_id = l.id
        group by l.id, l.capacity
      )
      select 'order.created' as type, p.event_id, p.id::text as source_id,
             jsonb_build_object('orderId', p.id, 'eventId', p.event_id, 'holdId', p.hold_id, 'totalCents', p.total_cents, 'currency', p.currency,
                                'tickets', (select count(*) from tickets t where t.order_id = p.id), 'createdAt', p.created_at) as data
      from placed p
      union all
      select 'event.sold_out', s.id, s.id || ':' || s.issued, jsonb_build_object('eventId', s.id, 'capacity', s.capacity)
      from sold_out s where s.live >= s.capacity`,
  );
}

/** After an order is refunded (and whenever a refund call finds it refunded: a retry sends what a failed emit did not). */
export async function emitOrderRefunded(ctx: EmitContext, order: { orderId: string; eventId: string; totalCents: number; currency: string }): Promise<number> {
  return emitOrganizerEvents(ctx, [
    { type: "order.refunded", eventId: order.eventId, sourceId: order.orderId, data: { orderId: order.orderId, eventId: order.eventId, totalCents: order.totalCents, currency: order.currency } },
  ]);
}

/** After a ticket is checked in (and on a later scan of it, for the same reason). */
export async function emitTicketCheckedIn(ctx: EmitContext, ticket: Pick<IssuedTicket, "id" | "orderId" | "eventId" | "checkedInAt">): Promise<number> {
  return emitOrganizerEvents(ctx, [
    {
      type: "ticket.checked_in",
      eventId: ticket.eventId,
      sourceId: ticket.id,
      data: { ticketId: ticket.id, orderId: ticket.orderId, eventId: ticket.eventId, checkedInAt: ticket.checkedInAt?.toISOString() ?? null },
    },
  ]);
}

/** After an event is cancelled (every cancellation call: the first one's emit counts). */
export async function emitEventCancelled(ctx: EmitContext, eventId: string): Promise<number> {
  return emitOrganizerEvents(ctx, [{ type: "event.cancelled", eventId, sourceId: eventId, data: { eventId } }]);
}
