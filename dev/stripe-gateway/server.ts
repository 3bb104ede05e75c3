/**
 * The HTTP side: an API request is authenticated, routed, its parameters
 * decoded, its request faults and idempotency key applied, then executed by
 * the resource its route belongs to; `/__...` requests go to the control
 * routes, and the browser's (Stripe.js, the 3-D Secure page) to stripe-js.ts.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { text } from "node:stream/consumers";
import Stripe from "stripe";
import { serveControl, type Controlled, type DashboardDispute, type DashboardEscalate, type DashboardRefund } from "./control.ts";
import { errorResult, InvalidRequest } from "./errors.ts";
import type { ApiResult, Exchange, FormObject } from "./exchange.ts";
import { FaultBook, REQUEST_MODES, requestSubject } from "./faults.ts";
import { IdempotencyStore } from "./idempotency.ts";
import { newId } from "./ids.ts";
import { Ledger } from "./ledger.ts";
import type { PaymentIntentObject } from "./objects.ts";
import { parseForm } from "./params.ts";
import { matchesFilter, type ChargeAttempt, type RecordFilter, type RequestRecord, type WebhookDelivery } from "./records.ts";
import type { Route } from "./routes.ts";
import { CHALLENGE_PATH, challengePage, STRIPE_JS_PATH, stripeJs } from "./stripe-js.ts";
import { wakeableWait } from "./waits.ts";
import { WebhookSender } from "./webhooks.ts";

const DEFAULT_HANG_MS = 60_000;
const DEFAULT_WEBHOOK_RETRY_DELAYS_MS = [250, 1_000, 4_000];
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** What the gateway is started with (see StripeGatewayOptions). */
export interface GatewaySettings {
  webhookUrl?: string;
  webhookSecret: string;
  apiKey?: string;
  /** The publishable key Stripe.js uses (any `pk_test_...` when unset). */
  publishableKey?: string;
  webhookRetryDelaysMs?: number[];
}

export class Gateway implements Controlled {
  readonly faults = new FaultBook();
  readonly webhooks: WebhookSender;
  private readonly ledger: Ledger;
  private readonly requestLog: RequestRecord[] = [];
  private readonly idempotency = new IdempotencyStore();
  /** Releases for the connections held by hang / lose_response faults. */
  private readonly heldConnections = new Set<() => void>();

  constructor(private readonly settings: GatewaySettings) {
    this.webhooks = new WebhookSender(settings.webhookUrl, settings.webhookSecret, settings.webhookRetryDelaysMs ?? DEFAULT_WEBHOOK_RETRY_DELAYS_MS, this.faults);
    this.ledger = new Ledger(this.faults, this.webhooks.emit);
  }

  async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://gateway");
    const body = await text(request);
    if (url.pathname.startsWith("/__")) return serveControl(this, request.method ?? "GET", url, body, response);
    const origin = `http://${request.headers.host ?? "127.0.0.1"}`;
    if (request.method === "GET" && url.pathname === STRIPE_JS_PATH) return sendText(response, 200, "text/javascript; charset=utf-8", stripeJs(origin));
    if (url.pathname.startsWith(`${CHALLENGE_PATH}/`)) return this.serveChallenge(request.method ?? "GET", url, body, origin, response);
    // Stripe's API answers browsers (Stripe.js) from any origin.
    if (request.method === "OPTIONS") {
      response.writeHead(204, { ...CORS, "access-control-allow-methods": "GET, POST", "access-control-allow-headers": headerValue(request.headers["access-control-request-headers"]) ?? "authorization, content-type, stripe-version", "access-control-max-age": "600" }).end();
      return;
    }
    return this.serveApi(request, response, url, body, origin);
  }

  /** The 3-D Secure challenge page of a PaymentIntent (GET), and its pass / fail buttons (POST `outcome=pass|fail`). */
  private serveChallenge(method: string, url: URL, body: string, origin: string, response: ServerResponse): void {
    const intentId = decodeURIComponent(url.pathname.slice(CHALLENGE_PATH.length + 1));
    const intent = this.ledger.paymentIntents.get(intentId);
    if (!intent) return sendText(response, 404, "text/plain; charset=utf-8", `No such payment_intent: '${intentId}'`);
    if (method === "GET") {
      if (intent.status !== "requires_action") return sendText(response, 200, "text/html; charset=utf-8", challengePage(intentId, intent.status === "requires_payment_method" ? "failed" : "passed"));
      return sendText(response, 200, "text/html; charset=utf-8", challengePage(intentId));
    }
    const outcome = new URLSearchParams(body).get("outcome");
    if (method !== "POST" || (outcome !== "pass" && outcome !== "fail")) return sendText(response, 400, "text/plain; charset=utf-8", "Post outcome=pass or outcome=fail.");
    const exchange: Exchange = { requestId: newId("req"), method, path: url.pathname, idempotencyKey: null, apiVersion: Stripe.API_VERSION, origin };
    const result = execute({ method: "POST", pattern: /^$/, intentOf: () => intentId, handle: () => this.ledger.paymentIntents.completeChallenge(intentId, outcome === "pass", exchange) }, {}, exchange, intentId);
    if (result.status !== 200) return sendText(response, 409, "application/json", JSON.stringify(result.body));
    sendText(response, 200, "text/html; charset=utf-8", challengePage(intentId, outcome === "pass" ? "passed" : "failed"));
  }

  dashboardRefund(request: DashboardRefund): ApiResult {
    return this.dashboardAction("/__dashboard/refund", (exchange) => this.ledger.refunds.create(request, exchange));
  }

  dashboardDispute(request: DashboardDispute): ApiResult {
    return this.dashboardAction("/__dashboard/dispute", (exchange) => this.ledger.disputes.open(request, exchange));
  }

  dashboardEscalate(request: DashboardEscalate): ApiResult {
    return this.dashboardAction("/__dashboard/dispute/escalate", (exchange) => this.ledger.disputes.escalateById(request.dispute, exchange));
  }

  /** An action taken outside the API (no key, no idempotency): its events carry a request id and no idempotency key, as the dashboard's do. */
  private dashboardAction(path: string, action: (exchange: Exchange) => ApiResult): ApiResult {
    const exchange: Exchange = { requestId: newId("req"), method: "POST", path, idempotencyKey: null, apiVersion: Stripe.API_VERSION };
    return execute({ method: "POST", pattern: /^$/, intentOf: () => undefined, handle: () => action(exchange) }, {}, exchange, "");
  }

  close(): void {
    for (const release of this.heldConnections) release();
    this.webhooks.close();
  }

  charges(filter: RecordFilter): ChargeAttempt[] {
    return this.ledger.charges.attempts().filter((attempt) => matchesFilter(attempt, filter));
  }

  paymentIntents(filter: RecordFilter): PaymentIntentObject[] {
    return this.ledger.paymentIntents.list().filter((intent) => matchesFilter({ paymentIntent: intent.id, metadata: intent.metadata }, filter));
  }

  webhookDeliveries(filter: RecordFilter): WebhookDelivery[] {
    return this.webhooks.list().filter((delivery) => matchesFilter(delivery, filter));
  }

  requests(filter: RecordFilter): RequestRecord[] {
    return this.requestLog.filter((record) => matchesFilter(record, filter)).map((record) => structuredClone(record));
  }

  private async serveApi(request: IncomingMessage, response: ServerResponse, url: URL, body: string, origin: string): Promise<void> {
    const method = request.method ?? "GET";
    const requestId = newId("req");
    const apiVersion = headerValue(request.headers["stripe-version"]) ?? Stripe.API_VERSION;
    // Stripe ignores the key on GET and DELETE.
    const idempotencyKey = method === "POST" ? (headerValue(request.headers["idempotency-key"]) ?? null) : null;
    const headers: Record<string, string> = { ...CORS, "request-id": requestId, "stripe-version": apiVersion, ...(idempotencyKey === null ? {} : { "idempotency-key": idempotencyKey }) };
    const record: RequestRecord = { requestId, method, path: url.pathname, idempotencyKey, paymentIntent: null, metadata: {}, outcome: "in_progress", replayed: false, fault: null };
    this.requestLog.push(record);
    const reply = (status: number, json: string, extra: Record<string, string> = {}) => {
      record.outcome = status;
      response.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(json)), ...headers, ...extra }).end(json);
    };
    const replyResult = (result: ApiResult) => reply(result.status, JSON.stringify(result.body, null, 2));

    const apiKey = authenticate(request.headers.authorization, this.settings.apiKey, this.settings.publishableKey);
    if (apiKey instanceof InvalidRequest) return replyResult(errorResult(apiKey.status, apiKey.error));
    if (apiKey.startsWith("pk_") && !this.publishableMayCall(method, url)) {
      return replyResult(errorResult(401, { type: "invalid_request_error", message: "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys." }));
    }
    const found = this.ledger.findRoute(method, url.pathname);
    if (!found) {
      return replyResult(
        errorResult(404, { type: "invalid_request_error", message: `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.` }),
      );
    }
    let params: FormObject;
    try {
      params = parseForm(method === "POST" ? body : url.search.slice(1));
    } catch (error) {
      if (error instanceof InvalidRequest) return replyResult(errorResult(error.status, error.error));
      throw error;
    }
    if (idempotencyKey !== null && idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      return replyResult(errorResult(400, { type: "invalid_request_error", message: `Idempotency-Key must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long.` }));
    }

    const exchange: Exchange = { requestId, method, path: url.pathname, idempotencyKey, apiVersion, origin };
    const paymentIntent = found.route.intentOf(found.id, params) ?? null;
    const requestMetadata = typeof params.metadata === "object" ? Object.fromEntries(Object.entries(params.metadata).filter((entry): entry is [string, string] => typeof entry[1] === "string")) : {};
    record.paymentIntent = paymentIntent;
    record.metadata = { ...(paymentIntent === null ? {} : this.ledger.paymentIntents.get(paymentIntent)?.metadata), ...requestMetadata };
    const fault = this.faults.take(REQUEST_MODES, { ...requestSubject(exchange), paymentIntent, metadata: record.metadata });
    record.fault = fault?.mode ?? null;
    if (fault?.mode === "error500") return replyResult(errorResult(500, { type: "api_error", message: "An unknown error occurred" }));

    const claim = idempotencyKey === null ? undefined : this.idempotency.claim(apiKey, idempotencyKey, `${method} ${url.pathname}`, params);
    if (fault?.mode === "hang") {
      record.outcome = "hanging";
      await this.holdConnection(response, fault.delayMs ?? DEFAULT_HANG_MS);
      if (claim?.kind === "new") claim.finish(undefined);
      record.outcome = "hung";
      response.destroy();
      return;
    }

    let status: number;
    let json: string;
    let extra: Record<string, string> = {};
    if (claim?.kind === "replay") {
      ({ status, body: json } = claim.saved);
      extra = { "idempotent-replayed": "true", "original-request": claim.saved.requestId };
      record.replayed = true;
    } else if (claim?.kind === "in_use") {
      status = 409;
      json = JSON.stringify(
        {
          error: {
            type: "idempotency_error",
            code: "idempotency_key_in_use",
            message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
          },
        },
        null,
        2,
      );
    } else if (claim?.kind === "mismatch") {
      status = 400;
      json = JSON.stringify({ error: { type: "idempotency_error", message: claim.message } }, null, 2);
    } else {
      const result = execute(found.route, params, exchange, found.id ?? "");
      status = result.status;
      json = JSON.stringify(result.body, null, 2);
      claim?.finish(result.saved ? { status, body: json, requestId } : undefined);
      const intentId = record.paymentIntent ?? intentIdOf(result.body);
      if (intentId !== null) {
        record.paymentIntent = intentId;
        record.metadata = { ...this.ledger.paymentIntents.get(intentId)?.metadata };
      }
    }

    if (fault?.mode === "lose_response") {
      if (fault.delayMs !== undefined) await this.holdConnection(response, fault.delayMs);
      record.outcome = "lost";
      response.destroy();
      return;
    }
    reply(status, json, extra);
  }

  /** What Stripe.js may do with a publishable key: create a PaymentMethod, and read a PaymentIntent whose client secret it has. */
  private publishableMayCall(method: string, url: URL): boolean {
    if (method === "POST" && url.pathname === "/v1/payment_methods") return true;
    const intentId = method === "GET" ? /^\/v1\/payment_intents\/([^/]+)$/.exec(url.pathname)?.[1] : undefined;
    if (intentId === undefined) return false;
    const intent = this.ledger.paymentIntents.get(decodeURIComponent(intentId));
    return intent !== undefined && url.searchParams.get("client_secret") === intent.client_secret;
  }

  /** Holds an unanswered request until the client gives up, `ms` pass, or the gateway closes. */
  private async holdConnection(response: ServerResponse, ms: number): Promise<void> {
    const held = wakeableWait(ms, this.heldConnections);
    response.once("close", held.wake);
    await held.done;
  }
}

function execute(route: Route, params: FormObject, exchange: Exchange, id: string): ApiResult {
  try {
    return route.handle(params, exchange, id);
  } catch (error) {
    if (error instanceof InvalidRequest) return errorResult(error.status, error.error);
    throw error;
  }
}

/** The API key of a request (Bearer, or Basic with the key as user name), or why it is refused. */
function authenticate(authorization: string | undefined, expected: string | undefined, publishable: string | undefined): string | InvalidRequest {
  const unauthorized = (message: string) => new InvalidRequest(401, { type: "invalid_request_error", message });
  if (!authorization) {
    return unauthorized(
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
    );
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
  const basic = /^Basic\s+(\S+)$/i.exec(authorization)?.[1];
  const key = bearer ?? (basic === undefined ? undefined : Buffer.from(basic, "base64").toString("utf8").split(":")[0]);
  if (!key) return unauthorized("Invalid authorization header. Use 'Authorization: Bearer YOUR_SECRET_KEY'.");
  const valid = key.startsWith("pk_")
    ? (publishable === undefined ? /^pk_test_\w+$/.test(key) : key === publishable)
    : expected === undefined ? /^(sk|rk)_test_\w+$/.test(key) : key === expected;
  if (!valid) return unauthorized(`Invalid API Key provided: ${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`);
  return key;
}

function intentIdOf(body: unknown): string | null {
  if (typeof body !== "object" || body === null) return null;
  if ("object" in body && body.object === "payment_intent" && "id" in body && typeof body.id === "string") return body.id;
  if ("payment_intent" in body && typeof body.payment_intent === "string") return body.payment_intent;
  if ("error" in body) return intentIdOf(body.error);
  if ("payment_intent" in body) return intentIdOf(body.payment_intent);
  return null;
}

const CORS = { "access-control-allow-origin": "*" };

function sendText(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { ...CORS, "content-type": contentType, "content-length": String(Buffer.byteLength(body)), "cache-control": "no-store" }).end(body);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
