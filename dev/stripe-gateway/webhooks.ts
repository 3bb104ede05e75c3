/**
 * Events and their webhook deliveries: each event POSTed to the endpoint,
 * signed exactly as Stripe signs them, retried when the endpoint fails, and
 * duplicated, delayed, reordered or dropped when a fault says so.
 */
import { createHmac } from "node:crypto";
import type { EmitEvent, Exchange } from "./exchange.ts";
import { requestSubject, WEBHOOK_MODES, type FaultBook } from "./faults.ts";
import { newId, unixNow } from "./ids.ts";
import type { Metadata, StripeEvent } from "./objects.ts";
import type { WebhookDelivery } from "./records.ts";
import { wakeableWait } from "./waits.ts";

const WEBHOOK_TIMEOUT_MS = 10_000;

/** Held until flush (or a `delayMs` timer), in creation order; a reorder group is released reversed. */
interface HeldDelivery {
  delivery: WebhookDelivery;
  group: string | undefined;
  /** Stops a `delayMs` timer and ends its wait. */
  stopTimer: (() => void) | undefined;
}

export class WebhookSender {
  private readonly deliveries: WebhookDelivery[] = [];
  private readonly held: HeldDelivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly waits = new Set<() => void>();
  private readonly aborted = new AbortController();
  /** First attempts go out one at a time, in order, so a healthy endpoint sees events in the order they happened. */
  private queue: Promise<void> = Promise.resolve();
  private nextId = 1;

  constructor(
    private readonly url: string | undefined,
    private readonly secret: string,
    private readonly retryDelaysMs: readonly number[],
    private readonly faults: FaultBook,
  ) {}

  /** Creates the event an API request caused and sends it. */
  readonly emit: EmitEvent = (type, object, exchange, previousAttributes, subjectMetadata) => {
    const event: StripeEvent = {
      id: newId("evt"),
      object: "event",
      api_version: exchange.apiVersion,
      created: unixNow(),
      data: { object: structuredClone(object), ...(previousAttributes ? { previous_attributes: previousAttributes } : {}) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: exchange.requestId, idempotency_key: exchange.idempotencyKey },
      type,
    };
    this.dispatch(event, exchange, subjectMetadata ?? object.metadata);
  };

  list(): WebhookDelivery[] {
    return structuredClone(this.deliveries);
  }

  async flush(): Promise<number> {
    const released = this.release(() => true);
    await this.settle();
    return released;
  }

  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  close(): void {
    this.aborted.abort();
    this.held.splice(0);
    for (const wake of this.waits) wake();
  }

  private dispatch(event: StripeEvent, exchange: Exchange, metadata: Metadata): void {
    const object = event.data.object;
    const paymentIntent = object.object === "payment_intent" ? object.id : object.payment_intent;
    const payload = JSON.stringify(event, null, 2);
    const record = (duplicate: boolean): WebhookDelivery => {
      const delivery: WebhookDelivery = {
        id: `whd_${this.nextId++}`,
        eventId: event.id,
        type: event.type,
        paymentIntent,
        metadata: { ...metadata },
        idempotencyKey: exchange.idempotencyKey,
        status: "pending",
        duplicate,
        attempts: [],
        payload,
        signature: this.sign(payload),
      };
      this.deliveries.push(delivery);
      return delivery;
    };
    const fault = this.faults.take(WEBHOOK_MODES, { ...requestSubject(exchange), paymentIntent, metadata, eventType: event.type });
    const delivery = record(false);
    switch (fault?.mode) {
      case "drop_webhook":
        delivery.status = "dropped";
        return;
      case "duplicate_webhook":
        this.send(delivery);
        this.send(record(true));
        return;
      case "delay_webhook":
        this.hold(delivery, undefined, fault.delayMs);
        return;
      case "reorder_webhooks":
        this.hold(delivery, fault.id, undefined);
        if (fault.remaining === 0) this.release((held) => held.group === fault.id);
        return;
      default:
        this.send(delivery);
    }
  }

  private hold(delivery: WebhookDelivery, group: string | undefined, delayMs: number | undefined): void {
    delivery.status = "held";
    const held: HeldDelivery = { delivery, group, stopTimer: undefined };
    this.held.push(held);
    if (delayMs === undefined) return;
    const timer = wakeableWait(delayMs, this.waits);
    held.stopTimer = timer.wake;
    // Tracked as in flight, so settle() waits for timed delays.
    this.track(
      timer.done.then((timedOut) => {
        if (timedOut) this.release((candidate) => candidate === held);
      }),
    );
  }

  /** Sends the held deliveries `which` selects: ungrouped ones in order, each reorder group reversed. */
  private release(which: (held: HeldDelivery) => boolean): number {
    const chosen = this.held.filter(which);
    for (const held of chosen) {
      this.held.splice(this.held.indexOf(held), 1);
      held.stopTimer?.();
    }
    const groups = new Map<string, WebhookDelivery[]>();
    for (const held of chosen) {
      if (held.group === undefined) {
        this.send(held.delivery);
        continue;
      }
      groups.set(held.group, [...(groups.get(held.group) ?? []), held.delivery]);
    }
    for (const group of groups.values()) for (const delivery of group.reverse()) this.send(delivery);
    return chosen.length;
  }

  private send(delivery: WebhookDelivery): void {
    if (this.url === undefined) {
      delivery.status = "no_endpoint";
      return;
    }
    const url = this.url;
    delivery.status = "pending";
    const first = this.queue.then(() => this.attempt(url, delivery));
    this.queue = first.then(() => undefined);
    this.track(
      first.then(async (delivered) => {
        for (const delay of this.retryDelaysMs) {
          if (delivered || this.aborted.signal.aborted) break;
          await this.wait(delay);
          delivered = await this.attempt(url, delivery);
        }
        delivery.status = delivered ? "delivered" : "failed";
      }),
    );
  }

  private async attempt(url: string, delivery: WebhookDelivery): Promise<boolean> {
    if (this.aborted.signal.aborted) return false;
    delivery.signature = this.sign(delivery.payload);
    const at = Date.now();
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": delivery.signature, "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
        body: delivery.payload,
        signal: AbortSignal.any([this.aborted.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]),
      });
      await response.body?.cancel();
      delivery.attempts.push({ at, status: response.status });
      return response.ok;
    } catch (error) {
      delivery.attempts.push({ at, error: error instanceof Error ? error.message : String(error) });
      return false;
    }
  }

  /** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`, as Stripe signs. */
  private sign(payload: string): string {
    const timestamp = unixNow();
    const signature = createHmac("sha256", this.secret).update(`${timestamp}.${payload}`).digest("hex");
    return `t=${timestamp},v1=${signature}`;
  }

  private async wait(ms: number): Promise<void> {
    await wakeableWait(ms, this.waits).done;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }
}
