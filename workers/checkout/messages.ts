/**
 * Messages on the checkout queues, validated on the way in (a queue message is
 * untrusted input like any other).
 */
import { z } from "zod";

/** A paid hold whose places the inventory marked sold: the consumer writes it to Postgres. */
export const confirmedSaleSchema = z.object({
  kind: z.literal("sale"),
  holdId: z.uuid(),
  eventId: z.uuid(),
  accountId: z.uuid(),
  /** Our payments row and the gateway's PaymentIntent (none for a free order). */
  paymentId: z.uuid(),
  providerPaymentId: z.string().min(1).nullable(),
  amountCents: z.number().int().min(0),
  currency: z.string().regex(/^[A-Z]{3}$/),
  items: z
    .array(
      z.object({
        seatIndex: z.number().int().min(0).nullable(),
        /** Required for general admission; for a seat the consumer looks it up. */
        sectionId: z.uuid().nullable(),
        quantity: z.number().int().min(1),
        priceCents: z.number().int().min(0),
      }),
    )
    .min(1),
  confirmedAt: z.number().int(),
});

/** A confirmed sale. */
export type ConfirmedSale = z.infer<typeof confirmedSaleSchema>;

/** An order whose tickets should be delivered (email with QR codes). */
export const ticketDeliverySchema = z.object({
  kind: z.literal("delivery"),
  orderId: z.uuid(),
});

/** A delivery request. */
export type TicketDelivery = z.infer<typeof ticketDeliverySchema>;
