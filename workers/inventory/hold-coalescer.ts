/**
 * Coalesces concurrent hold requests for one event, arriving at one Worker
 * isolate, into one RPC batch. The first request of an idle lane leads: it
 * sends every request waiting at that moment and hands each its result. While
 * a batch is in flight new requests wait; when it lands, the first waiter leads
 * the next batch from its own request context. At low load a batch is one
 * request and adds no delay; under load, one object call serves many holds.
 */

/** Largest batch per call (bounds the object's time per call). */
const MAX_BATCH = 64;
/** A lane stuck longer than this (a lost leader) is reset. */
const STUCK_MS = 10_000;

type Outcome<R> = { kind: "result"; value: R } | { kind: "error"; error: unknown } | { kind: "lead" };

interface Waiter<Q, R> {
  request: Q;
  wake: (outcome: Outcome<R>) => void;
}

interface Lane<Q, R> {
  busySince: number | undefined;
  waiting: Waiter<Q, R>[];
}

/** Batches requests per key; `send` delivers one batch and returns results in order. */
export class Coalescer<Q, R> {
  private readonly lanes = new Map<string, Lane<Q, R>>();

  constructor(private readonly maxBatch = MAX_BATCH) {}

  /**
   * Submits `request` under `key`. `send` is called from the context of a
   * request that is part of the batch; `keepAlive` lets the leader keep its
   * context alive until the batch lands (pass `ctx.waitUntil`).
   */
  async submit(key: string, request: Q, send: (batch: Q[]) => Promise<R[]>, keepAlive: (promise: Promise<unknown>) => void): Promise<R> {
    const lane = this.lane(key);
    let wake: (outcome: Outcome<R>) => void = () => undefined;
    const woken = new Promise<Outcome<R>>((resolve) => (wake = resolve));
    const me: Waiter<Q, R> = { request, wake };
    lane.waiting.push(me);
    let outcome: Outcome<R>;
    if (lane.busySince === undefined) {
      lane.busySince = Date.now();
      outcome = { kind: "lead" };
    } else {
      outcome = await woken;
    }
    if (outcome.kind === "result") return outcome.value;
    if (outcome.kind === "error") throw outcome.error;
    return this.lead(lane, me, send, keepAlive);
  }

  private async lead(lane: Lane<Q, R>, me: Waiter<Q, R>, send: (batch: Q[]) => Promise<R[]>, keepAlive: (promise: Promise<unknown>) => void): Promise<R> {
    const batch = lane.waiting.splice(0, this.maxBatch);
    if (!batch.includes(me)) batch.unshift(me); // a leader always rides in its own batch
    const delivery = send(batch.map((w) => w.request));
    keepAlive(delivery.catch(() => undefined));
    try {
      const results = await delivery;
      let mine: R | undefined;
      batch.forEach((waiter, i) => {
        const value = results[i] as R;
        if (waiter === me) mine = value;
        else waiter.wake({ kind: "result", value });
      });
      return mine as R;
    } catch (error) {
      for (const waiter of batch) if (waiter !== me) waiter.wake({ kind: "error", error });
      throw error;
    } finally {
      const next = lane.waiting[0];
      if (next) {
        lane.busySince = Date.now();
        next.wake({ kind: "lead" });
      } else {
        lane.busySince = undefined;
      }
    }
  }

  private lane(key: string): Lane<Q, R> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { busySince: undefined, waiting: [] };
      this.lanes.set(key, lane);
    } else if (lane.busySince !== undefined && Date.now() - lane.busySince > STUCK_MS) {
      // The leader's context died mid-flight: let the waiters retry (their request ids make it safe).
      for (const waiter of lane.waiting.splice(0)) waiter.wake({ kind: "error", error: new Error("hold batch lost; retry") });
      lane.busySince = undefined;
    }
    return lane;
  }
}
