/** One API request as the resources see it, and what they answer. */
import type { ChargeObject, DisputeObject, EventType, Metadata, PaymentIntentObject } from "./objects.ts";

/** A request's parameters, decoded from Stripe's form encoding (`metadata[hold_id]=...`): arrays stay objects keyed "0", "1", ... */
export type FormValue = string | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

/** The API request being served. */
export interface Exchange {
  requestId: string;
  method: string;
  path: string;
  idempotencyKey: string | null;
  apiVersion: string;
  /** The gateway's own origin as the caller reached it (for URLs it hands out, e.g. the 3-D Secure challenge). */
  origin?: string;
}

/** A response an endpoint produced. Like Stripe, only responses of endpoints that began executing are saved for a key. */
export interface ApiResult {
  status: number;
  body: unknown;
  saved: boolean;
}

/** A 200 with `object`, saved for the request's idempotency key. */
export function ok(object: unknown): ApiResult {
  return { status: 200, body: object, saved: true };
}

/**
 * Raises an event (sent as a webhook) about `object`, caused by `exchange`.
 * `subjectMetadata` is what faults and inspection match the event by when
 * the object's own metadata is not its PaymentIntent's (a dispute's).
 */
export type EmitEvent = (
  type: EventType,
  object: PaymentIntentObject | ChargeObject | DisputeObject,
  exchange: Exchange,
  previousAttributes?: Record<string, unknown>,
  subjectMetadata?: Metadata,
) => void;
