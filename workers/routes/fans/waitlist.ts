/**
 * Two route groups:
 * - `waitlist` (fans, mounted at /api): join a sold-out event's waitlist, see
 *   your entry and offer, leave;
 * - `refundsAdmin` (organizers, mounted at /admin): refund an order, cancel an
 *   event, list an event's orders. Each route authenticates the organizer's
 *   API key itself (or reuses the admin group's check when it ran first).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { routeGroup, type AppEnv } from "../app";
import { ApiError, unauthorized } from "../../core/errors";
import { requireFan } from "../fan-auth";
import { holdJson, holdSchema } from "../inventory/http";
import { errorResponses, errorSchema, jsonBody, jsonResponse } from "../openapi";
import { organizerForApiKey } from "../organizers";
import { cancelEvent, DEFAULT_CANCEL_BATCH, listOrders, MAX_CANCEL_BATCH, MAX_ORDERS_PAGE, ORDER_STATUSES, refundOrder } from "../refunds";
import { joinWaitlist, leaveWaitlist, MAX_WAITLIST_QUANTITY, myWaitlistEntry, type WaitlistContext, type WaitlistEntryView } from "../waitlist";

function waitlistContext(c: Context<AppEnv>): WaitlistContext {
  return { env: c.env, db: c.var.db, keepAlive: (promise) => c.executionCtx.waitUntil(promise) };
}

const eventParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

// ------------------------------------------------------------------ fans (/api)

export const waitlist = routeGroup();

waitlist.use("/events/:id/waitlist", requireFan);

const entrySchema = z
  .object({
    entryId: z.uuid(),
    eventId: z.uuid(),
    quantity: z.number(),
    priceTier: z.string().nullable(),
    status: z.enum(["waiting", "offered", "fulfilled", "expired", "cancelled"]),
    position: z.number().nullable().openapi({ description: "Your place among the fans waiting (1 = next); null unless waiting." }),
    joinedAt: z.string(),
    offer: z
      .object({ hold: holdSchema, paymentPath: z.string().openapi({ description: "POST your payment method here, as for any hold." }) })
      .nullable()
      .openapi({ description: "Places held for you: pay before hold.expiresAt, or they pass to the next fan." }),
  })
  .openapi("WaitlistEntry");

function entryJson(entry: WaitlistEntryView): z.infer<typeof entrySchema> {
  return { ...entry, offer: entry.offer ? { hold: holdJson(entry.offer.hold), paymentPath: entry.offer.paymentPath } : null };
}

waitlist.openapi(
  createRoute({
    method: "post",
    path: "/events/{id}/waitlist",
    summary: "Join a sold-out event's waitlist",
    description:
      "Only when the event (or the price tier) has fewer places on sale than you ask for: 409 `not_sold_out` otherwise. One open entry per account (409 `already_waiting`). " +
      "When places return, the next fans in line get an offer: a hold in their name (the event's hold TTL) and an email; pay it like any hold.",
    security: [{ fanSession: [] }],
    request: {
      params: eventParam,
      body: jsonBody(z.strictObject({ quantity: z.number().int().min(1).max(MAX_WAITLIST_QUANTITY), priceTier: z.string().trim().min(1).max(40).optional() })),
    },
    responses: { 201: jsonResponse(z.object({ entry: entrySchema }), "You are in line."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const entry = await joinWaitlist(waitlistContext(c), { eventId: id, accountId: c.var.fan.accountId, quantity: body.quantity, priceTier: body.priceTier });
    c.header("Cache-Control", "no-store");
    return c.json({ entry: entryJson(entry) }, 201);
  },
);

waitlist.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/waitlist",
    summary: "Your waitlist entry at this event: its place in line and any offer",
    security: [{ fanSession: [] }],
    request: { params: eventParam },
    responses: { 200: jsonResponse(z.object({ entry: entrySchema }), "Your latest entry."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const entry = await myWaitlistEntry(waitlistContext(c), { eventId: c.req.valid("param").id, accountId: c.var.fan.accountId });
    if (!entry) throw new ApiError(404, "not_waiting", "You have not joined this event's waitlist.");
    c.header("Cache-Control", "no-store");
    return c.json({ entry: entryJson(entry) }, 200);
  },
);

waitlist.openapi(
  createRoute({
    method: "delete",
    path: "/events/{id}/waitlist",
    summary: "Leave the waitlist (an open offer is released to the next fan)",
    security: [{ fanSession: [] }],
    request: { params: eventParam },
    responses: { 200: jsonResponse(z.object({ entry: entrySchema }), "The closed entry."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const entry = await leaveWaitlist(waitlistContext(c), { eventId: c.req.valid("param").id, accountId: c.var.fan.accountId });
    if (!entry) throw new ApiError(404, "not_waiting", "You are not on this event's waitlist.");
    c.header("Cache-Control", "no-store");
    return c.json({ entry: entryJson(entry) }, 200);
  },
);

// ------------------------------------------------------------------ organizers (/admin)

export const refundsAdmin = routeGroup();

/** The organizer's API key, checked unless the admin group's middleware already did. */
const requireOrganizer: MiddlewareHandler<AppEnv> = async (c, next) => {
  const known: { id: string; name: string } | undefined = c.get("organizer");
  if (!known) {
    const match = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "");
    if (!match?.[1]) throw unauthorized();
    const organizer = await organizerForApiKey(c.var.db, match[1]);
    if (!organizer) throw unauthorized("That API key is unknown or revoked.");
    c.set("organizer", organizer);
  }
  c.header("Cache-Control", "no-store");
  return next();
};

refundsAdmin.use("/orders/:orderId/refund", requireOrganizer);
refundsAdmin.use("/events/:id/cancel", requireOrganizer);
refundsAdmin.use("/events/:id/orders", requireOrganizer);

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
    liveTickets: z.number(),
    createdAt: z.string(),
  })
  .openapi("Order");

const gatewayFailed = jsonResponse(errorSchema, "`refund_failed`: the payment gateway did not refund; nothing else changed, try again.");

refundsAdmin.openapi(
  createRoute({
    method: "post",
    path: "/orders/{orderId}/refund",
    summary: "Refund an order in full",
    description:
      "Refunds the payment through the gateway (once, whatever the retries), voids the tickets, returns the places to the inventory and offers them to the waitlist. Refunding again returns the order unchanged.",
    request: { params: z.object({ orderId: z.uuid().openapi({ param: { name: "orderId", in: "path" } }) }) },
    responses: {
      200: jsonResponse(z.object({ order: orderSchema, waitlistOffers: z.number() }), "The refunded order, and how many waitlist offers its places made."),
      ...errorResponses(400, 401, 404),
      502: gatewayFailed,
    },
  }),
  async (c) => {
    const { order, waitlist: served } = await refundOrder(waitlistContext(c), { organizerId: c.var.organizer.id, orderId: c.req.valid("param").orderId });
    return c.json({ order, waitlistOffers: served?.offered ?? 0 }, 200);
  },
);

refundsAdmin.openapi(
  createRoute({
    method: "post",
    path: "/events/{id}/cancel",
    summary: "Cancel an event and refund its orders",
    description:
      `Stops all holds at once and closes the waitlist, then refunds and cancels up to \`batchSize\` (default ${DEFAULT_CANCEL_BATCH}) confirmed orders. ` +
      "Call again while `ordersRemaining` is above 0 (the cron also continues, a batch a minute).",
    request: {
      params: eventParam,
      query: z.object({ batchSize: z.coerce.number().int().min(1).max(MAX_CANCEL_BATCH).optional() }),
    },
    responses: {
      200: jsonResponse(
        z.object({
          eventId: z.uuid(),
          status: z.literal("cancelled"),
          ordersCancelled: z.number(),
          ordersFailed: z.number(),
          ordersRemaining: z.number(),
          waitlistClosed: z.number(),
        }),
        "What this call did, and what is left.",
      ),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const report = await cancelEvent(waitlistContext(c), { organizerId: c.var.organizer.id, eventId: c.req.valid("param").id, batchSize: c.req.valid("query").batchSize });
    return c.json(report, 200);
  },
);

refundsAdmin.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/orders",
    summary: "An event's orders, newest first",
    request: {
      params: eventParam,
      query: z.object({
        limit: z.coerce.number().int().min(1).max(MAX_ORDERS_PAGE).default(50),
        cursor: z.string().min(1).max(200).optional().openapi({ description: "The previous page's nextCursor." }),
        status: z.enum(ORDER_STATUSES).optional(),
      }),
    },
    responses: {
      200: jsonResponse(z.object({ orders: z.array(orderSchema), nextCursor: z.string().nullable() }), "One page of orders."),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const query = c.req.valid("query");
    const page = await listOrders(c.var.db, { organizerId: c.var.organizer.id, eventId: c.req.valid("param").id, limit: query.limit, cursor: query.cursor, status: query.status });
    return c.json(page, 200);
  },
);

