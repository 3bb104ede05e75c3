/**
 * The ticket-delivery consumer: for each `{ kind: "delivery", orderId }` it
 * reads the order's tickets from Postgres, signs each ticket's compact code and sends
 * the holder one email with every ticket's QR code.
 *
 * It only reads: a redelivered message sends the email again and changes
 * nothing. A message that is not a delivery request is acknowledged and
 * logged (retrying cannot fix it); a failed send or read is retried with
 * exponential backoff, so after `max_retries` the runtime moves it to the
 * dead-letter queue.
 */
import { eq } from "drizzle-orm";
import { loadConfig } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";
import { accounts, orders } from "../../core/db/schema";
import { ticketDeliverySchema } from "../checkout/messages";
import { escapeHtml } from "../platform/html";
import { createMailer, type EmailMessage, type Mailer } from "../platform/mailer";
import { signCompactTicket } from "./compact-tickets";
import { findTickets, placeLabel, type IssuedTicket } from "./issued-tickets";
import { ticketQrPng } from "./qr-codes";
import { log } from "../../core/logger";

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
  | { ok: false; reason: "order_not_confirmed" | "no_tickets" };

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
    retry(message, orderId, String(error));
    return;
  }
  if (outcome.ok) {
    message.ack();
  } else if (outcome.reason === "order_not_found") {
    retry(message, orderId, "order not found");
  } else {
    log.warn("delivery_skipped", { orderId, reason: outcome.reason });
    message.ack();
  }
}

function retry(message: Message<unknown>, orderId: string, error: string): void {
  const delaySeconds = deliveryBackoffSeconds(message.attempts);
  log.warn("delivery_failed", { orderId, attempts: message.attempts, delaySeconds, error: error.slice(0, 500) });
  message.retry({ delaySeconds });
}


/** Emails an order's live tickets to its holder; throws when Postgres or the mail provider fails. */
export async function deliverOrder(deps: DeliveryDeps, orderId: string): Promise<DeliveryOutcome> {
  const [order] = await deps.db
    .select({ status: orders.status, email: accounts.email })
    .from(orders)
    .innerJoin(accounts, eq(accounts.id, orders.accountId))
    .where(eq(orders.id, orderId));
  if (!order) return { ok: false, reason: "order_not_found" };
  if (order.status !== "confirmed") return { ok: false, reason: "order_not_confirmed" };
  const live = (await findTickets(deps.db, { orderId })).filter((ticket) => ticket.status !== "void");
  if (live.length === 0) return { ok: false, reason: "no_tickets" };
  const signed = await Promise.all(live.map(async (ticket) => ({ ticket, token: await signCompactTicket(deps.signingKey, ticket) })));
  const { id } = await deps.mailer.sendEmail(ticketEmail(order.email, orderId, signed));
  return { ok: true, emailId: id, ticketCount: live.length };
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
