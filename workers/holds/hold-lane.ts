/**
 * Holds of concurrent requests for one hot event, coalesced into RPC batches
 * to its `EventInventory` object (see `HoldLane`).
 */
import type { HoldRequest, HoldResult } from "../../core/holds/contract";

/** Most holds one RPC carries. */
const MAX_BATCH = 64;
/**
 * A request waiting on another request's batch stops waiting after this and
 * sends its hold itself: its request id makes a second delivery harmless.
 */
const HANDOFF_TIMEOUT_MS = 3_000;
/** How long one request keeps sending batches for others (in its waitUntil) before handing over. */
const DRAIN_BUDGET_MS = 5_000;
/** Once the expected time has passed, a waiter looks for its result after 1 ms, then 2, 4 and at most every 8 ms. */
const POLL_MS = 1;
const MAX_POLL_MS = 8;

type Wake = { kind: "result"; result: HoldResult } | { kind: "lead" } | { kind: "alone" };
/** Sends a batch of holds to the object: one result per request, in order. */
export type Send = (requests: HoldRequest[]) => Promise<HoldResult[]>;
/** A request's `waitUntil`. */
export type KeepAlive = (promise: Promise<unknown>) => void;

interface Waiter {
  request: HoldRequest;
  /** Set by the sender: the waiter's result, or what it should do instead. */
  woken?: Wake;
}

/**
 * Coalesces the holds of concurrent requests for one event into RPC batches,
 * which the object applies hold by hold (each all-or-nothing): one request
 * event in the object per batch instead of per hold.
 *
 * The first request with nothing in flight sends its hold at once; holds
 * arriving meanwhile queue. When its batch returns, that request answers its
 * own fan and, in its `waitUntil`, goes on sending the queued holds in
 * batches, leaving each waiter its result, until the queue is empty.
 *
 * Only the sender does I/O, and a waiter resumes only on a timer of its own:
 * workerd ties I/O objects (and, under some compatibility flags, promise
 * continuations) to the request that created them, so a waiter must never be
 * resumed by another request's promise. It sleeps about as long as a batch
 * takes, then looks again at growing intervals (at most MAX_POLL_MS). If no
 * result comes within HANDOFF_TIMEOUT_MS (the sender's request was
 * cancelled), it sends its hold itself: the request id makes that safe. After DRAIN_BUDGET_MS a sender
 * hands the queue to its oldest waiter.
 */
export class HoldLane {
  private readonly queue: Waiter[] = [];
  private busySince: number | undefined;
  /** Recent time one batch takes (moving average). */
  private batchMs = 5;

  /** HANDOFF_TIMEOUT_MS unless a test shortens it. */
  constructor(private readonly handoffTimeoutMs = HANDOFF_TIMEOUT_MS) {}

  async hold(send: Send, keepAlive: KeepAlive, request: HoldRequest): Promise<HoldResult> {
    const me: Waiter = { request };
    if (this.busySince === undefined) return this.lead(send, keepAlive, me);
    this.queue.push(me);
    const deadline = Date.now() + this.handoffTimeoutMs;
    // The batch in flight finishes, then ours is sent and comes back.
    let wait = Math.max(this.batchMs - (Date.now() - this.busySince), 0) + this.batchMs;
    for (let poll = POLL_MS; !me.woken && Date.now() < deadline; poll = Math.min(poll * 2, MAX_POLL_MS)) {
      await sleep(Math.min(Math.max(wait, POLL_MS), 50));
      wait = poll;
    }
    const outcome = me.woken;
    if (outcome?.kind === "result") return outcome.result;
    if (outcome?.kind === "lead") return this.lead(send, keepAlive, me);
    this.drop(me);
    // No sender came back in time (its request ended): the next hold starts afresh.
    if (outcome === undefined && this.busySince !== undefined && Date.now() - this.busySince >= this.handoffTimeoutMs) this.busySince = undefined;
    return this.alone(send, request);
  }

  private async lead(send: Send, keepAlive: KeepAlive, me: Waiter): Promise<HoldResult> {
    this.drop(me);
    const startedAt = Date.now();
    const batch = [me, ...this.queue.splice(0, MAX_BATCH - 1)];
    let results: HoldResult[];
    try {
      results = await this.send(send, batch);
    } catch (error) {
      this.stopSending(batch.slice(1));
      throw error;
    }
    this.deliver(batch.slice(1), results.slice(1));
    if (this.queue.length > 0) keepAlive(this.drain(send, startedAt));
    else this.busySince = undefined;
    const mine = results[0];
    if (!mine) throw new Error("the inventory answered no result");
    return mine;
  }

  /** Sends the queued holds in batches until none is left (or the budget is spent: then hands over). */
  private async drain(send: Send, startedAt: number): Promise<void> {
    while (this.queue.length > 0) {
      if (Date.now() - startedAt >= DRAIN_BUDGET_MS) {
        const next = this.queue[0];
        if (next) next.woken = { kind: "lead" };
        this.busySince = Date.now();
        return;
      }
      const batch = this.queue.splice(0, MAX_BATCH);
      let results: HoldResult[];
      try {
        results = await this.send(send, batch);
      } catch {
        this.stopSending(batch);
        return;
      }
      this.deliver(batch, results);
    }
    this.busySince = undefined;
  }

  private async send(send: Send, batch: Waiter[]): Promise<HoldResult[]> {
    const started = Date.now();
    this.busySince = started;
    const results = await send(batch.map((waiter) => waiter.request));
    this.batchMs = 0.8 * this.batchMs + 0.2 * (Date.now() - started);
    return results;
  }

  private deliver(waiters: Waiter[], results: HoldResult[]): void {
    waiters.forEach((waiter, i) => {
      const result = results[i];
      waiter.woken = result ? { kind: "result", result } : { kind: "alone" };
    });
  }

  /** A batch failed: its waiters send their own holds, and the oldest queued one sends the next batch. */
  private stopSending(batch: Waiter[]): void {
    for (const waiter of batch) waiter.woken = { kind: "alone" };
    const next = this.queue[0];
    if (next) {
      next.woken = { kind: "lead" };
      this.busySince = Date.now();
    } else {
      this.busySince = undefined;
    }
  }

  private async alone(send: Send, request: HoldRequest): Promise<HoldResult> {
    const [result] = await send([request]);
    if (!result) throw new Error("the inventory answered no result");
    return result;
  }

  private drop(waiter: Waiter): void {
    const at = this.queue.indexOf(waiter);
    if (at >= 0) this.queue.splice(at, 1);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
