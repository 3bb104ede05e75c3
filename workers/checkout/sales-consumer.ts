/**
 * The confirmed-sales consumer: writes each batch of sales to Postgres as
 * orders, tickets and payment links in one SQL statement (one round trip,
 * atomic on its own), then queues ticket delivery. Every write is idempotent
 * (one order per hold, deterministic ticket ids), so redelivery after a crash
 * or a Postgres outage changes nothing twice. Messages that cannot be
 * processed go to the dead-letter queue after their retries, where they are
 * kept.
 */
import { sql } from "drizzle-orm";
import { loadConfig, type ConfigEnv } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";
import { confirmedSaleSchema, ticketDeliverySchema, type ConfirmedSale, type TicketDelivery } from "./messages";
import { log } from "../../core/logger";
import { emitSalesEvents } from "../organizers/webhooks/sources";

/** After this many deliveries a failing message is dead-lettered (matches wrangler.toml's max_retries). */
export const MAX_SALE_ATTEMPTS = 10;

/** A dead-lettered message as the DLQ stores it. */
export interface DeadLetter {
  queue: string;
  messageId: string;
  body: unknown;
  error: string;
}

/** Retry delay: exponential, capped at a minute (Postgres down for a minute loses nothing). */
export function backoffSeconds(attempts: number): number {
  return Math.min(60, 2 ** Math.max(0, attempts - 1));
}

/**
 * The id of a sale's `index`th ticket (counting its places in item order):
 * a UUID (version 5 bits) from SHA-256 of `ticket:<holdId>:<index>`, so the
 * same sale always yields the same tickets. `writeSales` derives it in SQL,
 * where it costs a microsecond instead of an awaited WebCrypto call; this is
 * its definition, which the tests hold the SQL to.
 */
export async function ticketId(holdId: string, index: number): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`ticket:${holdId}:${index}`))).slice(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Writes sales to Postgres; returns the orders whose delivery still has to be
 * queued. One statement does it all, so a batch costs one round trip after
 * the connection's start-up, and commits or fails whole:
 *
 * - `created`: an order per hold not yet written, marked as queued for delivery;
 * - `placed`: those and the orders earlier deliveries wrote (the statement's
 *   snapshot does not see its own inserts, so the two never overlap);
 * - `ticketed`: each order's tickets, one per place, ids as `ticketId`;
 * - `linked`: each sale's payment row, linked to its order once;
 * - `requeued`: earlier orders whose delivery mark was cleared because
 *   queueing it failed.
 *
 * A hold a concurrent invocation writes and commits while this one runs is
 * skipped by `created` and unseen by `placed`: that invocation wrote all of
 * it, and this one writes nothing for it. Orders are inserted in hold order,
 * so two invocations with overlapping batches wait for each other's holds in
 * the same order instead of deadlocking.
 */
export async function writeSales(db: Db, sales: ConfirmedSale[]): Promise<TicketDelivery[]> {
  const unique = [...new Map(sales.map((s) => [s.holdId, s])).values()];
  const result = await db.execute<{ id: string }>(sql`
    with sale as (
      select x."holdId" as hold_key, x."holdId"::uuid as hold_id, x."eventId" as event_id, x."accountId" as account_id,
             x."paymentId" as payment_id, x."amountCents" as total_cents, x.currency, x.items
      from jsonb_to_recordset(${JSON.stringify(unique)}::jsonb)
        as x("holdId" text, "eventId" uuid, "accountId" uuid, "paymentId" uuid, "amountCents" int, currency text, items jsonb)
    ),
    created as (
      insert into orders (hold_id, event_id, account_id, total_cents, currency, delivery_queued_at)
      select hold_id, event_id, account_id, total_cents, currency, now() from sale order by hold_id
      on conflict (hold_id) do nothing
      returning id, hold_id
    ),
    earlier as (
      select id, hold_id from orders where hold_id = any(array(select hold_id from sale))
    ),
    placed as (
      select s.*, o.id as order_id
      from sale s
      join (select id, hold_id from created union all select id, hold_id from earlier) o on o.hold_id = s.hold_id
    ),
    ticketed as (
      insert into tickets (id, order_id, event_id, account_id, seat_index, section_id, price_cents)
      select encode(set_byte(set_byte(substring(h.digest from 1 for 16), 6, (get_byte(h.digest, 6) & 15) | 80), 8, (get_byte(h.digest, 8) & 63) | 128), 'hex')::uuid,
             p.order_id, p.event_id, p.account_id, place.seat_index,
             coalesce(place.section_id, (select st.section_id from seats st where st.venue_id = ev.venue_id and st.seat_index = place.seat_index)),
             place.price_cents
      from placed p
      join events ev on ev.id = p.event_id
      cross join lateral (
        select item."seatIndex" as seat_index, item."sectionId" as section_id, item."priceCents" as price_cents,
               row_number() over (order by item.n, unit) - 1 as index
        from rows from (jsonb_to_recordset(p.items) as ("seatIndex" int, "sectionId" uuid, quantity int, "priceCents" int))
          with ordinality as item("seatIndex", "sectionId", quantity, "priceCents", n)
        cross join generate_series(1, item.quantity) as unit
      ) place
      cross join lateral (select sha256(convert_to('ticket:' || p.hold_key || ':' || place.index, 'UTF8')) as digest) h
      on conflict (id) do nothing
    ),
    linked as (
      update payments pay set order_id = p.order_id, updated_at = now()
      from placed p
      where pay.id = p.payment_id and pay.hold_id = p.hold_id and pay.order_id is null
    ),
    requeued as (
      update orders set delivery_queued_at = now()
      where id = any(array(select id from earlier)) and delivery_queued_at is null
      returning id
    )
    select id from created union all select id from requeued`);
  return result.rows.map((row) => ({ kind: "delivery" as const, orderId: row.id }));
}

/** What the sales consumer needs of the Worker's env: its configuration and the queues it sends to. */
export type SalesConsumerEnv = ConfigEnv & Pick<Env, "DELIVERY_QUEUE" | "DEAD_LETTERS" | "WEBHOOK_QUEUE">;

/** A sale message and what it says. */
interface SaleMessage {
  message: Message<unknown>;
  sale: ConfirmedSale;
}

/**
 * The `ticket-sales` queue handler. Malformed messages and messages out of
 * retries go to the dead-letter queue at once; the rest are written in one
 * batch and acknowledged together. If Postgres refuses the batch, its sales
 * are written one at a time, so one it refuses (an unknown event, a seat
 * already ticketed) does not hold back the others; what still fails, or the
 * whole batch when Postgres cannot be reached, is retried with backoff.
 */
export async function handleSalesBatch(batch: MessageBatch<unknown>, env: SalesConsumerEnv): Promise<void> {
  const valid: SaleMessage[] = [];
  for (const message of batch.messages) {
    const parsed = confirmedSaleSchema.safeParse(message.body);
    if (parsed.success) valid.push({ message, sale: parsed.data });
    else await deadLetter(env, batch.queue, message, `invalid sale message: ${parsed.error.issues[0]?.message ?? "unreadable"}`);
  }
  if (valid.length === 0) return;
  const { db, close } = createDb(loadConfig(env));
  try {
    let failed: (SaleMessage & { error: unknown })[] = [];
    try {
      await writeAndAck(db, env, valid);
    } catch (error) {
      log.warn("sales_batch_failed", { size: valid.length, error: describeError(error) });
      failed = valid.length > 1 && refusedByPostgres(error) ? await writeOneByOne(db, env, valid) : valid.map((item) => ({ ...item, error }));
    }
    for (const { message, error } of failed) {
      if (message.attempts >= MAX_SALE_ATTEMPTS) await deadLetter(env, batch.queue, message, describeError(error));
      else message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    }
  } finally {
    await close();
  }
}

async function writeAndAck(db: Db, env: SalesConsumerEnv, items: SaleMessage[]): Promise<void> {
  const deliveries = await writeSales(db, items.map((item) => item.sale));
  if (deliveries.length > 0) {
    try {
      await env.DELIVERY_QUEUE.sendBatch(deliveries.map((body) => ({ body })));
    } catch (error) {
      // Not queued after all: clear the mark so the retried sale queues the delivery.
      await db.execute(sql`update orders set delivery_queued_at = null where id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(deliveries.map((d) => d.orderId))}::jsonb))`);
      throw error;
    }
  }
  // Organizer webhooks, keyed by order: a redelivered batch emits nothing twice.
  await emitSalesEvents({ db, env }, items.map((item) => item.sale.holdId));
  for (const { message } of items) message.ack();
}

/** Writes each sale on its own; returns those that failed. */
async function writeOneByOne(db: Db, env: SalesConsumerEnv, items: SaleMessage[]): Promise<(SaleMessage & { error: unknown })[]> {
  const failed: (SaleMessage & { error: unknown })[] = [];
  for (const item of items) {
    try {
      await writeAndAck(db, env, [item]);
    } catch (error) {
      failed.push({ ...item, error });
    }
  }
  return failed;
}

/** The SQLSTATE of a statement Postgres answered with an error (none for a lost connection). */
function sqlState(error: unknown): string | undefined {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if ("code" in cause && typeof cause.code === "string" && /^[0-9A-Z]{5}$/.test(cause.code)) return cause.code;
  }
  return undefined;
}

/** Postgres answered and refused the data, rather than being unreachable, shutting down or out of resources. */
function refusedByPostgres(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && !/^(08|53|57)/.test(state);
}

/** The root cause's message (not the failed query with every sale in it) and its SQLSTATE. */
function describeError(error: unknown): string {
  let root = error;
  while (root instanceof Error && root.cause instanceof Error) root = root.cause;
  const state = sqlState(error);
  return `${root instanceof Error ? root.message : String(root)}${state ? ` (SQLSTATE ${state})` : ""}`;
}

/** Sends a message to its queue's dead-letter queue and acknowledges it. */
async function deadLetter(env: Pick<Env, "DEAD_LETTERS">, queue: string, message: Message<unknown>, error: string): Promise<void> {
  const letter: DeadLetter = { queue, messageId: message.id, body: message.body, error: error.slice(0, 1000) };
  await env.DEAD_LETTERS.send(letter);
  message.ack();
}

/** The dead-letter queues' handler: keeps every message in Postgres for inspection and replay. */
export async function handleDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const { db, close } = createDb(loadConfig(env));
  try {
    const rows = batch.messages.map((m) => {
      // Our consumers wrap what they dead-letter; the runtime moves raw messages after max_retries.
      const letter = isDeadLetter(m.body) ? m.body : { queue: originalQueue(m.body), messageId: m.id, body: m.body, error: "exhausted retries" };
      return { q: letter.queue, m: letter.messageId, b: { body: letter.body, error: letter.error } };
    });
    await db.execute(sql`
      insert into dead_letters (queue, message_id, body)
      select x.q, x.m, x.b from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(q text, m text, b jsonb)
      on conflict (queue, message_id) do nothing`);
    for (const message of batch.messages) message.ack();
  } catch (error) {
    log.error("dead_letter_store_failed", { error: String(error) });
    for (const message of batch.messages) message.retry({ delaySeconds: backoffSeconds(message.attempts) });
  } finally {
    await close();
  }
}

function originalQueue(body: unknown): string {
  if (confirmedSaleSchema.safeParse(body).success) return "ticket-sales";
  if (ticketDeliverySchema.safeParse(body).success) return "ticket-delivery";
  return "unknown";
}

function isDeadLetter(body: unknown): body is DeadLetter {
  return typeof body === "object" && body !== null && "queue" in body && "messageId" in body && "body" in body && typeof body.queue === "string" && typeof body.messageId === "string";
}

/** Re-sends stored dead letters to their original queues (operators, after fixing the cause). */
export async function replayDeadLetters(db: Db, env: Env, limit = 500): Promise<{ replayed: number }> {
  const letters = await db.execute<{ id: string; queue: string; body: { body: unknown } }>(sql`
    select id, queue, body from dead_letters where replayed_at is null order by created_at limit ${limit}`);
  let replayed = 0;
  for (const letter of letters.rows) {
    const body = letter.body.body;
    if (letter.queue === "ticket-sales" && confirmedSaleSchema.safeParse(body).success) await env.SALES_QUEUE.send(body);
    else if (letter.queue === "ticket-delivery" && ticketDeliverySchema.safeParse(body).success) await env.DELIVERY_QUEUE.send(body);
    else continue; // unreadable: stays for a human
    await db.execute(sql`update dead_letters set replayed_at = now() where id = ${letter.id}`);
    replayed++;
  }
  return { replayed };
}
