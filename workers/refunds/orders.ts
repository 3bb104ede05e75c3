/** An event's orders as its organizer sees them: one page at a time, newest first. */
import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { invalidRequest, notFound } from "../../core/errors";
import { assertOrganizersEvent } from "../events/events";

/** An order as the organizer sees it. */
export interface OrderView {
  orderId: string;
  eventId: string;
  holdId: string;
  accountId: string;
  email: string;
  status: (typeof ORDER_STATUSES)[number];
  totalCents: number;
  currency: string;
  /** Refunded so far: the whole total once refunded or cancelled, less after a partial refund made at the gateway. */
  refundedCents: number;
  /** The cardholder's dispute of the charge, as the gateway last told it; null if never disputed. */
  dispute: { reason: string; status: string } | null;
  /** Tickets not void. */
  liveTickets: number;
  createdAt: string;
}

/** Orders listed per page at most. */
export const MAX_ORDERS_PAGE = 100;

/** The longest search accepted: an email address at most (RFC 5321). */
export const MAX_ORDER_SEARCH = 254;

/**
 * One page of an event's orders, newest first (404 for another organizer's
 * event). `cursor` is the `nextCursor` of the previous page. `q` narrows
 * them to one buyer's email (case-insensitive) or to an order id prefix.
 */
export async function listOrders(
  db: Db,
  input: { organizerId: string; eventId: string; limit: number; cursor?: string | undefined; status?: OrderView["status"] | undefined; q?: string | undefined },
): Promise<{ orders: OrderView[]; nextCursor: string | null }> {
  await assertOrganizersEvent(db, input.organizerId, input.eventId);
  const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
  const conditions = [sql`o.event_id = ${input.eventId}`];
  if (input.status !== undefined) conditions.push(sql`o.status = ${input.status}`);
  if (input.q !== undefined) conditions.push(searchCondition(input.q));
  if (after) conditions.push(sql`(${createdMicros}, o.id) < (${after.micros}::bigint, ${after.id}::uuid)`);
  const rows = await selectOrders(db, sql.join(conditions, sql` and `), input.limit + 1);
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return { orders: page.map((r) => r.view), nextCursor: rows.length > input.limit && last ? encodeCursor(last.micros, last.view.orderId) : null };
}

/** One order as the organizer sees it (it must exist). */
export async function orderView(db: Db, orderId: string): Promise<OrderView> {
  const [row] = await selectOrders(db, sql`o.id = ${orderId}`, 1);
  if (!row) throw notFound("Order");
  return row.view;
}

/** An email (it has an @) matches its buyer whatever the case; hex digits and dashes match the start of an order id. */
function searchCondition(q: string): SQL {
  if (q.includes("@")) return sql`lower(a.email) = ${q.toLowerCase()}`;
  if (/^[0-9a-f-]{1,36}$/i.test(q)) return sql`o.id::text like ${`${q.toLowerCase()}%`}`;
  throw invalidRequest("Search by a buyer's email or the start of an order id.");
}

const createdMicros = sql`(extract(epoch from o.created_at) * 1000000)::bigint`;

async function selectOrders(db: Db, where: SQL, limit: number): Promise<{ view: OrderView; micros: string }[]> {
  const rows = await db.execute<{
    id: string;
    event_id: string;
    hold_id: string;
    account_id: string;
    email: string;
    status: OrderView["status"];
    total_cents: number;
    currency: string;
    refunded_cents: number;
    dispute_reason: string | null;
    dispute_status: string | null;
    live_tickets: number;
    created_at: string;
    micros: string;
  }>(sql`
    select o.id, o.event_id, o.hold_id, o.account_id, a.email, o.status, o.total_cents, o.currency,
           o.refunded_cents, o.dispute_reason, o.dispute_status,
           (select count(*) from tickets t where t.order_id = o.id and t.status <> 'void')::int as live_tickets,
           o.created_at, ${createdMicros}::text as micros
    from orders o join accounts a on a.id = o.account_id
    where ${where}
    order by o.created_at desc, o.id desc
    limit ${limit}`);
  return rows.rows.map((r) => ({
    micros: r.micros,
    view: {
      orderId: r.id,
      eventId: r.event_id,
      holdId: r.hold_id,
      accountId: r.account_id,
      email: r.email,
      status: r.status,
      totalCents: r.total_cents,
      currency: r.currency,
      refundedCents: r.refunded_cents,
      dispute: r.dispute_status === null ? null : { reason: r.dispute_reason ?? "general", status: r.dispute_status },
      liveTickets: r.live_tickets,
      createdAt: new Date(r.created_at).toISOString(),
    },
  }));
}

function encodeCursor(micros: string, orderId: string): string {
  return btoa(`${micros}.${orderId}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string): { micros: string; id: string } {
  let decoded = "";
  try {
    decoded = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    // falls through to the refusal below
  }
  const match = /^(\d{1,20})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(decoded);
  if (!match?.[1] || !match[2]) throw invalidRequest("That cursor is not one this API gave out.");
  return { micros: match[1], id: match[2] };
}

/** Statuses an order list may be filtered by. */
export const ORDER_STATUSES = ["confirmed", "refunded", "cancelled", "disputed"] as const;
