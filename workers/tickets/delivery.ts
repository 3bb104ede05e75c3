/**
 * The ticket-delivery consumer: for each `{ kind: "delivery", orderId }` it
 * reads the order's tickets from Postgres, signs each ticket's compact code and sends
 * the holder one email with every ticket's QR code.
 *
 * It records on the order when it was done with it (`delivered_at`: emailed,
 * or nothing left to send), so a message delivered again after that sends
 * nothing more. A message that is not a delivery request is acknowledged and
 * logged (retrying cannot fix it); a failed send or read is retried with
 * exponential backoff (noted as `delivery_retry_at`), so after `max_retries`
 * the runtime moves it to the dead-letter queue.
 *
 * A delivery can still be lost between the sales consumer's write and its
 * message: an invocation that dies after marking the order queued and before
 * the send, or a queue that loses what it held (the local stack's, when
 * workerd is killed). The cron sweeps for those (`requeueLostDeliveries`):
 * orders queued more than LOST_AFTER ago, not done, and with no retry due.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import { loadConfig } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";
import { accounts, orders } from "../../core/db/schema";
import { ticketDeliverySchema, type TicketDelivery } from "../checkout/messages";
import { escapeHtml } from "../platform/html";
import { createMailer, type EmailMessage, type Mailer } from "../platform/mailer";
import { signCompactTicket } from "./compact-tickets";
import { findTickets, placeLabel, type IssuedTicket } from "./issued-tickets";
import { ticketQrPng } from "./qr-codes";
import { log } from "../../core/logger";

/** A delivery queued this long ago, neither done nor waiting for a retry, was lost: the cron queues it again. */
export const LOST_AFTER_SECONDS = 120;
/** Orders the sweep queues again per cron pass at most: one `sendBatch`, which Queues cap at 100 messages. */
export const REQUEUED_PER_PASS = 100;

/** Retry delay: 30 s doubling per attempt, capped at an hour (a mail provider outage of hours loses nothing). */
export function deliveryBackoffSeconds(attempts: number): number {
  return Math.min(3_600, 30 * 2 ** Math.max(0, attempts - 1));
}

/** What delivering one order came to. */
export type DeliveryOutcome =
  | { ok: true; emailId: string; ticketCount: number }
  /** Not there (yet): retried, and dead-lettered if it never appears. */
  | { ok: false; reason: "order_not_found" }
  /** Refunded or cancelled, or nothing left to admit: nothing to send. */
  | { ok: false; reason: "order_not_confirmed" | "no_tickets" }
  /** Emailed before (a message delivered twice, or queued again by the sweep): nothing more to send. */
  | { ok: false; reason: "already_delivered" };

interface DeliveryDeps {
  db: Db;
  mailer: Mailer;
  signingKey: string | undefined;
}

/** The `ticket-delivery` queue handler: one email per order, each message acknowledged or retried on its own. */
export async function handleDeliveryBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const config = loadConfig(env);
  const { db, close } = createDb(config);
  const deps: DeliveryDeps = { db, mailer: createMailer(config), signingKey: env.TOKEN_SIGNING_KEY };
  try {
    await Promise.all(batch.messages.map((message) => deliverMessage(deps, message)));
  } finally {
    await close();
  }
}

async function deliverMessage(deps: DeliveryDeps, message: Message<unknown>): Promise<void> {
  const parsed = ticketDeliverySchema.safeParse(message.body);
  if (!parsed.success) {
    log.error("delivery_message_invalid", { messageId: message.id, error: parsed.error.issues[0]?.message ?? "unreadable" });
    message.ack();
    return;
  }
  const { orderId } = parsed.data;
  let outcome: DeliveryOutcome;
  try {
    outcome = await deliverOrder(deps, orderId);
  } catch (error) {
    await retry(deps.db, message, orderId, String(error));
    return;
  }
  if (outcome.ok) {
    message.ack();
  } else if (outcome.reason === "order_not_found") {
    await retry(deps.db, message, orderId, "order not found");
  } else {
    if (outcome.reason !== "already_delivered") log.warn("delivery_skipped", { orderId, reason: outcome.reason });
    message.ack();
  }
}

async function retry(db: Db, message: Message<unknown>, orderId: string, error: string): Promise<void> {
  const delaySeconds = deliveryBackoffSeconds(message.attempts);
  log.warn("delivery_failed", { orderId, attempts: message.attempts, delaySeconds, error: error.slice(0, 500) });
  message.retry({ delaySeconds });
  // So the sweep waits for the retry (a minute's grace on top) instead of queueing the order again meanwhile. Best effort:
  // with Postgres down too, the sweep may queue it once more, and whichever message runs second sends nothing.
  await db
    .update(orders)
    .set({ deliveryRetryAt: sql`now() + make_interval(secs => ${delaySeconds + 60})` })
    .where(eq(orders.id, orderId))
    .catch((noted: unknown) => log.warn("delivery_retry_not_noted", { orderId, error: String(noted) }));
}


/** Emails an order's live tickets to its holder; throws when Postgres or the mail provider fails. */
export async function deliverOrder(deps: DeliveryDeps, orderId: string): Promise<DeliveryOutcome> {
  const [order] = await deps.db
    .select({ status: orders.status, email: accounts.email, deliveredAt: orders.deliveredAt })
    .from(orders)
    .innerJoin(accounts, eq(accounts.id, orders.accountId))
    .where(eq(orders.id, orderId));
  if (!order) return { ok: false, reason: "order_not_found" };
  if (order.deliveredAt) return { ok: false, reason: "already_delivered" };
  if (order.status !== "confirmed") return done(deps.db, orderId, { ok: false, reason: "order_not_confirmed" });
  const live = (await findTickets(deps.db, { orderId })).filter((ticket) => ticket.status !== "void");
  if (live.length === 0) return done(deps.db, orderId, { ok: false, reason: "no_tickets" });
  const signed = await Promise.all(live.map(async (ticket) => ({ ticket, token: await signCompactTicket(deps.signingKey, ticket) })));
  const { id } = await deps.mailer.sendEmail(ticketEmail(order.email, orderId, signed));
  return done(deps.db, orderId, { ok: true, emailId: id, ticketCount: live.length });
}

/** Records that the order needs no more delivery (if this write fails after the email went, the retry may send it again). */
async function done(db: Db, orderId: string, outcome: DeliveryOutcome): Promise<DeliveryOutcome> {
  await db.update(orders).set({ deliveredAt: sql`now()`, deliveryRetryAt: null }).where(and(eq(orders.id, orderId), isNull(orders.deliveredAt)));
  return outcome;
}

/** Where deliveries are queued (the DELIVERY_QUEUE binding). */
export interface DeliveryQueue {
  sendBatch(messages: Iterable<MessageSendRequest<TicketDelivery>>): Promise<unknown>;
}

/**
 * Queues again the deliveries that were lost: orders queued more than
 * LOST_AFTER_SECONDS ago (and within the last day), not done, with no retry
 * due. Each is marked queued now, so the next pass waits as long again.
 * Returns how many it queued.
 */
export async function requeueLostDeliveries(db: Db, queue: DeliveryQueue): Promise<number> {
  const lost = await db.execute<{ id: string }>(sql`
    update orders set delivery_queued_at = now()
    where id in (
      select id from orders
      where delivered_at is null and delivery_queued_at is not null
        and delivery_queued_at < now() - make_interval(secs => ${LOST_AFTER_SECONDS})
        and delivery_queued_at > now() - interval '1 day'
        and (delivery_retry_at is null or delivery_retry_at < now())
      order by delivery_queued_at
      limit ${REQUEUED_PER_PASS}
      for update skip locked
    )
    returning id`);
  if (lost.rows.length === 0) return 0;
  const bodies: TicketDelivery[] = lost.rows.map((row) => ({ kind: "delivery", orderId: row.id }));
  try {
    await queue.sendBatch(bodies.map((body) => ({ body })));
  } catch (error) {
    // Not queued after all: the next pass finds them again.
    await db.execute(sql`update orders set delivery_queued_at = now() - make_interval(secs => ${LOST_AFTER_SECONDS + 1}) where id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(lost.rows.map((row) => row.id))}::jsonb))`);
    throw error;
  }
  log.warn("deliveries_requeued", { count: bodies.length });
  return bodies.length;
}

/** The email: ticket ids and places in the text, one QR code per ticket in the HTML. */
export function ticketEmail(to: string, orderId: string, signed: { ticket: IssuedTicket; token: string }[]): EmailMessage {
  const first = signed[0]?.ticket;
  if (!first) throw new Error("a ticket email needs at least one ticket");
  const event = first.event;
  const when = `${formatDate(event.startsAt, event.timezone)} at ${event.venueName}`;
  const count = signed.length === 1 ? "ticket" : `${signed.length} tickets`;
  const subject = `Your ${count} for ${event.name}`;
  const text = [
    `Your ${count} for ${event.name}`,
    when,
    "",
    `Order ${orderId}`,
    ...signed.map(({ ticket }) => `Ticket ${ticket.id}: ${placeLabel(ticket.place)}`),
    "",
    "Show each ticket's QR code at the door: they are in this email's HTML version and under My tickets in the app. Each code admits once.",
  ].join("\n");
  const ticketsHtml = signed
    .map(({ ticket, token }) => {
      const label = escapeHtml(placeLabel(ticket.place));
      const qr = ticketQrPng(token);
      return `<div style="margin:1.5em 0">
<p style="margin:0 0 .5em"><strong>${label}</strong><br><small>Ticket ${escapeHtml(ticket.id)}</small></p>
<img src="${qr.dataUrl}" width="${qr.size}" height="${qr.size}" alt="QR code of ticket ${escapeHtml(ticket.id)} (${label})">
</div>`;
    })
    .join("\n");
  const html = `<!doctype html>
<html lang="en"><body style="font-family:system-ui,sans-serif;color:#222">
<h1 style="font-size:1.3em">Your ${escapeHtml(count)} for ${escapeHtml(event.name)}</h1>
<p>${escapeHtml(when)}<br><small>Order ${escapeHtml(orderId)}</small></p>
${ticketsHtml}
<p>Show each ticket's QR code at the door; each code admits once. Your tickets are also under My tickets in the app.</p>
</body></html>`;
  return { to, subject, text, html };
}

function formatDate(date: Date, timezone: string): string {
  try {
    return `${new Intl.DateTimeFormat("en-GB", { dateStyle: "full", timeStyle: "short", timeZone: timezone }).format(date)} (${timezone})`;
  } catch {
    return date.toISOString();
  }
}
