/**
 * What the gateway records for tests to inspect (`charges()`,
 * `webhooks()`, `requests()` and their `GET /__...` routes), and the filters
 * that narrow them.
 */
import type { FaultMode } from "./faults.ts";
import type { Metadata } from "./objects.ts";

/** Narrows an inspection list. Every given field must match; `metadata` pairs must all be present. */
export interface RecordFilter {
  paymentIntent?: string;
  idempotencyKey?: string;
  /** Webhooks: the event type. */
  type?: string;
  metadata?: Record<string, string>;
}

/** One charge attempt. `idempotencyKey` is the key of the request that attempted it. */
export interface ChargeAttempt {
  id: string;
  paymentIntent: string;
  amount: number;
  currency: string;
  status: "succeeded" | "failed";
  captured: boolean;
  amountRefunded: number;
  declineCode: string | null;
  idempotencyKey: string | null;
  requestId: string;
  metadata: Record<string, string>;
  created: number;
}

/** One delivery of an event. `payload` is the exact body signed; `signature` the header of the last attempt. */
export interface WebhookDelivery {
  id: string;
  eventId: string;
  type: string;
  paymentIntent: string | null;
  metadata: Record<string, string>;
  idempotencyKey: string | null;
  status: "held" | "pending" | "delivered" | "failed" | "dropped" | "no_endpoint";
  duplicate: boolean;
  attempts: { at: number; status?: number; error?: string }[];
  payload: string;
  signature: string;
}

/** One API request and what became of it. */
export interface RequestRecord {
  requestId: string;
  method: string;
  path: string;
  idempotencyKey: string | null;
  paymentIntent: string | null;
  metadata: Record<string, string>;
  /** The HTTP status sent, or what happened instead. */
  outcome: number | "in_progress" | "hanging" | "hung" | "lost";
  replayed: boolean;
  fault: FaultMode | null;
}

/** Whether a record passes `filter`. */
export function matchesFilter(record: { paymentIntent?: string | null; idempotencyKey?: string | null; type?: string; metadata: Metadata }, filter: RecordFilter): boolean {
  if (filter.paymentIntent !== undefined && record.paymentIntent !== filter.paymentIntent) return false;
  if (filter.idempotencyKey !== undefined && record.idempotencyKey !== filter.idempotencyKey) return false;
  if (filter.type !== undefined && record.type !== filter.type) return false;
  return Object.entries(filter.metadata ?? {}).every(([key, value]) => record.metadata[key] === value);
}

/** `?payment_intent=&idempotency_key=&type=&metadata[key]=` as a filter. */
export function filterFromQuery(query: URLSearchParams): RecordFilter {
  const filter: RecordFilter = {};
  const paymentIntent = query.get("payment_intent");
  const idempotencyKey = query.get("idempotency_key");
  const type = query.get("type");
  if (paymentIntent !== null) filter.paymentIntent = paymentIntent;
  if (idempotencyKey !== null) filter.idempotencyKey = idempotencyKey;
  if (type !== null) filter.type = type;
  for (const [key, value] of query) {
    const name = /^metadata\[(.+)\]$/.exec(key)?.[1];
    if (name !== undefined) filter.metadata = { ...filter.metadata, [name]: value };
  }
  return filter;
}
