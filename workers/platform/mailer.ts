/**
 * Sending email. Features depend on the `Mailer` interface; the one provider
 * implementation speaks Resend's HTTP API, a common shape for transactional
 * email:
 *
 *   POST {MAIL_API_URL}/emails
 *   Authorization: Bearer {MAIL_API_KEY}
 *   Idempotency-Key: <optional; a retry with the same key sends nothing new>
 *   { "from": MAIL_FROM, "to": ["fan@example.com"], "subject", "text", "html" }
 *   -> 200 { "id": "..." }
 *   -> 4xx/5xx { "statusCode", "name", "message" }
 *
 * Locally and in tests `MAIL_API_URL` points at `dev/mail-outbox.ts`, which
 * speaks the same API and keeps the emails for developers and tests to read.
 */
import { z } from "zod";
import type { Config } from "../../core/config";

/** One email to one recipient, with a plain-text and an HTML body. */
export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** Sends email; throws `MailError` when the provider did not accept it. */
export interface Mailer {
  sendEmail(message: EmailMessage, options?: { idempotencyKey?: string }): Promise<{ id: string }>;
}

/**
 * The provider did not accept an email, or could not be reached. `retryable`:
 * a later attempt may succeed (5xx, 429, timeouts, network errors); otherwise
 * the request itself was refused (bad key, bad address, ...).
 */
export class MailError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "MailError";
  }
}

/** How long one send may take before it counts as failed. */
export const MAIL_TIMEOUT_MS = 10_000;

const acceptedSchema = z.object({ id: z.string().min(1) });
const refusalSchema = z.object({ name: z.string().optional(), message: z.string().optional() });

/** A mailer for the configured provider. */
export function createMailer(config: Pick<Config, "mailApiUrl" | "mailApiKey" | "mailFrom">, options: { timeoutMs?: number } = {}): Mailer {
  const endpoint = `${config.mailApiUrl.replace(/\/+$/, "")}/emails`;
  const timeoutMs = options.timeoutMs ?? MAIL_TIMEOUT_MS;
  return {
    async sendEmail(message, sendOptions = {}) {
      const headers: Record<string, string> = { Authorization: `Bearer ${config.mailApiKey}`, "Content-Type": "application/json" };
      if (sendOptions.idempotencyKey) headers["Idempotency-Key"] = sendOptions.idempotencyKey;
      const body = JSON.stringify({ from: config.mailFrom, to: [message.to], subject: message.subject, text: message.text, html: message.html });
      let response: Response;
      try {
        response = await fetch(endpoint, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) });
      } catch (error) {
        const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
        throw new MailError(timedOut ? `mail provider did not answer within ${timeoutMs} ms` : `mail provider unreachable: ${String(error)}`, undefined, true);
      }
      const json: unknown = await response.json().catch(() => undefined);
      if (response.ok) {
        const accepted = acceptedSchema.safeParse(json);
        if (accepted.success) return { id: accepted.data.id };
        throw new MailError(`mail provider answered ${response.status} without an email id`, response.status, true);
      }
      const refusal = refusalSchema.safeParse(json);
      const reason = refusal.success ? [refusal.data.name, refusal.data.message].filter(Boolean).join(": ") : "";
      throw new MailError(`mail provider refused the email (${response.status}${reason ? `, ${reason}` : ""})`, response.status, response.status >= 500 || response.status === 429);
    },
  };
}
