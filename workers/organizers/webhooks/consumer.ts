/**
 * The `organizer-webhooks` queue consumer: one POST per message to the
 * endpoint's URL, signed the Standard Webhooks way, each attempt kept in
 * Postgres. A 2xx delivers; anything else (another status, a redirect, no
 * answer within the timeout, a URL no longer allowed) is retried with
 * exponential backoff, and after the last attempt the message goes to the
 * dead-letter queue, whose consumer marks the delivery dead.
 */
import { sql } from "drizzle-orm";
import { loadConfig, type ConfigEnv } from "../../../core/config";
import { createDb, type Db } from "../../../core/db/client";
import { log } from "../../../core/logger";
import { webhookMessageSchema, type WebhookMessage } from "./messages";
import { signWebhook } from "./signing";
import { webhookUrlProblem, type WebhookUrlEnv } from "./urls";

/** Attempts per delivery (wrangler.toml's `max_retries` is one less). */
export const WEBHOOK_MAX_ATTEMPTS = 8;
/** How long a receiver has to answer. */
export const WEBHOOK_TIMEOUT_MS = 15_000;
/** How much of a receiver's answer the log keeps. */
export const RESPONSE_SNIPPET_CHARS = 500;

/** Seconds before attempt `attempts + 1`: 30 s, 2 min, 8 min, 32 min, ~2 h, ~8.5 h, then the queue's 12-hour cap. */
export function webhookBackoffSeconds(attempts: number): number {
  return Math.min(43_200, 30 * 4 ** Math.max(0, attempts - 1));
}

/** What the consumers need of the Worker's env. */
export type WebhookConsumerEnv = ConfigEnv & WebhookUrlEnv & Pick<Env, "WEBHOOK_DEAD_LETTERS">;

type DeliveryRow = {
  id: string;
  webhook_id: string;
  status: string;
  payload: unknown;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_valid: boolean;
};

/** What one attempt got. */
interface AttemptOutcome {
  ok: boolean;
  httpStatus: number | null;
  responseSnippet: string;
  error: string | null;
  durationMs: number;
}

/** The `organizer-webhooks` handler: attempts every message of the batch at once, on one db handle. */
export async function handleWebhookBatch(batch: MessageBatch<unknown>, env: WebhookConsumerEnv): Promise<void> {
  const { db, close } = createDb(loadConfig(env));
  try {
    await Promise.all(batch.messages.map((message) => attemptMessage(db, env, message)));
  } finally {
    await close();
  }
}

async function attemptMessage(db: Db, env: WebhookConsumerEnv, message: Message<unknown>): Promise<void> {
  const parsed = webhookMessageSchema.safeParse(message.body);
  if (!parsed.success) {
    log.error("webhook_message_invalid", { messageId: message.id });
    message.ack();
    return;
  }
  try {
    const found = await db.execute<DeliveryRow>(sql`
      select d.id, d.webhook_id, d.status, d.payload, e.url, e.secret, e.previous_secret,
             coalesce(e.previous_secret_expires_at > now(), false) as previous_secret_valid
      from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
      where d.id = ${parsed.data.deliveryId}`);
    const delivery = found.rows[0];
    // Deleted with its endpoint, or already delivered or dead: nothing to send.
    if (!delivery || delivery.status !== "pending") {
      message.ack();
      return;
    }
    const outcome = await post(env, delivery);
    const last = message.attempts >= WEBHOOK_MAX_ATTEMPTS;
    const delay = outcome.ok || last ? null : webhookBackoffSeconds(message.attempts);
    await db.execute(sql`
      with attempt as (
        insert into webhook_attempts (delivery_id, http_status, response_snippet, error, duration_ms)
        values (${delivery.id}, ${outcome.httpStatus}, ${outcome.responseSnippet}, ${outcome.error}, ${outcome.durationMs})
      )
      update webhook_deliveries set
        attempts = attempts + 1,
        status = case when ${outcome.ok} then 'delivered' else status end,
        delivered_at = case when ${outcome.ok} then now() else delivered_at end,
        next_attempt_at = case when ${delay}::int is null then null else now() + make_interval(secs => ${delay}::int) end
      where id = ${delivery.id}`);
    if (outcome.ok) message.ack();
    else if (delay === null) await deadLetter(env, message, parsed.data);
    else message.retry({ delaySeconds: delay });
  } catch (error) {
    // Postgres unreachable: try the message again later, as an attempt of its own.
    log.error("webhook_attempt_failed", { deliveryId: parsed.data.deliveryId, error: String(error) });
    if (message.attempts >= WEBHOOK_MAX_ATTEMPTS) await deadLetter(env, message, parsed.data);
    else message.retry({ delaySeconds: webhookBackoffSeconds(message.attempts) });
  }
}

/** One signed POST; never throws. */
async function post(env: WebhookConsumerEnv, delivery: DeliveryRow): Promise<AttemptOutcome> {
  const started = Date.now();
  const refused = webhookUrlProblem(delivery.url, env);
  if (refused) return { ok: false, httpStatus: null, responseSnippet: "", error: `url refused: ${refused}`, durationMs: 0 };
  const body = JSON.stringify(delivery.payload);
  const secrets = delivery.previous_secret && delivery.previous_secret_valid ? [delivery.secret, delivery.previous_secret] : [delivery.secret];
  const headers = await signWebhook(secrets, delivery.webhook_id, Math.floor(Date.now() / 1000), body);
  try {
    const response = await fetch(delivery.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "user-agent": "EdgeTickets-Webhooks/1" },
      body,
      // A redirect could point anywhere, including where the URL check refuses to go.
      redirect: "manual",
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    const text = await response.text().catch(() => "");
    const ok = response.status >= 200 && response.status < 300;
    return { ok, httpStatus: response.status, responseSnippet: text.slice(0, RESPONSE_SNIPPET_CHARS), error: null, durationMs: Date.now() - started };
  } catch (error) {
    return { ok: false, httpStatus: null, responseSnippet: "", error: String(error).slice(0, RESPONSE_SNIPPET_CHARS), durationMs: Date.now() - started };
  }
}

async function deadLetter(env: WebhookConsumerEnv, message: Message<unknown>, body: WebhookMessage): Promise<void> {
  await env.WEBHOOK_DEAD_LETTERS.send(body);
  message.ack();
}

/**
 * The webhooks' dead-letter queue: marks each delivery dead (our consumer's
 * letters, and messages the runtime moved after `max_retries`, alike).
 */
export async function handleWebhookDeadLetters(batch: MessageBatch<unknown>, env: ConfigEnv): Promise<void> {
  const ids = batch.messages.flatMap((message) => {
    const parsed = webhookMessageSchema.safeParse(message.body);
    if (!parsed.success) log.error("webhook_dead_letter_invalid", { messageId: message.id });
    return parsed.success ? [parsed.data.deliveryId] : [];
  });
  const { db, close } = createDb(loadConfig(env));
  try {
    await db.execute(sql`
      update webhook_deliveries set status = 'dead', next_attempt_at = null
      where id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)) and status = 'pending'`);
    batch.ackAll();
  } catch (error) {
    log.error("webhook_dead_letter_store_failed", { error: String(error) });
    batch.retryAll({ delaySeconds: 30 });
  } finally {
    await close();
  }
}
