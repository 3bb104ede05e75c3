/**
 * The control routes (`/__...`): tests inject faults and inspect what
 * happened over HTTP (the Worker's tests do, from inside workerd). They need
 * no API key: the gateway listens on loopback only.
 */
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { sendJson } from "../http-server.ts";
import { FaultSpecSchema, type FaultBook } from "./faults.ts";
import type { PaymentIntentObject } from "./objects.ts";
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
}

/** Serves one control request. */
export async function serveControl(gateway: Controlled, method: string, url: URL, body: string, response: ServerResponse): Promise<void> {
  const filter = filterFromQuery(url.searchParams);
  const route = `${method} ${url.pathname}`;
  switch (route) {
    case "GET /__faults":
      return sendJson(response, 200, gateway.faults.list());
    case "POST /__faults": {
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        return sendJson(response, 400, { error: { type: "invalid_request_error", message: "The body must be JSON." } });
      }
      const spec = FaultSpecSchema.safeParse(json);
      if (!spec.success) return sendJson(response, 400, { error: { type: "invalid_request_error", message: z.prettifyError(spec.error) } });
      return sendJson(response, 201, gateway.faults.add(spec.data));
    }
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
