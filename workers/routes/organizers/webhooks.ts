/** Organizer webhooks: endpoints (create, list, update, delete, rotate the secret), the delivery log, and resending a delivery. */
import { z } from "@hono/zod-openapi";
import { WEBHOOK_EVENT_TYPES } from "../../../core/db/schema";
import { WEBHOOK_MAX_ATTEMPTS } from "../../organizers/webhooks/consumer";
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listDeliveries,
  listEndpoints,
  MAX_DELIVERIES_PAGE,
  MAX_ENDPOINTS,
  resendDelivery,
  rotateSecret,
  SECRET_ROTATION_GRACE_MS,
  updateEndpoint,
} from "../../organizers/webhooks/endpoints";
import { MAX_WEBHOOK_URL_LENGTH } from "../../organizers/webhooks/urls";
import { appendAudit, auditedChange } from "../../organizers/audit-log";
import { errorResponses, jsonBody, jsonResponse, organizerRoute, pathId } from "../openapi";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const webhooks = routeGroup();

const eventTypes = z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length);

const endpointSchema = z
  .object({
    id: z.uuid(),
    url: z.string(),
    eventTypes: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
    eventId: z.uuid().nullable().openapi({ description: "Only this event's notifications; null: every event of the organizer." }),
    description: z.string(),
    previousSecretExpiresAt: z.string().nullable().openapi({ description: "Until then the secret before the last rotation signs too (a second `v1,` signature)." }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("WebhookEndpoint");

const secretSchema = z.string().openapi({ description: "`whsec_` + base64 key, shown only in this answer: keep it to verify `webhook-signature`." });

const deliverySchema = z
  .object({
    id: z.uuid(),
    endpointId: z.uuid(),
    webhookId: z.string().openapi({ description: "The `webhook-id` header: the same on every attempt and resend (deduplicate on it)." }),
    eventType: z.string(),
    status: z.enum(["pending", "delivered", "dead"]).openapi({ description: `\`dead\`: all ${WEBHOOK_MAX_ATTEMPTS} attempts failed; resend to try again.` }),
    payload: z.unknown().openapi({ description: "The body every attempt sends: `{ type, timestamp, data }`." }),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable().openapi({ description: "When the next retry is due (null: none scheduled)." }),
    attempts: z.array(
      z.object({
        attemptedAt: z.string(),
        httpStatus: z.number().nullable().openapi({ description: "The receiver's status; null when it did not answer (or the URL was refused)." }),
        responseSnippet: z.string().openapi({ description: "The first 500 characters of its answer." }),
        error: z.string().nullable(),
        durationMs: z.number(),
      }),
    ),
  })
  .openapi("WebhookDelivery");

const endpointParam = z.object({ endpointId: pathId("endpointId") });
const deliveryParam = z.object({ deliveryId: pathId("deliveryId") });
const url = z.string().trim().min(1).max(MAX_WEBHOOK_URL_LENGTH).openapi({ description: "https (http only in local development); no private, loopback or link-local hosts." });
const description = z.string().max(500);

const signingNote =
  "Deliveries are POSTs signed the Standard Webhooks way: `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` " +
  '(`v1,` + base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"` under the base64-decoded key after `whsec_`; several space-separated while a rotated-out secret is in its grace period). ' +
  `A 2xx answer delivers; anything else is retried with exponential backoff, ${WEBHOOK_MAX_ATTEMPTS} attempts in all, then the delivery is dead.`;

webhooks.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/webhooks/endpoints",
    summary: "Subscribe a URL to organizer events",
    description: `${signingNote} At most ${MAX_ENDPOINTS} endpoints per organizer. A refused URL is a 400 and stores nothing.`,
    request: { body: jsonBody(z.strictObject({ url, eventTypes, eventId: z.uuid().nullable().optional(), description: description.optional() })) },
    responses: {
      201: jsonResponse(z.object({ endpoint: endpointSchema, secret: secretSchema }), "The endpoint and its signing secret (shown once)."),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const created = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await createEndpoint(tx, c.env, c.var.organizer.id, c.req.valid("json"));
      return { result, audit: { targetId: result.endpoint.id, eventId: result.endpoint.eventId, before: null, after: result.endpoint } };
    });
    return c.json(created, 201);
  },
);

webhooks.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/webhooks/endpoints",
    summary: "The organizer's webhook endpoints",
    responses: { 200: jsonResponse(z.object({ endpoints: z.array(endpointSchema) }), "Oldest first; secrets are never listed."), ...errorResponses(401) },
  }),
  async (c) => c.json({ endpoints: await listEndpoints(c.var.db, c.var.organizer.id) }, 200),
);

webhooks.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/webhooks/endpoints/{endpointId}",
    summary: "One webhook endpoint",
    request: { params: endpointParam },
    responses: { 200: jsonResponse(z.object({ endpoint: endpointSchema }), "The endpoint."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json({ endpoint: await getEndpoint(c.var.db, c.var.organizer.id, c.req.valid("param").endpointId) }, 200),
);

webhooks.openapi(
  organizerRoute("admin", {
    method: "patch",
    path: "/webhooks/endpoints/{endpointId}",
    summary: "Change a webhook endpoint",
    description: "Only the fields sent change; `eventId: null` removes the event filter. The secret stays (rotate it on its own route).",
    request: {
      params: endpointParam,
      body: jsonBody(z.strictObject({ url: url.optional(), eventTypes: eventTypes.optional(), eventId: z.uuid().nullable().optional(), description: description.optional() })),
    },
    responses: { 200: jsonResponse(z.object({ endpoint: endpointSchema }), "The endpoint as changed."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { endpointId } = c.req.valid("param");
    const endpoint = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const before = await getEndpoint(tx, c.var.organizer.id, endpointId);
      const result = await updateEndpoint(tx, c.env, c.var.organizer.id, endpointId, c.req.valid("json"));
      return { result, audit: { targetId: endpointId, eventId: result.eventId, before, after: result } };
    });
    return c.json({ endpoint }, 200);
  },
);

webhooks.openapi(
  organizerRoute("admin", {
    method: "delete",
    path: "/webhooks/endpoints/{endpointId}",
    summary: "Delete a webhook endpoint and its delivery log",
    request: { params: endpointParam },
    responses: { 204: { description: "Deleted; deliveries still queued for it are dropped." }, ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { endpointId } = c.req.valid("param");
    await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const before = await getEndpoint(tx, c.var.organizer.id, endpointId);
      await deleteEndpoint(tx, c.var.organizer.id, endpointId);
      return { result: undefined, audit: { targetId: endpointId, eventId: before.eventId, before, after: null } };
    });
    return c.body(null, 204);
  },
);

webhooks.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/webhooks/endpoints/{endpointId}/rotate-secret",
    summary: "Rotate an endpoint's signing secret",
    description: `Returns a new secret once. For ${SECRET_ROTATION_GRACE_MS / 3_600_000} hours the previous secret signs too, so each delivery carries both signatures while receivers switch.`,
    request: { params: endpointParam },
    responses: { 200: jsonResponse(z.object({ endpoint: endpointSchema, secret: secretSchema }), "The endpoint and its new secret."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { endpointId } = c.req.valid("param");
    const rotated = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const before = await getEndpoint(tx, c.var.organizer.id, endpointId);
      const result = await rotateSecret(tx, c.var.organizer.id, endpointId);
      return { result, audit: { targetId: endpointId, eventId: before.eventId, before, after: result.endpoint } };
    });
    return c.json(rotated, 200);
  },
);

webhooks.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/webhooks/endpoints/{endpointId}/deliveries",
    summary: "An endpoint's delivery log, newest first",
    description: "Each delivery with every attempt: its time, the receiver's HTTP status, the start of its answer or the error, and when the next retry is due.",
    request: {
      params: endpointParam,
      query: z.object({
        limit: z.coerce.number().int().min(1).max(MAX_DELIVERIES_PAGE).default(50),
        cursor: z.uuid().optional().openapi({ description: "The previous page's nextCursor." }),
        status: z.enum(["pending", "delivered", "dead"]).optional(),
      }),
    },
    responses: { 200: jsonResponse(z.object({ deliveries: z.array(deliverySchema), nextCursor: z.string().nullable() }), "One page of deliveries."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const query = c.req.valid("query");
    return c.json(await listDeliveries(c.var.db, c.var.organizer.id, c.req.valid("param").endpointId, query), 200);
  },
);

webhooks.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/webhooks/deliveries/{deliveryId}/resend",
    summary: "Send a delivery again",
    description: "Any delivery (delivered, dead or pending): the same `webhook-id` and body, a fresh series of attempts; earlier attempts stay in the log.",
    request: { params: deliveryParam },
    responses: { 202: jsonResponse(z.object({ delivery: deliverySchema }), "Queued again."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { deliveryId } = c.req.valid("param");
    // The queue send is not transactional: the row follows the change, as for prepare and refunds.
    const delivery = await resendDelivery({ db: c.var.db, env: c.env }, c.var.organizer.id, deliveryId);
    await appendAudit(c.var.db, auditActor(c), { targetId: deliveryId, before: null, after: { webhookId: delivery.webhookId, eventType: delivery.eventType } });
    return c.json({ delivery }, 202);
  },
);
