/** How inventory results look on the wire: refusals to HTTP errors, holds to JSON. */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "@hono/zod-openapi";
import { ApiError } from "../../core/errors";
import type { HoldResult, HoldView, InventoryFailure } from "../../core/holds/contract";

const FAILURE_STATUS: Record<InventoryFailure, ContentfulStatusCode> = {
  seat_taken: 409,
  sold_out: 409,
  over_limit: 409,
  too_fast: 429,
  hold_expired: 409,
  hold_not_found: 404,
  hold_confirmed: 409,
  invalid_seat: 400,
  not_on_sale: 409,
  not_sold: 409,
};

/** The hold of a successful result, or the refusal thrown as an `ApiError`. */
export function holdOrThrow(result: HoldResult): HoldView {
  if (result.ok) return result.hold;
  throw new ApiError(FAILURE_STATUS[result.reason], result.reason, result.message);
}

const seatRefSchema = z.object({
  seatIndex: z.number(),
  section: z.string(),
  row: z.string(),
  seat: z.string(),
  priceTier: z.string(),
  priceCents: z.number(),
});

/** A hold on the wire. */
export const holdSchema = z
  .object({
    holdId: z.uuid(),
    eventId: z.uuid(),
    status: z.enum(["live", "confirmed", "released", "expired", "refunded"]),
    expiresAt: z.string(),
    createdAt: z.string(),
    seats: z.array(seatRefSchema),
    generalAdmission: z.array(
      z.object({ sectionId: z.string(), section: z.string(), quantity: z.number(), priceTier: z.string(), priceCents: z.number() }),
    ),
    totalCents: z.number(),
  })
  .openapi("Hold");

/** A hold as JSON (ISO times, no account id). */
export function holdJson(hold: HoldView): z.infer<typeof holdSchema> {
  return {
    holdId: hold.holdId,
    eventId: hold.eventId,
    status: hold.status,
    expiresAt: new Date(hold.expiresAt).toISOString(),
    createdAt: new Date(hold.createdAt).toISOString(),
    seats: hold.seats,
    generalAdmission: hold.generalAdmission,
    totalCents: hold.totalCents,
  };
}

/** Base64 of a byte array (the availability bitmap). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
