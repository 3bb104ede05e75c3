/** The organizer-webhooks queue's message: which delivery to attempt (everything else is read from Postgres). */
import { z } from "zod";

export const webhookMessageSchema = z.object({ kind: z.literal("webhook"), deliveryId: z.uuid() });

/** One `organizer-webhooks` (or its dead-letter queue's) message. */
export type WebhookMessage = z.infer<typeof webhookMessageSchema>;
