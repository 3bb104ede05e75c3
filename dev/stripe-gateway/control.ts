/**
 * The control routes (`/__...`): tests inject faults and inspect what
 * happened over HTTP (the Worker's tests do, from inside workerd), and act
 * as the Stripe dashboard and the card networks would: `POST
 * /__dashboard/refund` refunds a charge (in full, or `amount`) and `POST
 * /__dashboard/dispute` opens a chargeback on one, each sending its signed
 * events (`charge.refunded`, `charge.dispute.created`); `POST
 * /__dashboard/dispute/escalate` escalates an inquiry to a chargeback
 * (`charge.dispute.updated`, `charge.dispute.funds_withdrawn`). They need no API key:
 * the gateway listens on loopback only.
 */
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { sendJson } from "../http-server.ts";
import { FaultSpecSchema, type FaultBook } from "./faults.ts";
import type { ApiResult } from "./exchange.ts";
import { DISPUTE_REASONS, type PaymentIntentObject } from "./objects.ts";
import { filterFromQuery, type ChargeAttempt, type RecordFilter, type RequestRecord, type WebhookDelivery } from "./records.ts";
import type { WebhookSender } from "./webhooks.ts";

/** What the control routes reach. */
export interface Controlled {
  readonly faults: FaultBook;
  readonly webhooks: WebhookSender;
  charges(filter: RecordFilter): ChargeAttempt[];
  paymentIntents(filter: RecordFilter): PaymentIntentObject[];
  webhookDeliveries(filter: RecordFilter): WebhookDelivery[];
  requests(filter: RecordFilter): RequestRecord[];
  /** A refund made in the dashboard (no API request): the refund, or Stripe's error. */
  dashboardRefund(request: DashboardRefund): ApiResult;
  /** A dispute opened by the cardholder's bank: the dispute, or Stripe's error. */
  dashboardDispute(request: DashboardDispute): ApiResult;
  /** An inquiry the cardholder's bank escalates to a chargeback: the dispute, or Stripe's error. */
  dashboardEscalate(request: DashboardEscalate): ApiResult;
}

/** Exactly one of `payment_intent` and `charge` (the gateway says so as Stripe would). */
const chargeTarget = { payment_intent: z.string().min(1).optional(), charge: z.string().min(1).optional() };
const DashboardRefundSchema = z.strictObject({
  ...chargeTarget,
  amount: z.int().positive().optional(),
  reason: z.enum(["duplicate", "fraudulent", "requested_by_customer"]).optional(),
});
const DashboardDisputeSchema = z.strictObject({ ...chargeTarget, reason: z.enum(DISPUTE_REASONS).optional() });
const DashboardEscalateSchema = z.strictObject({ dispute: z.string().min(1) });
/** What the dashboard's refund control takes. */
export type DashboardRefund = z.output<typeof DashboardRefundSchema>;
/** What the dispute control takes. */
export type DashboardDispute = z.output<typeof DashboardDisputeSchema>;
/** What the escalation control takes: the inquiry's id. */
export type DashboardEscalate = z.output<typeof DashboardEscalateSchema>;

/** Serves one control request. */
export async function serveControl(gateway: Controlled, method: string, url: URL, body: string, response: ServerResponse): Promise<void> {
  const filter = filterFromQuery(url.searchParams);
  const route = `${method} ${url.pathname}`;
  switch (route) {
    case "GET /__faults":
      return sendJson(response, 200, gateway.faults.list());
    case "POST /__faults":
      return withJson(body, FaultSpecSchema, response, (spec) => sendJson(response, 201, gateway.faults.add(spec)));
    case "POST /__dashboard/refund":
      return withJson(body, DashboardRefundSchema, response, (request) => sendResult(response, gateway.dashboardRefund(request)));
    case "POST /__dashboard/dispute":
      return withJson(body, DashboardDisputeSchema, response, (request) => sendResult(response, gateway.dashboardDispute(request)));
    case "POST /__dashboard/dispute/escalate":
      return withJson(body, DashboardEscalateSchema, response, (request) => sendResult(response, gateway.dashboardEscalate(request)));
    case "DELETE /__faults":
      return sendJson(response, 200, { cleared: gateway.faults.clear() });
    case "GET /__charges":
      return sendJson(response, 200, gateway.charges(filter));
    case "GET /__payment_intents":
      return sendJson(response, 200, gateway.paymentIntents(filter));
    case "GET /__webhooks":
      return sendJson(response, 200, gateway.webhookDeliveries(filter));
    case "GET /__requests":
      return sendJson(response, 200, gateway.requests(filter));
    case "POST /__webhooks/flush":
      return sendJson(response, 200, { released: await gateway.webhooks.flush() });
    case "POST /__webhooks/settle":
      await gateway.webhooks.settle();
      return sendJson(response, 200, {});
  }
  const faultId = /^\/__faults\/([^/]+)$/.exec(url.pathname)?.[1];
  if (method === "DELETE" && faultId !== undefined) {
    const cleared = gateway.faults.clear(decodeURIComponent(faultId));
    return sendJson(response, cleared === 0 ? 404 : 200, { cleared });
  }
  return sendJson(response, 404, { error: { type: "invalid_request_error", message: `Unknown control route: ${route}` } });
}

/** Parses a JSON body with `schema` and hands it on; a 400 in Stripe's error shape otherwise. */
function withJson<T>(body: string, schema: z.ZodType<T>, response: ServerResponse, then: (value: T) => void): void {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return sendJson(response, 400, { error: { type: "invalid_request_error", message: "The body must be JSON." } });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return sendJson(response, 400, { error: { type: "invalid_request_error", message: z.prettifyError(parsed.error) } });
  then(parsed.data);
}

function sendResult(response: ServerResponse, result: ApiResult): void {
  sendJson(response, result.status, result.body);
}
