/** The payment gateway's webhooks (Stripe, signature verified), mounted at /webhooks. */
import { ApiError } from "../../core/errors";
import { workContext } from "../app-env";
import { verifyWebhook } from "../checkout/gateway";
import { handleWebhookEvent } from "../checkout/payments";
import { handleChargeEvent, isChargeEvent } from "../refunds/gateway-events";
import { routeGroup } from "./route-group";

export const webhooks = routeGroup();

webhooks.post("/stripe", async (c) => {
  const signature = c.req.header("Stripe-Signature");
  if (!signature) throw new ApiError(400, "missing_signature", "Stripe-Signature header is required.");
  const rawBody = await c.req.text();
  let event;
  try {
    event = await verifyWebhook(c.env, rawBody, signature);
  } catch {
    throw new ApiError(400, "invalid_signature", "The webhook signature does not match.");
  }
  // Refunds and disputes return orders; payment_intent.* settle payments; anything else is acknowledged.
  if (isChargeEvent(event)) await handleChargeEvent(workContext(c), event);
  else await handleWebhookEvent(workContext(c), event);
  return c.json({ received: true }, 200);
});
