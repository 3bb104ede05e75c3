/**
 * Injected faults: what tests can ask for (`POST /__faults`, `addFault`),
 * and the book that applies them to the next matching requests, charge
 * attempts and events.
 */
import { z } from "zod";
import type { Exchange } from "./exchange.ts";
import type { Metadata } from "./objects.ts";
import { DECLINE_CODES } from "./test-cards.ts";

export const FAULT_MODES = [
  "decline",
  "hang",
  "error500",
  "lose_response",
  "duplicate_webhook",
  "delay_webhook",
  "reorder_webhooks",
  "drop_webhook",
] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** Faults applied to an API request as it arrives. */
export const REQUEST_MODES = ["hang", "error500", "lose_response"] as const satisfies readonly FaultMode[];
/** Faults applied to an event as it is created. */
export const WEBHOOK_MODES = ["duplicate_webhook", "delay_webhook", "reorder_webhooks", "drop_webhook"] as const satisfies readonly FaultMode[];

export const FaultSpecSchema = z
  .strictObject({
    mode: z.enum(FAULT_MODES),
    /** How many matching requests, charge attempts or events it applies to. */
    count: z.number().int().min(1).max(1_000).default(1),
    match: z
      .strictObject({
        method: z.enum(["GET", "POST"]).optional(),
        /** The request path, or the path of the request that caused the event; `*` stands for one segment. */
        path: z.string().startsWith("/").optional(),
        /** The request's key, or the key of the request that caused the event. */
        idempotencyKey: z.string().optional(),
        paymentIntent: z.string().optional(),
        /** Every pair must be in the PaymentIntent's metadata (or the request's `metadata[...]`). */
        metadata: z.record(z.string(), z.string()).optional(),
        /** Events only. */
        eventType: z.string().optional(),
      })
      .default({}),
    /** hang: how long to hold the request at most (default 60 s). lose_response: hold this long before dropping. delay_webhook: send after this long instead of at flush. */
    delayMs: z.number().int().min(0).max(600_000).optional(),
    /** decline only: the decline (default generic_decline). */
    declineCode: z.enum(DECLINE_CODES).optional(),
  })
  .refine((spec) => spec.declineCode === undefined || spec.mode === "decline", { message: "declineCode goes with mode decline", path: ["declineCode"] })
  .refine((spec) => spec.mode !== "reorder_webhooks" || spec.count >= 2, { message: "reorder_webhooks needs count >= 2", path: ["count"] });

/**
 * A fault to inject. Request faults apply to the next `count` matching API
 * requests (retries included): `error500` answers a Stripe 500 `api_error`
 * without performing the action (it failed before the endpoint began, so
 * nothing is saved for the idempotency key); `hang` takes the idempotency
 * lock, then holds the request without performing it until the client gives
 * up (or `delayMs`), then closes the connection unanswered; `lose_response`
 * performs the action (state changes, events sent, result saved for the key)
 * and then closes the connection unanswered. `decline` applies to the next
 * `count` matching charge attempts, whatever the card. Webhook faults apply
 * to the next `count` matching events: `drop_webhook` never sends it,
 * `duplicate_webhook` sends it twice, `delay_webhook` holds it until flush (or
 * `delayMs`), `reorder_webhooks` holds `count` events and sends them in reverse.
 */
export type FaultSpec = z.input<typeof FaultSpecSchema>;
/** An injected fault; `remaining` counts down as it applies. */
export type Fault = z.output<typeof FaultSpecSchema> & { id: string; remaining: number };

/** What a fault's `match` is compared with: a request, or an event and the request that caused it. */
export interface FaultSubject {
  method: string;
  path: string;
  idempotencyKey: string | null;
  paymentIntent: string | null;
  metadata: Metadata;
  eventType?: string;
}

/** The request as a fault subject, before we know which PaymentIntent it concerns. */
export function requestSubject(exchange: Exchange): FaultSubject {
  return { method: exchange.method, path: exchange.path, idempotencyKey: exchange.idempotencyKey, paymentIntent: null, metadata: {} };
}

/** The active faults, oldest first. */
export class FaultBook {
  private readonly active: Fault[] = [];
  private nextId = 1;

  add(spec: z.output<typeof FaultSpecSchema>): Fault {
    const fault: Fault = { ...spec, id: `fault_${this.nextId++}`, remaining: spec.count };
    this.active.push(fault);
    return structuredClone(fault);
  }

  clear(id?: string): number {
    const removed = this.active.filter((fault) => id === undefined || fault.id === id);
    for (const fault of removed) this.active.splice(this.active.indexOf(fault), 1);
    return removed.length;
  }

  list(): Fault[] {
    return structuredClone(this.active);
  }

  /** Uses up one application of the oldest fault of one of `modes` that matches `subject`; returns it as it now stands. */
  take(modes: readonly FaultMode[], subject: FaultSubject): Fault | undefined {
    const fault = this.active.find((candidate) => modes.includes(candidate.mode) && faultMatches(candidate.match, subject));
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining === 0) this.active.splice(this.active.indexOf(fault), 1);
    return structuredClone(fault);
  }
}

function faultMatches(match: Fault["match"], subject: FaultSubject): boolean {
  if (match.method !== undefined && match.method !== subject.method) return false;
  if (match.path !== undefined && !pathMatches(match.path, subject.path)) return false;
  if (match.idempotencyKey !== undefined && match.idempotencyKey !== subject.idempotencyKey) return false;
  if (match.paymentIntent !== undefined && match.paymentIntent !== subject.paymentIntent) return false;
  if (match.eventType !== undefined && match.eventType !== subject.eventType) return false;
  return Object.entries(match.metadata ?? {}).every(([key, value]) => subject.metadata[key] === value);
}

function pathMatches(pattern: string, path: string): boolean {
  const patternSegments = pattern.split("/");
  const pathSegments = path.split("/");
  return patternSegments.length === pathSegments.length && patternSegments.every((segment, index) => segment === "*" || segment === pathSegments[index]);
}
