/**
 * The ticket-delivery consumer: one email per order through the mailer to the
 * local outbox (read over its HTTP API), with a QR code per ticket that
 * decodes to a compact code verifying against the published JWKS; retries with
 * backoff when the mail provider fails; malformed messages acknowledged.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { deliveryBackoffSeconds, handleDeliveryBatch, LOST_AFTER_SECONDS, REQUEUED_PER_PASS, requeueLostDeliveries } from "../../../workers/tickets/delivery";
import { placeLabel } from "../../../workers/tickets/issued-tickets";
import { withDb } from "../../fixtures/db";
import { failMailTo, inbox } from "../../fixtures/mail";
import { decodeQrPng, insertOrder, qrImages, ticketedEvent, ticketRows, verifyCodeOffline } from "../../fixtures/tickets";

/**
 * Runs the consumer on a batch of `ticket-delivery` messages and returns what
 * it acked and retried, with each retry's delay (which `getQueueResult` does
 * not report, so `retry` is spied on).
 */
async function deliver(messages: { body: unknown; attempts?: number; id?: string }[]) {
  const batch = createMessageBatch(
    "ticket-delivery",
    messages.map((m) => ({ id: m.id ?? crypto.randomUUID(), timestamp: new Date(), attempts: m.attempts ?? 1, body: m.body })),
  );
  const retrySpies = batch.messages.map((message) => ({ id: message.id, spy: vi.spyOn(message, "retry") }));
  const ctx = createExecutionContext();
  await handleDeliveryBatch(batch, env);
  const result = await getQueueResult(batch, ctx);
  const retries = retrySpies.flatMap(({ id, spy }) => spy.mock.calls.map(([options]) => ({ msgId: id, delaySeconds: options?.delaySeconds })));
  expect(retries.map((r) => r.msgId)).toEqual(result.retryMessages.map((r) => r.msgId));
  return { ids: batch.messages.map((m) => m.id), explicitAcks: result.explicitAcks, retryMessages: retries, ackAll: result.ackAll, retryBatch: result.retryBatch };
}

describe("handleDeliveryBatch", () => {
  it("sends one email per order with every ticket's id, place and a QR code that verifies against the JWKS, and acks", async () => {
    const event = await ticketedEvent();
    const [fan, friend] = event.accounts;
    const [s0, s1, s2] = event.seats;
    if (!fan || !friend || !s0 || !s1 || !s2) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [s0, s1], gaPlaces: 1 });
    const friendOrder = await insertOrder(event, friend, { seats: [s2] });
    const before = await ticketRows(order.orderId);

    const result = await deliver([{ body: { kind: "delivery", orderId: order.orderId } }, { body: { kind: "delivery", orderId: friendOrder.orderId } }]);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());

    const emails = await inbox(event.emailOf(fan));
    expect(emails).toHaveLength(1);
    const [email] = emails;
    if (!email?.text || !email.html) throw new Error("the email has a text and an HTML body");
    expect(email.subject).toBe("Your 3 tickets for Show");
    expect(email.text).toContain(order.orderId);
    for (const ticket of order.tickets) expect(email.text).toContain(`Ticket ${ticket.id}: ${placeLabel(ticket.place)}`);

    const images = qrImages(email.html);
    expect(images).toHaveLength(3);
    const codes = await Promise.all(images.map(async (image) => verifyCodeOffline(await decodeQrPng(image))));
    expect(codes.map((c) => c.ticketId).sort()).toEqual(order.tickets.map((t) => t.id).sort());
    for (const code of codes) {
      expect(code.eventIdPrefix).toBe(event.eventId.replaceAll("-", "").slice(0, 8));
      expect(code.place).toEqual(order.tickets.find((t) => t.id === code.ticketId)?.place);
    }

    const friendEmails = await inbox(event.emailOf(friend));
    expect(friendEmails).toHaveLength(1);
    expect(friendEmails[0]?.subject).toBe("Your ticket for Show");
    expect(qrImages(friendEmails[0]?.html ?? "")).toHaveLength(1);

    // Delivery only reads.
    expect(await ticketRows(order.orderId)).toEqual(before);
  });

  it("sends once however often the message comes, records when, and leaves void tickets out", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [s0, s1] = event.seats;
    if (!fan || !s0 || !s1) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [s0, s1] });
    const [kept, voided] = order.tickets;
    if (!kept || !voided) throw new Error("fixture");
    await withDb((db) => db.execute(sql`update tickets set status = 'void' where id = ${voided.id}`));
    const before = await ticketRows(order.orderId);
    const orderRow = () => withDb(async (db) => (await db.execute<Record<string, unknown>>(sql`select * from orders where id = ${order.orderId}`)).rows[0]);
    const orderBefore = await orderRow();
    expect(orderBefore?.delivered_at).toBeNull();

    const id = crypto.randomUUID();
    for (const attempts of [1, 2]) {
      const result = await deliver([{ id, attempts, body: { kind: "delivery", orderId: order.orderId } }]);
      expect(result.explicitAcks).toEqual([id]);
    }
    const emails = await inbox(event.emailOf(fan));
    expect(emails).toHaveLength(1);
    for (const email of emails) {
      expect(email.subject).toBe("Your ticket for Show");
      expect(email.text).toContain(kept.id);
      expect(email.text).not.toContain(voided.id);
      expect(qrImages(email.html ?? "")).toHaveLength(1);
    }
    expect(await ticketRows(order.orderId)).toEqual(before);
    // The order only records that its delivery is done.
    const after = await orderRow();
    expect(Number.isNaN(Date.parse(String(after?.delivered_at)))).toBe(false);
    expect({ ...after, delivered_at: null }).toEqual(orderBefore);
  });

  it("retries with growing backoff when the mail provider fails, and delivers once it recovers", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [seat] });
    const email = event.emailOf(fan);
    const id = crypto.randomUUID();
    const body = { kind: "delivery", orderId: order.orderId };

    await failMailTo(email, 2);
    const first = await deliver([{ id, attempts: 1, body }]);
    expect(first.explicitAcks).toEqual([]);
    expect(first.retryMessages).toEqual([{ msgId: id, delaySeconds: deliveryBackoffSeconds(1) }]);
    const second = await deliver([{ id, attempts: 2, body }]);
    expect(second.retryMessages).toEqual([{ msgId: id, delaySeconds: deliveryBackoffSeconds(2) }]);
    expect(deliveryBackoffSeconds(2)).toBeGreaterThan(deliveryBackoffSeconds(1));
    expect(await inbox(email)).toHaveLength(0);

    const third = await deliver([{ id, attempts: 3, body }]);
    expect(third.retryMessages).toEqual([]);
    expect(third.explicitAcks).toEqual([id]);
    expect(await inbox(email)).toHaveLength(1);
  });

  it("retries only the failing order of a batch", async () => {
    const event = await ticketedEvent();
    const [failing, fine] = event.accounts;
    const [s0, s1] = event.seats;
    if (!failing || !fine || !s0 || !s1) throw new Error("fixture");
    const failingOrder = await insertOrder(event, failing, { seats: [s0] });
    const fineOrder = await insertOrder(event, fine, { seats: [s1] });
    await failMailTo(event.emailOf(failing), 1);
    const [failingId, fineId] = [crypto.randomUUID(), crypto.randomUUID()];
    const result = await deliver([
      { id: failingId, body: { kind: "delivery", orderId: failingOrder.orderId } },
      { id: fineId, body: { kind: "delivery", orderId: fineOrder.orderId } },
    ]);
    expect(result.explicitAcks).toEqual([fineId]);
    expect(result.retryMessages.map((r) => r.msgId)).toEqual([failingId]);
    expect(await inbox(event.emailOf(fine))).toHaveLength(1);
    expect(await inbox(event.emailOf(failing))).toHaveLength(0);
  });

  it("acks malformed messages instead of retrying them", async () => {
    const bodies: unknown[] = [
      { kind: "delivery", orderId: "not-a-uuid" },
      { kind: "delivery" },
      { kind: "sale", orderId: crypto.randomUUID() },
      "deliver everything",
      null,
      [],
    ];
    const result = await deliver(bodies.map((body) => ({ body })));
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual([...result.ids].sort());
  });

  it("retries an order it cannot find (so it ends in the dead-letter queue, not lost) and acks one that was refunded, sending nothing", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const refunded = await insertOrder(event, fan, { seats: [seat] });
    await withDb((db) => db.execute(sql`update orders set status = 'refunded' where id = ${refunded.orderId}`));
    const [missingId, refundedId] = [crypto.randomUUID(), crypto.randomUUID()];
    const result = await deliver([
      { id: missingId, attempts: 4, body: { kind: "delivery", orderId: crypto.randomUUID() } },
      { id: refundedId, body: { kind: "delivery", orderId: refunded.orderId } },
    ]);
    expect(result.retryMessages).toEqual([{ msgId: missingId, delaySeconds: deliveryBackoffSeconds(4) }]);
    expect(result.explicitAcks).toEqual([refundedId]);
    expect(await inbox(event.emailOf(fan))).toHaveLength(0);
  });
});

describe("requeueLostDeliveries", () => {
  /** Sets an order's delivery marks, in seconds relative to Postgres' clock (null: unset). */
  async function mark(orderId: string, marks: { queuedSecondsAgo: number | null; retryInSeconds?: number; delivered?: boolean }) {
    await withDb((db) =>
      db.execute(sql`update orders set
        delivery_queued_at = case when ${marks.queuedSecondsAgo}::int is null then null else now() - make_interval(secs => ${marks.queuedSecondsAgo}::int) end,
        delivery_retry_at = case when ${marks.retryInSeconds ?? null}::int is null then null else now() + make_interval(secs => ${marks.retryInSeconds ?? null}::int) end,
        delivered_at = case when ${marks.delivered ?? false} then now() else null end
        where id = ${orderId}`),
    );
  }

  /** One sweep; returns the orders it queued again, of those given (other files' orders share the database). */
  async function sweep(mine: string[]): Promise<string[]> {
    const sent: string[] = [];
    let batches = 0;
    await withDb((db) =>
      requeueLostDeliveries(db, {
        sendBatch: async (messages) => {
          const bodies = [...messages].map((m) => m.body.orderId);
          // Queues refuse a batch of more than 100 messages; a pass sends one.
          expect(bodies.length).toBeLessThanOrEqual(100);
          expect(++batches, "batches in one pass").toBe(1);
          sent.push(...bodies);
        },
      }),
    );
    return sent.filter((id) => mine.includes(id));
  }

  it("queues again, once per wait, a delivery queued minutes ago and never done, and none that is recent, done, or waiting for its retry", async () => {
    const event = await ticketedEvent({ accounts: 5 });
    const orders: string[] = [];
    for (const [i, fan] of event.accounts.entries()) {
      const seat = event.seats[i];
      if (!seat) throw new Error("fixture");
      orders.push((await insertOrder(event, fan, { seats: [seat] })).orderId);
    }
    const [lost, recent, done, retrying, never] = orders;
    if (!lost || !recent || !done || !retrying || !never) throw new Error("fixture");
    const old = LOST_AFTER_SECONDS + 60;
    await mark(lost, { queuedSecondsAgo: old });
    await mark(recent, { queuedSecondsAgo: LOST_AFTER_SECONDS - 30 });
    await mark(done, { queuedSecondsAgo: old, delivered: true });
    await mark(retrying, { queuedSecondsAgo: old, retryInSeconds: 300 });
    await mark(never, { queuedSecondsAgo: null });

    expect(await sweep(orders)).toEqual([lost]);
    // Marked queued now: the next pass waits as long again.
    expect(await sweep(orders)).toEqual([]);

    // Its delivery comes and is done; however old the mark, the sweep leaves it alone from then on.
    const result = await deliver([{ body: { kind: "delivery", orderId: lost } }]);
    expect(result.explicitAcks).toHaveLength(1);
    const [fan] = event.accounts;
    if (!fan) throw new Error("fixture");
    expect(await inbox(event.emailOf(fan))).toHaveLength(1);
    await withDb((db) => db.execute(sql`update orders set delivery_queued_at = now() - make_interval(secs => ${old}) where id = ${lost}`));
    expect(await sweep(orders)).toEqual([]);
  });

  it("queues at most one batch a pass (Queues take 100 messages a batch), the rest on the next passes", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    if (!fan) throw new Error("fixture");
    const lost = REQUEUED_PER_PASS + 20;
    const orders = await withDb(async (db) =>
      (
        await db.execute<{ id: string }>(sql`
          insert into orders (event_id, account_id, hold_id, total_cents, currency, delivery_queued_at)
          select ${event.eventId}, ${fan}, gen_random_uuid(), 1000, 'USD', now() - make_interval(secs => ${LOST_AFTER_SECONDS + 60})
          from generate_series(1, ${lost}) returning id`)
      ).rows.map((row) => row.id),
    );
    const swept = new Set<string>();
    // Other files' lost orders share the database and may come first: pass until ours are all swept, a batch at a time.
    for (let pass = 0; pass < 20 && swept.size < lost; pass++) for (const id of await sweep(orders)) swept.add(id);
    expect(swept.size).toBe(lost);
  });

  it("waits for the queue's retry of a failed send, and queues the order again if that retry never comes", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const { orderId } = await insertOrder(event, fan, { seats: [seat] });
    await mark(orderId, { queuedSecondsAgo: LOST_AFTER_SECONDS + 60 });
    await failMailTo(event.emailOf(fan), 1);
    const failed = await deliver([{ body: { kind: "delivery", orderId } }]);
    expect(failed.retryMessages).toHaveLength(1);
    expect(await sweep([orderId])).toEqual([]);
    // The retry was due a minute's grace ago and never came (its message lost): queued again.
    await withDb((db) => db.execute(sql`update orders set delivery_retry_at = now() - interval '1 second', delivery_queued_at = now() - make_interval(secs => ${LOST_AFTER_SECONDS + 60}) where id = ${orderId}`));
    expect(await sweep([orderId])).toEqual([orderId]);
  });
});

describe("deliveryBackoffSeconds", () => {
  it("doubles from 30 s and stays within an hour (the Queues limit is 12 h)", () => {
    expect([1, 2, 3, 4].map(deliveryBackoffSeconds)).toEqual([30, 60, 120, 240]);
    for (let attempts = 1; attempts <= 100; attempts++) {
      expect(deliveryBackoffSeconds(attempts)).toBeLessThanOrEqual(3_600);
      expect(deliveryBackoffSeconds(attempts + 1)).toBeGreaterThanOrEqual(deliveryBackoffSeconds(attempts));
    }
  });
});
