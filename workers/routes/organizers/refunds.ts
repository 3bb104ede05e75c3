/** Organizers returning money: refund an order, cancel an event (refunding its orders), list an event's orders. */
import { z } from "@hono/zod-openapi";
import { workContext } from "../../app-env";
import { DEFAULT_CANCEL_BATCH, MAX_CANCEL_BATCH, cancelEvent, refundOrder } from "../../refunds/refunds";
import { listOrders, MAX_ORDER_SEARCH, MAX_ORDERS_PAGE, ORDER_STATUSES, orderView } from "../../refunds/orders";
import { errorResponses, errorSchema, idParam, jsonResponse, organizerRoute, pathId } from "../openapi";
import { getEvent } from "../../events/events";
import { appendAudit } from "../../organizers/audit-log";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const refunds = routeGroup();

const orderSchema = z
  .object({
    orderId: z.uuid(),
    eventId: z.uuid(),
    holdId: z.uuid(),
    accountId: z.uuid(),
    email: z.string(),
    status: z.enum(ORDER_STATUSES),
    totalCents: z.number(),
    currency: z.string(),
    refundedCents: z.number().openapi({ description: "Refunded so far: the total once refunded or cancelled; less after a partial refund made in the Stripe dashboard (the tickets stay valid)." }),
    dispute: z
      .object({ reason: z.string(), status: z.string() })
      .nullable()
      .openapi({ description: "The cardholder's dispute as Stripe last reported it. A chargeback's order is `disputed` and its tickets void; an inquiry (status `warning_needs_response`, `warning_under_review` or `warning_closed`: the bank asked, no money was withdrawn) leaves the order `confirmed` and its tickets valid unless it escalates. Null if never disputed." }),
    liveTickets: z.number(),
    createdAt: z.string(),
  })
  .openapi("Order");

/** What one call to cancel an event answers: the orders it cancelled or failed, what is left, the waitlist entries closed. */
export const cancelReportSchema = z.object({
  eventId: z.uuid(),
  status: z.literal("cancelled"),
  ordersCancelled: z.number(),
  ordersFailed: z.number(),
  ordersRemaining: z.number(),
  waitlistClosed: z.number(),
});

const gatewayFailed = jsonResponse(errorSchema, "`refund_failed`: the payment gateway did not refund; nothing else changed, try again.");

refunds.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/orders/{orderId}/refund",
    summary: "Refund an order in full",
    description:
      "Refunds the payment through the gateway (once, whatever the retries), voids the tickets, returns the places to the inventory and offers them to the waitlist. Refunding again returns the order unchanged.",
    request: { params: z.object({ orderId: pathId("orderId") }) },
    responses: {
      200: jsonResponse(z.object({ order: orderSchema, waitlistOffers: z.number() }), "The refunded order, and how many waitlist offers its places made."),
      ...errorResponses(400, 401, 404),
      502: gatewayFailed,
    },
  }),
  async (c) => {
    const { orderId } = c.req.valid("param");
    const before = await orderView(c.var.db, orderId);
    const { order, waitlist: served } = await refundOrder(workContext(c), { organizerId: c.var.organizer.id, orderId });
    const waitlistOffers = served?.offered ?? 0;
    // A refund goes through the payment gateway before Postgres, in steps that each commit: its row follows them.
    await appendAudit(c.var.db, auditActor(c), { targetId: orderId, eventId: order.eventId, before, after: { order, waitlistOffers } });
    return c.json({ order, waitlistOffers }, 200);
  },
);

refunds.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/events/{id}/cancel",
    summary: "Cancel an event and refund its orders",
    description:
      `Stops all holds at once and closes the waitlist, then refunds and cancels up to \`batchSize\` (default ${DEFAULT_CANCEL_BATCH}) confirmed orders. ` +
      "Call again while `ordersRemaining` is above 0 (the cron also continues, a batch a minute).",
    request: {
      params: idParam,
      query: z.object({ batchSize: z.coerce.number().int().min(1).max(MAX_CANCEL_BATCH).optional() }),
    },
    responses: {
      200: jsonResponse(cancelReportSchema, "What this call did, and what is left."),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const before = await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    const report = await cancelEvent(workContext(c), { organizerId: c.var.organizer.id, eventId: id, batchSize: c.req.valid("query").batchSize });
    // Cancelling refunds through the gateway in batches, each committing on its own: its row follows them.
    await appendAudit(c.var.db, auditActor(c), { targetId: id, eventId: id, before: { status: before.status }, after: report });
    return c.json(report, 200);
  },
);

refunds.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/events/{id}/orders",
    summary: "An event's orders, newest first",
    request: {
      params: idParam,
      query: z.object({
        limit: z.coerce.number().int().min(1).max(MAX_ORDERS_PAGE).default(50),
        cursor: z.string().min(1).max(200).optional().openapi({ description: "The previous page's nextCursor." }),
        status: z.enum(ORDER_STATUSES).optional(),
        q: z
          .string()
          .trim()
          .min(1)
          .max(MAX_ORDER_SEARCH)
          .optional()
          .openapi({ description: "Search: a buyer's email (whole address, any case), or the start of an order id (hex digits and dashes). Anything else is a 400." }),
      }),
    },
    responses: {
      200: jsonResponse(z.object({ orders: z.array(orderSchema), nextCursor: z.string().nullable() }), "One page of orders."),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const query = c.req.valid("query");
    const page = await listOrders(c.var.db, { organizerId: c.var.organizer.id, eventId: c.req.valid("param").id, limit: query.limit, cursor: query.cursor, status: query.status, q: query.q });
    return c.json(page, 200);
  },
);
