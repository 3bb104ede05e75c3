/** Fans paying for their holds (checkout/payments.ts). */
import { z } from "@hono/zod-openapi";
import { ApiError } from "../../../core/errors";
import { workContext } from "../../app-env";
import { latestPayment, payForHold } from "../../checkout/payments";
import { requireFan } from "../../middleware/require-fan";
import { errorResponses, fanRoute, holdParams, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const payments = routeGroup();

/** A payment on the wire, as both payment routes answer it. */
export const paymentSchema = z
  .object({
    paymentId: z.uuid(),
    holdId: z.uuid(),
    attempt: z.number(),
    status: z.enum(["pending", "unknown", "requires_action", "succeeded", "failed", "canceled", "refunding", "refunded"]).openapi({
      description:
        "refunding: the payment succeeded after the hold lapsed and its seats were gone, so it is being refunded in full (the gateway has not confirmed the refund yet); it ends refunded. No tickets come of it.",
    }),
    amountCents: z.number(),
    currency: z.string(),
    retryUntil: z.string().nullable(),
    lastError: z.string().nullable(),
    nextAction: z
      .object({ type: z.literal("use_stripe_sdk"), clientSecret: z.string() })
      .nullable()
      .openapi({ description: "Set while status is requires_action: pass clientSecret to Stripe.js's handleNextAction to run the card's 3-D Secure challenge." }),
  })
  .openapi("Payment");

payments.use("/events/:id/holds/:holdId/payment", requireFan());

payments.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/holds/{holdId}/payment",
    summary: "Pay for a live hold",
    description:
      "paymentMethod is a PaymentMethod id from Stripe.js's createPaymentMethod; a free hold (total 0) needs none, any other answers 400 `payment_method_required`. 200: paid (tickets follow by email and in /api/me/tickets); a free hold (total 0) is confirmed without charging anything. 402: declined — try another card before retryUntil, if set; lastError `refused: <code>` (an amount under the gateway's minimum, say) means the gateway would not take the payment at all, and the hold is released at once. 202 with status requires_action: the card needs its 3-D Secure challenge — run stripe.handleNextAction({ clientSecret: nextAction.clientSecret }), then poll GET; the hold stays yours until it expires. 202 otherwise: the gateway's answer is not known yet — poll GET for the outcome. 409 `event_cancelled`: the organizer cancelled the event; nothing is charged.",
    request: {
      params: holdParams,
      body: jsonBody(
        z.strictObject({
          paymentMethod: z
            .string()
            .min(3)
            .max(200)
            .regex(/^pm_[A-Za-z0-9_]+$/, "a payment method id (pm_...)")
            .optional()
            .openapi({ description: "Required unless the hold is free (total 0): a free hold asks for no card." }),
        }),
      ),
    },
    responses: {
      200: jsonResponse(z.object({ payment: paymentSchema }), "Paid."),
      202: jsonResponse(z.object({ payment: paymentSchema }), "Processing."),
      402: jsonResponse(z.object({ payment: paymentSchema }), "Declined."),
      ...errorResponses(400, 401, 404, 409),
    },
  }),
  async (c) => {
    const { id, holdId } = c.req.valid("param");
    const { status, payment } = await payForHold(workContext(c), {
      eventId: id,
      holdId,
      accountId: c.var.fan.accountId,
      paymentMethod: c.req.valid("json").paymentMethod,
    });
    if (status === 402) return c.json({ payment }, 402);
    if (status === 202) return c.json({ payment }, 202);
    return c.json({ payment }, 200);
  },
);

payments.openapi(
  fanRoute({
    method: "get",
    path: "/events/{id}/holds/{holdId}/payment",
    summary: "The latest payment for a hold",
    request: { params: holdParams },
    responses: { 200: jsonResponse(z.object({ payment: paymentSchema }), "The payment."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { holdId } = c.req.valid("param");
    const payment = await latestPayment(c.var.db, c.env, holdId, c.var.fan.accountId);
    if (!payment) throw new ApiError(404, "payment_not_found", "No payment for that hold yet.");
    return c.json({ payment }, 200);
  },
);
