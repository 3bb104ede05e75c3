/** The Worker's entry: composes the app, the queue consumers and the cron, and exports the Durable Objects. */
import { log } from "../core/logger";
import { app } from "./app";
import { handleDeadLetters, handleSalesBatch } from "./checkout/sales-consumer";
import { handleWebhookBatch, handleWebhookDeadLetters } from "./organizers/webhooks/consumer";
import { runScheduledJobs } from "./scheduled";
import { handleDeliveryBatch } from "./tickets/delivery";

export { EventInventory } from "../durable-objects/event-inventory";
export { SeatMapFeed } from "../durable-objects/seat-map-feed";
export { WaitingRoom } from "../durable-objects/waiting-room";
export { LobbyShard } from "../durable-objects/waiting-room/lobby-shard";

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    if (batch.queue === "ticket-sales") return handleSalesBatch(batch, env);
    if (batch.queue === "ticket-delivery") return handleDeliveryBatch(batch, env);
    if (batch.queue === "ticket-dead-letters") return handleDeadLetters(batch, env);
    if (batch.queue === "organizer-webhooks") return handleWebhookBatch(batch, env);
    if (batch.queue === "organizer-webhooks-dead") return handleWebhookDeadLetters(batch, env);
    log.error("unknown_queue", { queue: batch.queue });
    batch.retryAll();
  },
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(runScheduledJobs(env, (promise) => ctx.waitUntil(promise), controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
