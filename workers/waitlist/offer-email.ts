/** The email that tells a fan places are held for them off the waitlist. */
import { eq } from "drizzle-orm";
import { loadConfig } from "../../core/config";
import { accounts } from "../../core/db/schema";
import type { HoldView } from "../../core/holds/contract";
import { log } from "../../core/logger";
import { escapeHtml } from "../platform/html";
import { createMailer, type EmailMessage } from "../platform/mailer";
import type { WorkContext } from "../work-context";

/** Emails the fan their offer; a failed send is logged (the offer stands and shows in GET /waitlist). */
export async function notifyOffer(ctx: WorkContext, event: { id: string; name: string; currency: string }, entry: { id: string; accountId: string }, hold: HoldView): Promise<void> {
  try {
    const [account] = await ctx.db.select({ email: accounts.email }).from(accounts).where(eq(accounts.id, entry.accountId));
    if (!account) return;
    const config = loadConfig(ctx.env);
    // Absolute: an email has no page to be relative to, and offers made by the cron have no request either.
    const message = offerEmail(account.email, event, hold, `${config.publicOrigin}/checkout.html?event=${event.id}&hold=${hold.holdId}`);
    await createMailer(config).sendEmail(message, { idempotencyKey: `waitlist-offer-${entry.id}` });
  } catch (error) {
    log.warn("waitlist_offer_email_failed", { entryId: entry.id, error: String(error) });
  }
}

/** The offer email: what is held, until when, and where to pay. */
export function offerEmail(to: string, event: { name: string; currency: string }, hold: HoldView, payLink: string): EmailMessage {
  const until = new Date(hold.expiresAt).toISOString().replace("T", " ").slice(0, 16) + " UTC";
  const places = [
    ...hold.seats.map((s) => `Section ${s.section}, Row ${s.row}, Seat ${s.seat}`),
    ...hold.generalAdmission.map((g) => `${g.quantity} x Section ${g.section} (general admission)`),
  ];
  const total = `${(hold.totalCents / 100).toFixed(2)} ${event.currency}`;
  const subject = `Your waitlist offer for ${event.name}: pay before ${until}`;
  const text = [
    `Places came back for ${event.name}, and we are holding them for you until ${until}:`,
    ...places.map((p) => `- ${p}`),
    `Total: ${total}`,
    "",
    `Pay here: ${payLink}`,
    "",
    "If you do not pay in time, they go to the next fan on the waitlist.",
  ].join("\n");
  const html = `<!doctype html>
<html lang="en"><body style="font-family:system-ui,sans-serif;color:#222">
<h1 style="font-size:1.3em">Your waitlist offer for ${escapeHtml(event.name)}</h1>
<p>We are holding these places for you until <strong>${escapeHtml(until)}</strong>:</p>
<ul>${places.map((p) => `<li>${escapeHtml(p)}</li>`).join("")}</ul>
<p>Total: ${escapeHtml(total)}</p>
<p><a href="${escapeHtml(payLink)}">Pay now</a></p>
<p>If you do not pay in time, they go to the next fan on the waitlist.</p>
</body></html>`;
  return { to, subject, text, html };
}
