/** The Worker's entry: composes the app, the queue consumers and the cron, and exports the Durable Objects. */
import { createApp } from "./app";
import { runScheduledJobs } from "./checkout/cron";
import { handleDeliveryBatch } from "./checkout/delivery";
import { handleDeadLetters, handleSalesBatch } from "./checkout/sales-consumer";
import { admin } from "./routes/admin";
import { checkout } from "./routes/checkout";
import { fans } from "./routes/fans";
import { ops } from "./routes/ops";
import { tickets } from "./routes/tickets";
import { waitlist } from "./routes/waitlist";
import { waitingRoom } from "./routes/waiting-room";
import { webhooks } from "./routes/webhooks";
import { wellKnown } from "./routes/well-known";
import { log } from "../core/logger";

export { EventInventory } from "../durable-objects/event-inventory";
export { SeatMapFeed } from "../durable-objects/seat-map-feed";
export { WaitingRoom } from "../durable-objects/waiting-room";

const app = createApp((root) => {
  root.route("/api", fans);
  root.route("/api", waitingRoom);
  root.route("/api", checkout);
  root.route("/api", tickets);
  root.route("/api", waitlist);
  root.route("/admin", admin);
  root.route("/webhooks", webhooks);
  root.route("/ops", ops);
  root.route("/.well-known", wellKnown);
});

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    if (batch.queue === "ticket-sales") return handleSalesBatch(batch, env);
    if (batch.queue === "ticket-delivery") return handleDeliveryBatch(batch, env);
    if (batch.queue === "ticket-dead-letters") return handleDeadLetters(batch, env);
    log.error("unknown_queue", { queue: batch.queue });
    batch.retryAll();
  },
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(runScheduledJobs(env, (promise) => ctx.waitUntil(promise), controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
