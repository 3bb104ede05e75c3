/**
 * The happy path: a payment that succeeds becomes one order with its tickets,
 * charged once; a hold left unpaid frees its seats.
 *
 * Paying for holds (the seed's Component 4) end to end: the fan's payment
 * request through the Worker, the real `stripe` package against the local
 * gateway with its faults, webhooks posted as the gateway recorded them, the
 * reconciliation cron run at chosen (fake) times, and the sales consumer
 * that the queue runs on its own. Every scenario runs for a calm event
 * (Postgres inventory) and a hot one (the inventory Durable Object).
 *
 * The cron reconciles every open payment in the database: the checkout files
 * run one at a time (`checkoutTestFile`).
 */
import { describe, expect, it } from "vitest";
import {
  callOf,
  checkoutTestFile,
  clock,
  CRON_STEP_MS,
  expectConfirmed,
  expectSeatsFree,
  getHold,
  heldPair,
  keysOf,
  latestPayment,
  PAIR,
  pay,
  payExpecting,
  paymentRows,
  runCron,
  tryHold,
} from "../../fixtures/checkout";
import { chargesOf, deliverAll, requestsOf, sent, webhooksOf } from "../../fixtures/gateway";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("payment succeeds", () => {
    it("answers 200 and the consumer writes one order with its tickets, linked to the payment", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      const payment = await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
      expect(payment).toMatchObject({ status: "succeeded", attempt: 1, amountCents: hold.totalCents, currency: "USD", retryUntil: null });

      const rows = await expectConfirmed(hold.holdId, PAIR);
      expect(rows.orders[0]?.totalCents).toBe(hold.totalCents);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
      expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "succeeded" });
      // The intent was created with the payment row's idempotency key, then confirmed (charged) with its own.
      const keys = keysOf(hold.holdId);
      expect((await requestsOf(hold.holdId)).map((r) => [...callOf(r), r.idempotencyKey])).toEqual([
        ["POST", "/v1/payment_intents", keys.create],
        ["POST", "/v1/payment_intents/pi/confirm", keys.confirm],
      ]);
      const [charge] = await chargesOf(hold.holdId);
      expect(charge).toMatchObject({ status: "succeeded", amount: hold.totalCents, idempotencyKey: keys.confirm });
      expect(charge?.metadata).toMatchObject({ hold_id: hold.holdId, event_id: sale.eventId, account_id: fan.accountId, payment_id: payment.paymentId });
      expect((await paymentRows(hold.holdId)).map((p) => p.providerPaymentId)).toEqual([charge?.paymentIntent]);

      // The webhook (twice), a cron pass and a second click change nothing.
      const deliveries = sent(await webhooksOf({ hold_id: hold.holdId }));
      expect(deliveries.map((d) => d.type)).toEqual(["payment_intent.succeeded"]);
      await deliverAll([...deliveries, ...deliveries]);
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect(await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200)).toMatchObject({ paymentId: payment.paymentId, status: "succeeded" });
      await expectConfirmed(hold.holdId, PAIR);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
      // Sold: nobody else can hold the seats.
      const other = sale.fans[1];
      if (!other) throw new Error("no second fan");
      expect(await tryHold(sale, other, PAIR)).toMatchObject({ ok: false, code: "seat_taken" });
    });

    it("charges once when the fan double-clicks (two concurrent payment requests)", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      const answers = await Promise.all([pay(sale, fan, hold.holdId, "pm_card_visa"), pay(sale, fan, hold.holdId, "pm_card_visa")]);
      const statuses = answers.map((a) => a.status).sort();
      // Either the second click saw the first one's result, or it found it in progress.
      expect([
        [200, 200],
        [200, 409],
      ]).toContainEqual(statuses);
      await expectConfirmed(hold.holdId, PAIR);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });
  });

  describe("the fan abandons", () => {
    it("frees the seats when the hold expires, and refuses a payment started after that", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass, holdTtlSeconds: 120 });
      clock.to(Date.parse(hold.expiresAt) + 1);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("expired");
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "hold_expired" });
      await expectSeatsFree(sale, PAIR);
      expect(await chargesOf(hold.holdId)).toEqual([]);
      expect(await paymentRows(hold.holdId)).toEqual([]);
    });
  });
});
