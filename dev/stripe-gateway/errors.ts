/** Stripe's error answers: `{ error: { type, code?, decline_code?, message, param?, ... } }`. */
import type { ApiResult } from "./exchange.ts";
import type { PaymentIntentObject } from "./objects.ts";

/** Stripe's error body. */
export type ErrorBody = { type: string; message: string; code?: string; param?: string; [field: string]: unknown };

/** An invalid request, answered before (or instead of) executing: never saved for an idempotency key. */
export class InvalidRequest extends Error {
  constructor(
    readonly status: number,
    readonly error: ErrorBody,
  ) {
    super(error.message);
  }
}

/** A 400 `invalid_request_error`. */
export function invalid(message: string, extra: Omit<ErrorBody, "type" | "message"> = {}): InvalidRequest {
  return new InvalidRequest(400, { type: "invalid_request_error", message, ...extra });
}

/** A 404 `resource_missing` for the object `id` of `kind`, named by `param`. */
export function missing(kind: string, id: string, param: string): InvalidRequest {
  return new InvalidRequest(404, { type: "invalid_request_error", code: "resource_missing", param, message: `No such ${kind}: '${id}'` });
}

/** A 400 `payment_intent_unexpected_state`, with the intent as it stands. */
export function unexpectedState(message: string, intent: PaymentIntentObject): InvalidRequest {
  return new InvalidRequest(400, { type: "invalid_request_error", code: "payment_intent_unexpected_state", message, payment_intent: structuredClone(intent) });
}

/** An error answer, never saved for an idempotency key. */
export function errorResult(status: number, error: ErrorBody): ApiResult {
  return { status, body: { error }, saved: false };
}
