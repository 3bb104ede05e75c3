/**
 * The Postgres statements of the `EventInventory` object (run by
 * postgres-mirror.ts): the snapshot it is loaded (or rebuilt) from, and the
 * mirror of its holds that makes the rebuild possible.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";

/** An event's sale settings as the inventory needs them. */
export interface InventoryConfig {
  eventId: string;
  status: "draft" | "published" | "cancelled";
  saleStartsAt: number;
  saleEndsAt: number;
  holdTtlMs: number;
  purchaseLimit: number;
}

/** A seat with its labels and best-available data. */
export interface SnapshotSeat {
  seatIndex: number;
  sectionId: string;
  rowId: string;
  rowLabel: string;
  label: string;
  position: number;
  bestRank: number;
  priceTier: string;
}

/** A hold (live or confirmed) recovered from Postgres. */
export interface SnapshotHold {
  holdId: string;
  accountId: string;
  requestId: string;
  status: "live" | "confirmed";
  expiresAt: number;
  createdAt: number;
  seats: number[];
  ga: { sectionId: string; quantity: number }[];
  totalCents: number;
}

/** Everything needed to (re)build an event's inventory. */
export interface InventorySnapshot {
  config: InventoryConfig;
  prices: { priceTier: string; priceCents: number }[];
  sections: { sectionId: string; label: string; kind: "seated" | "general_admission"; priceTier: string | null; sortOrder: number; capacity: number }[];
  seats: SnapshotSeat[];
  holds: SnapshotHold[];
}

/** Reads an event's settings; undefined when the event does not exist. */
export async function loadInventoryConfig(db: Db, eventId: string): Promise<InventoryConfig | undefined> {
  const result = await db.execute<{ status: InventoryConfig["status"]; sale_starts_at: string; sale_end: string; hold_ttl_seconds: number; purchase_limit: number }>(sql`
    select status, sale_starts_at, coalesce(sale_ends_at, ends_at, starts_at) as sale_end, hold_ttl_seconds, purchase_limit
    from events where id = ${eventId}`);
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    eventId,
    status: row.status,
    saleStartsAt: Date.parse(row.sale_starts_at),
    saleEndsAt: Date.parse(row.sale_end),
    holdTtlMs: row.hold_ttl_seconds * 1000,
    purchaseLimit: row.purchase_limit,
  };
}

/**
 * Reads the whole snapshot: the chart, prices, and every hold that still
 * claims places (live and unexpired, or confirmed), plus sold tickets whose
 * hold never reached Postgres (each becomes a confirmed hold of its order).
 */
export async function loadInventorySnapshot(db: Db, eventId: string, now: number): Promise<InventorySnapshot | undefined> {
  const config = await loadInventoryConfig(db, eventId);
  if (!config) return undefined;
  const prices = await db.execute<{ price_tier: string; price_cents: number }>(sql`
    select price_tier, price_cents from event_price_tiers where event_id = ${eventId}`);
  const sections = await db.execute<{ id: string; label: string; kind: "seated" | "general_admission"; price_tier: string | null; sort_order: number; ga_capacity: number | null }>(sql`
    select s.id, s.label, s.kind, s.price_tier, s.sort_order, s.ga_capacity
    from sections s join events e on e.venue_id = s.venue_id where e.id = ${eventId} order by s.sort_order`);
  const seats = await db.execute<{ i: number; s: string; r: string; rl: string; l: string; p: number; b: number; t: string }>(sql`
    select st.seat_index as i, st.section_id as s, st.row_id as r, rw.label as rl, st.label as l, st.position as p, st.best_rank as b, st.price_tier as t
    from seats st join seat_rows rw on rw.id = st.row_id join events e on e.venue_id = st.venue_id
    where e.id = ${eventId} order by st.seat_index`);
  const holds = await db.execute<{ id: string; account_id: string; client_request_id: string; status: "live" | "confirmed"; expires_at: string; created_at: string; seats: number[] | null; ga: { sectionId: string; quantity: number }[] | null; total: number }>(sql`
    select h.id, h.account_id, h.client_request_id, h.status, h.expires_at, h.created_at,
           array_remove(array_agg(i.seat_index), null) as seats,
           jsonb_agg(jsonb_build_object('sectionId', i.section_id, 'quantity', i.quantity)) filter (where i.seat_index is null) as ga,
           coalesce(sum(i.price_cents * i.quantity), 0)::int as total
    from holds h join hold_items i on i.hold_id = h.id
    where h.event_id = ${eventId} and (h.status = 'confirmed' or (h.status = 'live' and h.expires_at > ${new Date(now).toISOString()}))
    group by h.id`);
  const orphanTickets = await db.execute<{ hold_id: string; account_id: string; created_at: string; seats: number[] | null; ga: { sectionId: string; quantity: number }[] | null; total: number }>(sql`
    select o.hold_id, o.account_id, o.created_at,
           array_remove(array_agg(t.seat_index), null) as seats,
           jsonb_agg(jsonb_build_object('sectionId', t.section_id, 'quantity', 1)) filter (where t.seat_index is null) as ga,
           sum(t.price_cents)::int as total
    from tickets t join orders o on o.id = t.order_id
    where t.event_id = ${eventId} and t.status <> 'void'
      and not exists (select 1 from holds h where h.id = o.hold_id and h.status = 'confirmed')
    group by o.hold_id, o.account_id, o.created_at`);
  return {
    config,
    prices: prices.rows.map((p) => ({ priceTier: p.price_tier, priceCents: p.price_cents })),
    sections: sections.rows.map((s) => ({
      sectionId: s.id,
      label: s.label,
      kind: s.kind,
      priceTier: s.price_tier,
      sortOrder: s.sort_order,
      capacity: s.ga_capacity ?? 0,
    })),
    seats: seats.rows.map((s) => ({ seatIndex: s.i, sectionId: s.s, rowId: s.r, rowLabel: s.rl, label: s.l, position: s.p, bestRank: s.b, priceTier: s.t })),
    holds: [
      ...holds.rows.map((h) => ({
        holdId: h.id,
        accountId: h.account_id,
        requestId: h.client_request_id,
        status: h.status,
        expiresAt: Date.parse(h.expires_at),
        createdAt: Date.parse(h.created_at),
        seats: h.seats ?? [],
        ga: mergeGa(h.ga ?? []),
        totalCents: h.total,
      })),
      ...orphanTickets.rows.map((t) => ({
        holdId: t.hold_id,
        accountId: t.account_id,
        requestId: `order:${t.hold_id}`,
        status: "confirmed" as const,
        expiresAt: Date.parse(t.created_at),
        createdAt: Date.parse(t.created_at),
        seats: t.seats ?? [],
        ga: mergeGa(t.ga ?? []),
        totalCents: t.total,
      })),
    ],
  };
}

function mergeGa(items: { sectionId: string; quantity: number }[]): { sectionId: string; quantity: number }[] {
  const totals = new Map<string, number>();
  for (const item of items) totals.set(item.sectionId, (totals.get(item.sectionId) ?? 0) + item.quantity);
  return [...totals].map(([sectionId, quantity]) => ({ sectionId, quantity }));
}

/** A hold's state as mirrored to Postgres. */
export interface MirroredHold {
  holdId: string;
  accountId: string;
  requestId: string;
  status: "live" | "confirmed" | "released" | "expired" | "refunded";
  expiresAt: number;
  createdAt: number;
  items: { seatIndex: number | null; sectionId: string; quantity: number; priceCents: number }[];
}

/**
 * Upserts holds into Postgres in one statement per table: a new hold gets its
 * items, an existing one only its status. Holds of accounts unknown to
 * Postgres are skipped (they cannot be confirmed there either).
 */
export async function mirrorHolds(db: Db, eventId: string, holds: MirroredHold[]): Promise<void> {
  if (holds.length === 0) return;
  const holdRows = JSON.stringify(
    holds.map((h) => ({ id: h.holdId, a: h.accountId, r: h.requestId, s: h.status, e: new Date(h.expiresAt).toISOString(), c: new Date(h.createdAt).toISOString() })),
  );
  const itemRows = JSON.stringify(
    holds.flatMap((h) => h.items.map((i) => ({ h: h.holdId, i: i.seatIndex, s: i.sectionId, q: i.quantity, p: i.priceCents }))),
  );
  await db.execute(sql`
    with upserted as (
      insert into holds (id, event_id, account_id, client_request_id, status, expires_at, created_at)
      select x.id, ${eventId}, x.a, x.r, x.s, x.e, x.c
      from jsonb_to_recordset(${holdRows}::jsonb) as x(id uuid, a uuid, r text, s text, e timestamptz, c timestamptz)
      where exists (select 1 from accounts where accounts.id = x.a)
      on conflict (id) do update set status = excluded.status, expires_at = excluded.expires_at, updated_at = now()
      returning id, (xmax = 0) as fresh
    )
    insert into hold_items (hold_id, event_id, seat_index, section_id, quantity, price_cents)
    select i.h, ${eventId}, i.i, i.s, i.q, i.p
    from jsonb_to_recordset(${itemRows}::jsonb) as i(h uuid, i int, s uuid, q int, p int)
    join upserted on upserted.id = i.h and upserted.fresh`);
}

/**
 * After a rebuild from the snapshot taken at `snapshotAt`: holds Postgres
 * still shows live whose time had run out by then were not loaded (a lapsed
 * hold claims nothing), so no object will ever expire them. They lapsed
 * before the loss, and the alarm that would have told Postgres went with the
 * storage: marked expired here, as that alarm would have. Returns how many.
 */
export async function expireUnloadedHolds(db: Db, eventId: string, snapshotAt: number): Promise<number> {
  const expired = await db.execute(sql`
    update holds set status = 'expired', updated_at = now()
    where event_id = ${eventId} and status = 'live' and expires_at <= ${new Date(snapshotAt).toISOString()}
    returning 1`);
  return expired.rows.length;
}

/** Records in Postgres that the event's inventory now lives in its object. */
export async function markInventoryPrepared(db: Db, eventId: string): Promise<void> {
  await db.execute(sql`update events set inventory_prepared_at = coalesce(inventory_prepared_at, now()) where id = ${eventId}`);
}
