/**
 * The local stand-in for our transactional-email provider: it speaks the part
 * of Resend's HTTP API that `workers/platform/mailer.ts` uses (`POST /emails` with a
 * Bearer key, `Idempotency-Key`, Resend's error bodies) and keeps what it is
 * sent in memory instead of delivering it, so developers can read sign-in codes
 * at `GET /` and tests can read them at `GET /emails?to=`. It can be told to
 * fail (`POST /__faults`), because the real provider does.
 *
 * Memory: the newest BODIES_KEPT emails keep their text and HTML; older ones
 * keep only their envelope (id, addresses, subject, time; `text` and `html`
 * null), up to ENVELOPES_KEPT in all. So a sellout's checks can still see that
 * every buyer was emailed after tens of thousands of ticket emails (each with
 * its QR codes), and a long `npm run dev` stays small.
 */
import { createServer } from "node:http";
import type { IncomingMessage } from "node:http";
import { text } from "node:stream/consumers";
import { z } from "zod";
import { listenOnLoopback, sendJson, type LoopbackServer } from "./http-server.ts";

/** A running outbox: its base URL (the Worker's `MAIL_API_URL`) and how to stop it. */
export type MailOutbox = LoopbackServer;

/** One accepted email, in the shape of Resend's `GET /emails/:id`. */
export interface OutboxEmail {
  object: "email";
  id: string;
  from: string;
  to: string[];
  cc: string[];
  bcc: string[];
  reply_to: string[];
  subject: string;
  text: string | null;
  html: string | null;
  created_at: string;
  last_event: "delivered";
}

/** How the next matching sends fail: a 500, or no answer at all. */
const FaultSchema = z.strictObject({
  mode: z.enum(["error500", "hang"]),
  count: z.number().int().min(1).max(1_000),
  /** Only sends to this address fail (so concurrent tests do not trip over each other). */
  to: z.string().min(1).optional(),
});
type Fault = z.infer<typeof FaultSchema>;

const addresses = z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(50)]);
const optionalAddresses = z.union([z.string().min(1), z.array(z.string().min(1)).max(50)]).optional();

/** Resend's send-email body, for the fields we check; others (tags, headers, ...) are accepted and ignored. */
const SendSchema = z
  .object({
    from: z.string().min(1),
    to: addresses,
    subject: z.string().min(1),
    text: z.string().optional(),
    html: z.string().optional(),
    cc: optionalAddresses,
    bcc: optionalAddresses,
    reply_to: optionalAddresses,
  })
  .refine((body) => body.text !== undefined || body.html !== undefined, { message: "Either `html` or `text` must be provided." });

/** Emails whose text and HTML are kept (the newest); older ones keep their envelope only. */
const BODIES_KEPT = 500;
/** Emails kept at all (the newest); the oldest envelopes go first. */
const ENVELOPES_KEPT = 1_000_000;
const IDEMPOTENCY_LIMIT = 5_000;
/** What it sends and lists changes with every email. */
const NO_STORE = { "cache-control": "no-store" };

/** A refusal with Resend's error body: `{ statusCode, name, message }`. */
class ProviderError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts the outbox on 127.0.0.1:port (0 = ephemeral). `POST /emails` needs
 * `Authorization: Bearer <apiKey>`; reading (`GET /emails`, `GET /emails/:id`,
 * the page at `GET /`) and `DELETE /emails` are open, as befits a loopback tool.
 * `POST /__faults {mode, count, to?}` makes the next `count` sends (to `to`,
 * when given) answer 500 or hang; `DELETE /__faults` clears them.
 */
export async function startMailOutbox(options: { port: number; apiKey: string }): Promise<MailOutbox> {
  const messages: OutboxEmail[] = [];
  const faults: Fault[] = [];
  const idempotent = new Map<string, { body: string; id: string }>();

  const send = async (request: IncomingMessage): Promise<[number, unknown] | "hang"> => {
    const auth = request.headers.authorization;
    if (!auth) throw new ProviderError(401, "missing_api_key", "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY");
    if (auth !== `Bearer ${options.apiKey}`) throw new ProviderError(403, "invalid_api_key", "API key is invalid");
    const raw = await text(request);
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new ProviderError(400, "invalid_request", "The request body is not valid JSON.");
    }
    const parsed = SendSchema.safeParse(json);
    const recipients = parsed.success ? list(parsed.data.to) : [];
    const fault = takeFault(faults, recipients);
    if (fault === "error500") throw new ProviderError(500, "internal_server_error", "An unexpected error occurred. (injected fault)");
    if (fault === "hang") return "hang";
    if (!parsed.success) throw new ProviderError(422, "validation_error", z.prettifyError(parsed.error));

    const key = header(request, "idempotency-key");
    if (key !== undefined) {
      const earlier = idempotent.get(key);
      if (earlier && earlier.body !== raw) throw new ProviderError(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload.");
      if (earlier) return [200, { id: earlier.id }];
    }
    const body = parsed.data;
    const email: OutboxEmail = {
      object: "email",
      id: crypto.randomUUID(),
      from: body.from,
      to: recipients,
      cc: list(body.cc),
      bcc: list(body.bcc),
      reply_to: list(body.reply_to),
      subject: body.subject,
      text: body.text ?? null,
      html: body.html ?? null,
      created_at: new Date().toISOString(),
      last_event: "delivered",
    };
    messages.push(email);
    const stripped = messages[messages.length - 1 - BODIES_KEPT];
    if (stripped) {
      stripped.text = null;
      stripped.html = null;
    }
    messages.splice(0, Math.max(0, messages.length - ENVELOPES_KEPT));
    if (key !== undefined) {
      idempotent.set(key, { body: raw, id: email.id });
      if (idempotent.size > IDEMPOTENCY_LIMIT) idempotent.delete(idempotent.keys().next().value ?? "");
    }
    return [200, { id: email.id }];
  };

  const route = async (request: IncomingMessage): Promise<[number, unknown] | "hang" | "html"> => {
    const url = new URL(request.url ?? "/", "http://outbox");
    const method = request.method ?? "GET";
    if (url.pathname === "/emails" && method === "POST") return send(request);
    if (url.pathname === "/emails" && method === "GET") {
      const to = url.searchParams.get("to")?.toLowerCase();
      const data = messages.filter((m) => to === undefined || m.to.some((address) => address.toLowerCase() === to)).reverse();
      return [200, { object: "list", has_more: false, data }];
    }
    if (url.pathname === "/emails" && method === "DELETE") {
      const deleted = messages.splice(0).length;
      return [200, { object: "list", deleted }];
    }
    const byId = /^\/emails\/([^/]+)$/.exec(url.pathname);
    if (byId && method === "GET") {
      const email = messages.find((m) => m.id === decodeURIComponent(byId[1] ?? ""));
      if (!email) throw new ProviderError(404, "not_found", "Email not found");
      return [200, email];
    }
    if (url.pathname === "/__faults" && method === "POST") {
      const parsed = FaultSchema.safeParse(await text(request).then((body) => JSON.parse(body) as unknown).catch(() => undefined));
      if (!parsed.success) throw new ProviderError(422, "validation_error", 'Expected {"mode":"error500"|"hang","count":n,"to"?:address}.');
      faults.push(parsed.data);
      return [200, { faults }];
    }
    if (url.pathname === "/__faults" && method === "DELETE") {
      faults.splice(0);
      return [200, { faults }];
    }
    if (url.pathname === "/" && method === "GET") return "html";
    throw new ProviderError(404, "not_found", `No route for ${method} ${url.pathname}.`);
  };

  const server = createServer((request, response) => {
    route(request).then(
      (result) => {
        if (result === "hang") return;
        if (result === "html") {
          response.writeHead(200, { "content-type": "text/html; charset=utf-8", ...NO_STORE }).end(outboxPage(messages.slice(-BODIES_KEPT), messages.length));
          return;
        }
        sendJson(response, result[0], result[1], NO_STORE);
      },
      (error: unknown) => {
        const refusal = error instanceof ProviderError ? error : new ProviderError(500, "internal_server_error", String(error));
        sendJson(response, refusal.statusCode, { statusCode: refusal.statusCode, name: refusal.code, message: refusal.message }, NO_STORE);
      },
    );
  });
  // Hung sends are dropped by close().
  return listenOnLoopback(server, options.port);
}

/** Uses up one matching fault, if any; returns its mode. */
function takeFault(faults: Fault[], recipients: string[]): Fault["mode"] | undefined {
  const index = faults.findIndex((fault) => fault.to === undefined || recipients.some((r) => r.toLowerCase() === fault.to?.toLowerCase()));
  const fault = faults[index];
  if (!fault) return undefined;
  fault.count -= 1;
  if (fault.count === 0) faults.splice(index, 1);
  return fault.mode;
}

function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The developer's view: the newest emails (those with bodies) first, refreshed every few seconds. */
function outboxPage(messages: OutboxEmail[], total: number): string {
  const rows = [...messages]
    .reverse()
    .map(
      (m) => `<article>
  <h2>${escapeHtml(m.subject)}</h2>
  <p class="meta">to ${escapeHtml(m.to.join(", "))} · from ${escapeHtml(m.from)} · ${escapeHtml(m.created_at)} · <a href="/emails/${encodeURIComponent(m.id)}">json</a></p>
  <pre>${escapeHtml(m.text ?? (m.html ?? "").replace(/<[^>]*>/g, ""))}</pre>
</article>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Mail outbox (${total})</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  article { border-top: 1px solid #ddd; padding: .5rem 0; }
  h2 { font-size: 1.05rem; margin: .3rem 0; }
  .meta { color: #666; font-size: .85rem; margin: 0; }
  pre { white-space: pre-wrap; background: #f6f6f6; padding: .5rem; }
</style>
</head>
<body>
<h1>Mail outbox</h1>
<p>Emails the local Worker sent, newest first (the newest ${messages.length} of ${total}); nothing is delivered. JSON: <a href="/emails">/emails</a> (<code>?to=</code> filters; older emails keep only their envelope).</p>
${rows || "<p><em>No email yet.</em></p>"}
</body>
</html>
`;
}
