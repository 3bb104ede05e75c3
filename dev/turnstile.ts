/**
 * The local stand-in for Cloudflare Turnstile's siteverify API
 * (`POST /turnstile/v0/siteverify`), for the local stack and the tests, where
 * Cloudflare cannot be reached. It honours Cloudflare's documented test secret
 * keys, takes the same request formats (form-urlencoded, multipart form data or
 * JSON) and answers in the same shape. It can be told to fail (`POST /__faults`),
 * and it records what it was sent (`GET /__requests`) so tests can check the
 * Worker sends what Cloudflare documents.
 */
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage } from "node:http";
import { buffer } from "node:stream/consumers";
import { z } from "zod";
import { listenOnLoopback, sendJson, type LoopbackServer } from "./http-server.ts";
import { WIDGET_SCRIPT, WIDGET_SCRIPT_PATH } from "./turnstile-widget.ts";

/** Cloudflare's test secret keys (server side), by behaviour. */
export const TURNSTILE_TEST_SECRETS = {
  /** Every token passes. */
  passes: "1x0000000000000000000000000000000AA",
  /** Every token fails with `invalid-input-response`. */
  fails: "2x0000000000000000000000000000000AA",
  /** Every token is "already spent": `timeout-or-duplicate`. */
  spent: "3x0000000000000000000000000000000AA",
} as const;

/** Cloudflare's test site key whose (visible) widget always passes. */
export const TURNSTILE_TEST_SITE_KEY = "1x00000000000000000000AA";

/** The token Cloudflare's test site keys give the page; production secret keys reject it. */
export const TURNSTILE_DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";

/**
 * A test token solved on a named device: the stand-in answers it with a
 * `metadata.ephemeral_id` derived from the device, as Cloudflare's siteverify
 * does on Enterprise plans (the id Cloudflare derives from the device that
 * solved the challenge, whatever accounts or client-side ids it uses). Plain
 * tokens get no ephemeral id, as on other plans.
 */
export function turnstileTokenOnDevice(device: string): string {
  return `${TURNSTILE_DUMMY_TOKEN}.device-${device}`;
}

const DEVICE_TOKEN = /\.device-([A-Za-z0-9_-]{1,64})$/;

/** Where siteverify lives, on Cloudflare and here. */
export const SITEVERIFY_PATH = "/turnstile/v0/siteverify";

/** Cloudflare refuses longer tokens. */
const MAX_TOKEN_LENGTH = 2048;

/** A running stand-in: `verifyUrl` is the Worker's `TURNSTILE_VERIFY_URL`. */
export interface TurnstileStandIn extends LoopbackServer {
  verifyUrl: string;
  /** The widget script (`TURNSTILE_SCRIPT_URL`), with Cloudflare's JS API (turnstile-widget.ts). */
  scriptUrl: string;
}

/** What the stand-in was sent, for tests (the secret is reduced to its test-key behaviour). */
export interface SiteverifyRequestRecord {
  contentType: string;
  secret: keyof typeof TURNSTILE_TEST_SECRETS | "missing" | "other";
  response?: string;
  remoteip?: string;
  idempotency_key?: string;
}

/** siteverify's answer. */
interface Verdict {
  success: boolean;
  "error-codes": string[];
  challenge_ts?: string;
  hostname?: string;
  action?: string;
  cdata?: string;
  metadata?: { interactive: boolean; ephemeral_id?: string };
  messages?: string[];
}

const FaultSchema = z.strictObject({ mode: z.enum(["error500", "hang"]), count: z.number().int().min(1).max(1_000) });
type Fault = z.infer<typeof FaultSchema>;

const Fields = z.record(z.string(), z.string());
const RECORD_LIMIT = 500;
const IDEMPOTENCY_LIMIT = 5_000;

/**
 * Starts the stand-in on 127.0.0.1:port (0 = ephemeral). A passing answer
 * names `hostname` (default "example.com"); action and cdata are empty, as
 * with Cloudflare's test keys. A repeated `idempotency_key` gets the first
 * answer again, as on Cloudflare. Unknown secrets are `invalid-input-secret`:
 * only the test keys exist here.
 */
export async function startTurnstileStandIn(options: { port: number; hostname?: string }): Promise<TurnstileStandIn> {
  const hostname = options.hostname ?? "example.com";
  const faults: Fault[] = [];
  const records: SiteverifyRequestRecord[] = [];
  const answered = new Map<string, Verdict>();

  const siteverify = async (request: IncomingMessage): Promise<[number, Verdict] | "hang"> => {
    const contentType = request.headers["content-type"] ?? "";
    const fields = await readFields(request, contentType);
    const fault = faults[0];
    if (fault) {
      fault.count -= 1;
      if (fault.count === 0) faults.shift();
      if (fault.mode === "hang") return "hang";
      return [500, { success: false, "error-codes": ["internal-error"] }];
    }
    if (!fields) return [400, { success: false, "error-codes": ["bad-request"], messages: [] }];
    records.push({
      contentType: contentType.split(";")[0] ?? "",
      secret: secretKind(fields.secret),
      response: fields.response,
      remoteip: fields.remoteip,
      idempotency_key: fields.idempotency_key,
    });
    records.splice(0, Math.max(0, records.length - RECORD_LIMIT));

    const key = fields.idempotency_key;
    const earlier = key === undefined ? undefined : answered.get(key);
    if (earlier) return [200, earlier];
    const verdict = judge(fields, hostname);
    if (key !== undefined) {
      answered.set(key, verdict);
      if (answered.size > IDEMPOTENCY_LIMIT) answered.delete(answered.keys().next().value ?? "");
    }
    return [200, verdict];
  };

  const route = async (request: IncomingMessage): Promise<[number, unknown] | "hang"> => {
    const url = new URL(request.url ?? "/", "http://turnstile");
    const method = request.method ?? "GET";
    if (url.pathname === SITEVERIFY_PATH) {
      if (method !== "POST") return [405, { success: false, "error-codes": ["bad-request"], messages: ["Use POST."] }];
      return siteverify(request);
    }
    if (url.pathname === "/__faults" && method === "POST") {
      const body = await buffer(request);
      const parsed = FaultSchema.safeParse(parseJson(body.toString("utf8")));
      if (!parsed.success) return [422, { error: 'Expected {"mode":"error500"|"hang","count":n}.' }];
      faults.push(parsed.data);
      return [200, { faults }];
    }
    if (url.pathname === "/__faults" && method === "DELETE") {
      faults.splice(0);
      return [200, { faults }];
    }
    if (url.pathname === "/__requests" && method === "GET") return [200, { requests: records }];
    return [404, { error: `No route for ${method} ${url.pathname}.` }];
  };

  const server = createServer((request, response) => {
    // The widget script pages load (`TURNSTILE_SCRIPT_URL`), as from challenges.cloudflare.com.
    if (request.method === "GET" && new URL(request.url ?? "/", "http://turnstile").pathname === WIDGET_SCRIPT_PATH) {
      response.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "access-control-allow-origin": "*", "cache-control": "no-store" }).end(WIDGET_SCRIPT);
      return;
    }
    route(request).then(
      (result) => {
        if (result !== "hang") sendJson(response, result[0], result[1]);
      },
      (error: unknown) => sendJson(response, 500, { success: false, "error-codes": ["internal-error"], messages: [String(error)] }),
    );
  });
  // Hung requests are dropped by close().
  const listening = await listenOnLoopback(server, options.port);
  return { ...listening, verifyUrl: `${listening.url}${SITEVERIFY_PATH}`, scriptUrl: `${listening.url}${WIDGET_SCRIPT_PATH}` };
}

/** Cloudflare's rules, in its order: the secret first, then the token, then the test key's behaviour. */
function judge(fields: Record<string, string>, hostname: string): Verdict {
  const secret = secretKind(fields.secret);
  if (secret === "missing") return failure("missing-input-secret");
  if (secret === "other") return failure("invalid-input-secret");
  const token = fields.response ?? "";
  if (token === "") return failure("missing-input-response");
  if (token.length > MAX_TOKEN_LENGTH) return failure("invalid-input-response");
  if (secret === "fails") return failure("invalid-input-response");
  if (secret === "spent") return failure("timeout-or-duplicate");
  return {
    success: true,
    "error-codes": [],
    challenge_ts: new Date().toISOString(),
    hostname,
    action: "",
    cdata: "",
    metadata: { interactive: false, ...ephemeralIdOf(token) },
  };
}

/** The ephemeral id of a token solved on a named device (see `turnstileTokenOnDevice`). */
function ephemeralIdOf(token: string): { ephemeral_id?: string } {
  const device = DEVICE_TOKEN.exec(token)?.[1];
  return device ? { ephemeral_id: `x:${createHash("sha256").update(device).digest("base64url").slice(0, 22)}` } : {};
}

function failure(code: string): Verdict {
  return { success: false, "error-codes": [code], messages: [] };
}

const SECRET_KINDS = new Map<string, keyof typeof TURNSTILE_TEST_SECRETS>([
  [TURNSTILE_TEST_SECRETS.passes, "passes"],
  [TURNSTILE_TEST_SECRETS.fails, "fails"],
  [TURNSTILE_TEST_SECRETS.spent, "spent"],
]);

function secretKind(secret: string | undefined): SiteverifyRequestRecord["secret"] {
  if (!secret) return "missing";
  return SECRET_KINDS.get(secret) ?? "other";
}

/** The request's fields, from form-urlencoded, multipart or JSON; undefined when unreadable. */
async function readFields(request: IncomingMessage, contentType: string): Promise<Record<string, string> | undefined> {
  const body = await buffer(request);
  if (/^application\/json\b/i.test(contentType)) {
    const parsed = Fields.safeParse(parseJson(body.toString("utf8")));
    return parsed.success ? parsed.data : undefined;
  }
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(contentType)) return undefined;
  try {
    const form = await new Request("http://turnstile/", { method: "POST", headers: { "content-type": contentType }, body }).formData();
    const fields: Record<string, string> = {};
    for (const [name, value] of form) if (typeof value === "string") fields[name] = value;
    return fields;
  } catch {
    return undefined;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
