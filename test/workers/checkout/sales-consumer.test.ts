/**
 * The confirmed-sales consumer and its dead-letter queue, driven as the
 * Queues runtime drives them (`createMessageBatch` / `getQueueResult`)
 * through the Worker's `queue()` entry, against the real Postgres.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import { eq, inArray, sql } from "drizzle-orm";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { ticketDeliverySchema, type ConfirmedSale } from "../../../workers/checkout/messages";
import { backoffSeconds, MAX_SALE_ATTEMPTS, ticketId, type DeadLetter } from "../../../workers/checkout/sales-consumer";
import { deadLetters, orders, payments, tickets } from "../../../core/db/schema";
import worker from "../../../workers/index";
import { withDb } from "../../fixtures/db";
import { ORIGIN } from "../../fixtures/http";
import { envWith, RecordingQueue } from "../../fixtures/queues";
import { openEvent } from "../../fixtures/seeding";

/** An event on sale with fans, and a maker of sales of its seats (each with its payment row, as checkout leaves it). */
async function saleMaker() {
  const { event, venue, accounts } = await openEvent({ demandClass: "calm", accounts: 4 });
  const pit = venue.sections.find((s) => s.kind === "general_admission");
  if (!pit) throw new Error("no general-admission section");
  let fan = 0;
  return {
    eventId: event.id,
    /** A sale of these seats (and GA places), its payment recorded as succeeded. */
    async sale(seatIndexes: number[], gaPlaces = 0, options: { withPaymentRow?: boolean } = {}): Promise<ConfirmedSale> {
      const accountId = accounts[fan++ % accounts.length] ?? "";
      const holdId = crypto.randomUUID();
      const items = [
        ...seatIndexes.map((seatIndex) => ({ seatIndex, sectionId: null, quantity: 1, priceCents: 1_000 })),
        ...(gaPlaces > 0 ? [{ seatIndex: null, sectionId: pit.id, quantity: gaPlaces, priceCents: 3_000 }] : []),
      ];
      const amountCents = items.reduce((sum, item) => sum + item.quantity * item.priceCents, 0);
      const sale: ConfirmedSale = {
        kind: "sale",
        holdId,
        eventId: event.id,
        accountId,
        paymentId: crypto.randomUUID(),
        providerPaymentId: `pi_test_${holdId.replaceAll("-", "")}`,
        amountCents,
        currency: "USD",
        items,
        confirmedAt: Date.now(),
      };
      if (options.withPaymentRow ?? true) {
        await withDb((db) =>
          db.insert(payments).values({
            id: sale.paymentId,
            holdId,
            eventId: event.id,
            accountId,
            providerPaymentId: sale.providerPaymentId,
            idempotencyKey: `hold_${holdId}_attempt_1`,
            paymentMethod: "pm_card_visa",
            amountCents,
            currency: "USD",
            status: "succeeded",
          }),
        );
      }
      return sale;
    },
  };
}

/** A sale of an event that does not exist: writing it fails in Postgres (foreign key), every time. */
function saleOfMissingEvent(template: ConfirmedSale): ConfirmedSale {
  return { ...template, holdId: crypto.randomUUID(), eventId: crypto.randomUUID(), paymentId: crypto.randomUUID() };
}

let nextMessage = 0;
function message<Body>(body: Body, attempts = 1) {
  return { id: `msg-${Date.now()}-${nextMessage++}`, timestamp: new Date(), attempts, body };
}

/**
 * Runs a batch through the Worker's queue handler with recording delivery and
 * dead-letter queues. `retried` adds the delay each retry asked for, which
 * `getQueueResult` does not report.
 */
async function consume(queue: string, messages: ReturnType<typeof message>[], overrides: Partial<Env> = {}) {
  const delivery = new RecordingQueue();
  const letters = new RecordingQueue();
  const batch = createMessageBatch(queue, messages);
  const delays = new Map<string, number | undefined>();
  for (const item of batch.messages) {
    const retry = item.retry.bind(item);
    vi.spyOn(item, "retry").mockImplementation((options) => {
      delays.set(item.id, options?.delaySeconds);
      retry(options);
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, envWith({ DELIVERY_QUEUE: delivery, DEAD_LETTERS: letters, ...overrides }));
  const result = await getQueueResult(batch, ctx);
  const retried = result.retryMessages.map(({ msgId }) => ({ msgId, delaySeconds: delays.get(msgId) }));
  return { result, retried, deliveries: delivery.bodies, letters: letters.bodies };
}

/** Orders, tickets and payment links of these holds, as they stand. */
async function rowsOf(holdIds: string[]) {
  return withDb(async (db) => {
    const orderRows = await db.select().from(orders).where(inArray(orders.holdId, holdIds)).orderBy(orders.holdId);
    const orderIds = orderRows.map((o) => o.id);
    const ticketRows = orderIds.length === 0 ? [] : await db.select().from(tickets).where(inArray(tickets.orderId, orderIds)).orderBy(tickets.id);
    const paymentRows = await db.select({ id: payments.id, holdId: payments.holdId, orderId: payments.orderId }).from(payments).where(inArray(payments.holdId, holdIds));
    return { orders: orderRows, tickets: ticketRows, payments: paymentRows };
  });
}

describe("the sales consumer", () => {
  it("writes a batch as orders, tickets and payment links once, and queues each order's delivery once", async () => {
    const maker = await saleMaker();
    const sales = [await maker.sale([0, 1]), await maker.sale([], 2), await maker.sale([18, 19, 20], 1)];
    const holdIds = sales.map((s) => s.holdId);
    // The same sale twice in one batch (the checkout queues it again on every finalization).
    const first = await consume("ticket-sales", [...sales, sales[0]].map((s) => message(s)));
    expect(first.result.retryMessages).toEqual([]);
    expect(first.result.explicitAcks).toHaveLength(4);
    expect(first.letters).toEqual([]);

    const written = await rowsOf(holdIds);
    expect(written.orders.map((o) => [o.holdId, o.status, o.totalCents, o.currency])).toEqual(
      [...sales].sort((a, b) => a.holdId.localeCompare(b.holdId)).map((s) => [s.holdId, "confirmed", s.amountCents, "USD"]),
    );
    expect(written.tickets).toHaveLength(2 + 2 + 4);
    // Ticket ids come from the hold and the place, so a redelivered sale yields the same tickets.
    const expectedIds = await Promise.all(sales.flatMap((s) => Array.from({ length: s.items.reduce((n, i) => n + i.quantity, 0) }, (_, i) => ticketId(s.holdId, i))));
    expect(written.tickets.map((t) => t.id).sort()).toEqual(expectedIds.sort());
    expect(written.tickets.filter((t) => t.seatIndex !== null).map((t) => t.seatIndex).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([0, 1, 18, 19, 20]);
    for (const order of written.orders) {
      expect(written.payments.find((p) => p.holdId === order.holdId)?.orderId).toBe(order.id);
      expect(order.deliveryQueuedAt).not.toBeNull();
    }
    expect(first.deliveries).toEqual(expect.arrayContaining(written.orders.map((o) => ({ kind: "delivery", orderId: o.id }))));
    expect(first.deliveries).toHaveLength(3);

    // Redelivered (a crash after the commit, before the ack): same rows, no second delivery.
    const again = await consume("ticket-sales", sales.map((s) => message(s, 2)));
    expect(again.result.explicitAcks).toHaveLength(3);
    expect(again.deliveries).toEqual([]);
    const rewritten = await rowsOf(holdIds);
    expect(rewritten.orders.map((o) => o.id)).toEqual(written.orders.map((o) => o.id));
    expect(rewritten.tickets.map((t) => t.id)).toEqual(written.tickets.map((t) => t.id));
  });

  it("writes each sale once when overlapping batches of it are consumed at once", { timeout: 120_000 }, async () => {
    // Queues may hand the same sale to several invocations at once (the checkout queues it again on every finalization).
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ seats: fc.integer({ min: 0, max: 2 }), ga: fc.integer({ min: 0, max: 1 }) }).filter((p) => p.seats + p.ga > 0), { minLength: 2, maxLength: 8 }),
        fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), { minLength: 2, maxLength: 4 }),
        async (places, picks) => {
          const maker = await saleMaker();
          let seat = 0;
          const sales: ConfirmedSale[] = [];
          for (const p of places) sales.push(await maker.sale(Array.from({ length: p.seats }, () => seat++), p.ga));
          // Random overlapping batches, then one with whatever none of them holds.
          const batches = picks.map((pick) => pick.map((i) => sales[i % sales.length] ?? sales[0]));
          batches.push(sales.filter((s) => !batches.some((batch) => batch.includes(s))));
          const runs = await Promise.all(batches.filter((batch) => batch.length > 0).map((batch) => consume("ticket-sales", batch.map((s) => message(s)))));

          for (const run of runs) {
            expect(run.result.retryMessages).toEqual([]);
            expect(run.letters).toEqual([]);
          }
          const written = await rowsOf(sales.map((s) => s.holdId));
          expect(written.orders).toHaveLength(sales.length);
          const expectedIds = await Promise.all(sales.flatMap((s) => Array.from({ length: s.items.reduce((n, i) => n + i.quantity, 0) }, (_, i) => ticketId(s.holdId, i))));
          expect(written.tickets.map((t) => t.id).sort()).toEqual(expectedIds.sort());
          for (const order of written.orders) {
            expect(written.payments.filter((p) => p.holdId === order.holdId).map((p) => p.orderId)).toEqual([order.id]);
            expect(written.tickets.filter((t) => t.orderId === order.id)).toHaveLength(sales.find((s) => s.holdId === order.holdId)?.items.reduce((n, i) => n + i.quantity, 0) ?? -1);
          }
          // Each order's delivery queued by exactly one of the invocations.
          const queued = runs.flatMap((run) => run.deliveries.map((d) => ticketDeliverySchema.parse(d).orderId));
          expect(queued.sort()).toEqual(written.orders.map((o) => o.id).sort());
        },
      ),
      { numRuns: 8 },
    );
  });

  it("retries the whole batch with backoff while Postgres refuses it", async () => {
    const maker = await saleMaker();
    const template = await maker.sale([2], 0, { withPaymentRow: false });
    const doomed = [saleOfMissingEvent(template), saleOfMissingEvent(template)];
    const messages = [message(doomed[0], 1), message(doomed[1], 3)];
    const { result, retried, deliveries, letters } = await consume("ticket-sales", messages);
    expect(result.explicitAcks).toEqual([]);
    expect(retried).toEqual([
      { msgId: messages[0]?.id, delaySeconds: 1 },
      { msgId: messages[1]?.id, delaySeconds: 4 },
    ]);
    expect(deliveries).toEqual([]);
    expect(letters).toEqual([]);
    expect((await rowsOf(doomed.map((s) => s.holdId))).orders).toEqual([]);
    expect([1, 2, 3, 7, 8, 10].map(backoffSeconds)).toEqual([1, 2, 4, 60, 60, 60]);
  });

  it("retries every message when Postgres cannot be reached at all, and writes them once it is back", async () => {
    const maker = await saleMaker();
    const sales = [await maker.sale([3]), await maker.sale([4])];
    const messages = sales.map((s) => message(s, 2));
    const down = await consume("ticket-sales", messages, { DATABASE_URL: "postgres://tickets:nothing@127.0.0.1:1/tickets" });
    expect(down.retried).toEqual(messages.map((m) => ({ msgId: m.id, delaySeconds: 2 })));
    expect(down.result.explicitAcks).toEqual([]);
    const back = await consume("ticket-sales", sales.map((s) => message(s, 3)));
    expect(back.result.explicitAcks).toHaveLength(2);
    expect((await rowsOf(sales.map((s) => s.holdId))).orders).toHaveLength(2);
  });

  it("writes the good sales of a batch and retries only the one Postgres refuses", async () => {
    const maker = await saleMaker();
    const good = [await maker.sale([5]), await maker.sale([6])];
    const bad = saleOfMissingEvent(good[0] ?? (await maker.sale([7])));
    const messages = [message(good[0]), message(bad), message(good[1])];
    const { result, retried, deliveries } = await consume("ticket-sales", messages);
    expect(retried).toEqual([{ msgId: messages[1]?.id, delaySeconds: 1 }]);
    expect(result.explicitAcks.sort()).toEqual([messages[0]?.id, messages[2]?.id].sort());
    expect((await rowsOf(good.map((s) => s.holdId))).orders).toHaveLength(2);
    expect(deliveries).toHaveLength(2);
  });

  it("dead-letters a message out of retries, and acknowledges it", async () => {
    const maker = await saleMaker();
    const template = await maker.sale([8], 0, { withPaymentRow: false });
    const lastTry = message(saleOfMissingEvent(template), MAX_SALE_ATTEMPTS);
    const oneMore = message(saleOfMissingEvent(template), MAX_SALE_ATTEMPTS - 1);
    const { result, retried, letters } = await consume("ticket-sales", [lastTry, oneMore]);
    expect(result.explicitAcks).toEqual([lastTry.id]);
    expect(retried).toEqual([{ msgId: oneMore.id, delaySeconds: 60 }]);
    expect(letters).toHaveLength(1);
    // The root cause, not the failed statement with every sale of the batch in it.
    expect(letters[0]).toEqual({ queue: "ticket-sales", messageId: lastTry.id, body: lastTry.body, error: expect.stringMatching(/violates foreign key constraint .* \(SQLSTATE 23503\)$/) });
  });

  it("dead-letters a malformed message at once and still writes the rest of its batch", async () => {
    const maker = await saleMaker();
    const good = await maker.sale([9]);
    const poison = message({ kind: "sale", holdId: "not-a-uuid", items: [] });
    const garbage = message("}{");
    const { result, letters, deliveries } = await consume("ticket-sales", [poison, message(good), garbage]);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(3);
    expect(letters).toEqual([
      expect.objectContaining({ queue: "ticket-sales", messageId: poison.id, body: poison.body, error: expect.stringMatching(/^invalid sale message/) }),
      expect.objectContaining({ queue: "ticket-sales", messageId: garbage.id, body: "}{", error: expect.stringMatching(/^invalid sale message/) }),
    ]);
    expect((await rowsOf([good.holdId])).orders).toHaveLength(1);
    expect(deliveries).toHaveLength(1);
  });
});

describe("the dead-letter queue", () => {
  async function storedLetters(messageIds: string[]) {
    return withDb((db) => db.select().from(deadLetters).where(inArray(deadLetters.messageId, messageIds)).orderBy(deadLetters.messageId));
  }

  it("keeps each dead letter in Postgres once, whether our consumer or the runtime moved it", async () => {
    const maker = await saleMaker();
    const sale = await maker.sale([10], 0, { withPaymentRow: false });
    const wrapped: DeadLetter = { queue: "ticket-sales", messageId: `orig-${crypto.randomUUID()}`, body: sale, error: "boom" };
    const rawSale = message(sale); // moved by the runtime after max_retries: the original body
    const rawDelivery = message({ kind: "delivery", orderId: crypto.randomUUID() });
    const letterMessage = message(wrapped);
    const batch = [letterMessage, rawSale, rawDelivery];
    const first = await consume("ticket-dead-letters", batch);
    expect(first.result.explicitAcks).toHaveLength(3);
    const second = await consume("ticket-dead-letters", batch.map((m) => ({ ...m, attempts: 2 })));
    expect(second.result.explicitAcks).toHaveLength(3);
    const rows = await storedLetters([wrapped.messageId, rawSale.id, rawDelivery.id]);
    expect(rows.map((r) => [r.messageId, r.queue, r.body, r.replayedAt])).toEqual(
      [
        [wrapped.messageId, "ticket-sales", { body: sale, error: "boom" }, null],
        [rawSale.id, "ticket-sales", { body: sale, error: "exhausted retries" }, null],
        [rawDelivery.id, "ticket-delivery", { body: rawDelivery.body, error: "exhausted retries" }, null],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
  });

  it("replays stored letters to their queues for an operator, and marks them replayed", async () => {
    const maker = await saleMaker();
    const sale = await maker.sale([11, 12]);
    const replayable: DeadLetter = { queue: "ticket-sales", messageId: `orig-${crypto.randomUUID()}`, body: sale, error: "Postgres was down" };
    const unreadable: DeadLetter = { queue: "ticket-sales", messageId: `orig-${crypto.randomUUID()}`, body: { kind: "sale" }, error: "invalid sale message" };
    await consume("ticket-dead-letters", [message(replayable), message(unreadable)]);

    const replay = (authorization?: string) =>
      SELF.fetch(`${ORIGIN}/ops/dead-letters/replay`, { method: "POST", headers: authorization ? { Authorization: authorization } : {} });
    for (const refused of [await replay(), await replay("Bearer not-the-ops-token"), await replay(`Basic ${env.OPS_TOKEN}`)]) {
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ error: { code: "unauthorized" } });
    }
    expect((await storedLetters([replayable.messageId])).map((r) => r.replayedAt)).toEqual([null]);

    const accepted = await replay(`Bearer ${env.OPS_TOKEN}`);
    expect(accepted.status).toBe(200);
    expect((await accepted.json<{ replayed: number }>()).replayed).toBeGreaterThanOrEqual(1);
    const [replayed, kept] = [await storedLetters([replayable.messageId]), await storedLetters([unreadable.messageId])];
    expect(replayed[0]?.replayedAt).toBeInstanceOf(Date);
    expect(kept[0]?.replayedAt).toBeNull(); // unreadable: left for a human
    // The sale went back on its queue, and the consumer (run by the queue itself) writes it.
    await vi.waitFor(
      async () => {
        const rows = await rowsOf([sale.holdId]);
        if (rows.orders.length !== 1 || rows.tickets.length !== 2 || rows.payments[0]?.orderId !== rows.orders[0]?.id) throw new Error("not written yet");
      },
      { timeout: 20_000, interval: 100 },
    );
    // Replaying again sends nothing of ours twice.
    const twice = await replay(`Bearer ${env.OPS_TOKEN}`);
    expect(twice.status).toBe(200);
    const after = await withDb((db) => db.select({ n: sql<number>`count(*)::int` }).from(orders).where(eq(orders.holdId, sale.holdId)));
    expect(after[0]?.n).toBe(1);
  });
});
