/**
 * Late payments: a payment that succeeds after its hold expired becomes an
 * order while the seats are free, and is refunded when someone else has them.
 *
 * One of the checkout files (payments.test.ts says what they drive); they run
 * one at a time (`checkoutTestFile`).
 */
import { describe, expect, it } from "vitest";
import {
  checkoutTestFile,
  clock,
  CONFIRM_PATH,
  CRON_STEP_MS,
  expectConfirmed,
  expectNoSale,
  getHold,
  heldPair,
  holdSeats,
  latestPayment,
  openCheckoutSale,
  PAIR,
  payExpecting,
  paymentRows,
  runCron,
} from "../../fixtures/checkout";
import { addFault, chargesOf, clearFaults, deliver, deliverAll, flushWebhooks, requestsOf, sent, webhooksOf } from "../../fixtures/gateway";

checkoutTestFile();

/**
 * A fan's payment that the gateway charges while its answers are lost (202),
 * its webhook dropped or delayed; the hold then expires and another fan takes
 * one of its seats.
 */
async function paidAfterSeatsTaken(demandClass: "calm" | "hot", webhook: "drop_webhook" | "delay_webhook") {
  const sale = await openCheckoutSale({ demandClass, holdTtlSeconds: 120 });
  const [fan, other] = sale.fans;
  if (!fan || !other) throw new Error("no fans");
  const hold = await holdSeats(sale, fan, PAIR);
  await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
  await addFault({ mode: webhook, match: { metadata: { hold_id: hold.holdId } } });
  await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
  clock.to(Date.parse(hold.expiresAt) + 1);
  const taken = await holdSeats(sale, other, [1, 2]);
  return { sale, fan, other, hold, taken };
}

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("paid after the hold expired", () => {
    it("confirms the order when the seats are still free", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass, holdTtlSeconds: 120 });
      await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      await addFault({ mode: "delay_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.to(Date.parse(hold.expiresAt) + 1);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("expired");
      await flushWebhooks();
      await deliverAll(sent(await webhooksOf({ hold_id: hold.holdId })));
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
      await expectConfirmed(hold.holdId, PAIR);
    });

    it("refunds automatically when someone else has the seats, and the gateway shows the refund", async () => {
      const { sale, fan, other, hold, taken } = await paidAfterSeatsTaken(demandClass, "drop_webhook");
      // No webhook: the cron learns of the charge and gives the money back.
      await runCron();
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.lastError])).toEqual([["refunded", "refunded: hold_expired"]]);
      const [charge] = await chargesOf(hold.holdId);
      expect(charge).toMatchObject({ status: "succeeded", amountRefunded: hold.totalCents });
      expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "refunded" });
      await expectNoSale(hold.holdId);
      expect((await getHold(sale, other, taken.holdId)).status).toBe("live");
      // Running it all again refunds nothing twice.
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect((await chargesOf(hold.holdId)).map((c) => c.amountRefunded)).toEqual([hold.totalCents]);
    });

    it("answers the gateway's webhook 503 gateway_unavailable while the gateway refuses the refund, and refunds at its next delivery", async () => {
      const { hold } = await paidAfterSeatsTaken(demandClass, "delay_webhook");
      const [charge] = await chargesOf(hold.holdId);
      if (!charge) throw new Error("no charge");
      await addFault({ mode: "error500", count: 10, match: { path: "/v1/refunds", idempotencyKey: `refund_${charge.paymentIntent}` } });
      await flushWebhooks();
      const [succeeded] = sent(await webhooksOf({ hold_id: hold.holdId })).filter((delivery) => delivery.type === "payment_intent.succeeded");
      if (!succeeded) throw new Error("no payment_intent.succeeded delivery");
      const refused = await deliver(succeeded);
      expect(refused.status, refused.body).toBe(503);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "gateway_unavailable" } });
      expect((await chargesOf(hold.holdId)).map((c) => c.amountRefunded)).toEqual([0]);
      await clearFaults();
      expect((await deliver(succeeded)).status).toBe(200);
      expect((await chargesOf(hold.holdId)).map((c) => c.amountRefunded)).toEqual([hold.totalCents]);
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["refunded"]);
    });

    it("never confirms a payment once its refund was asked for: the refund's answer lost, the seats free again, the next pass only asks again with the same key", async () => {
      const { sale, fan, hold, taken } = await paidAfterSeatsTaken(demandClass, "drop_webhook");
      const [charge] = await chargesOf(hold.holdId);
      if (!charge) throw new Error("no charge");
      const refundKey = `refund_${charge.paymentIntent}`;
      // The gateway refunds, but neither answer (the client's try and its retry) arrives.
      await addFault({ mode: "lose_response", count: 2, match: { path: "/v1/refunds", idempotencyKey: refundKey } });
      const first = await runCron();
      expect(first.errors).toBe(1);
      expect((await chargesOf(hold.holdId)).map((c) => c.amountRefunded)).toEqual([hold.totalCents]);
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.orderId])).toEqual([["succeeded", null]]);
      // The fan is not told it succeeded: the money is on its way back.
      expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "refunding", lastError: "refunding: hold_expired" });

      // The other fan's hold lapses: the seats the payment was for are free again.
      clock.to(Date.parse(taken.expiresAt) + 1);
      await runCron();
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("expired");
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.lastError])).toEqual([["refunded", "refunded: hold_expired"]]);
      await expectNoSale(hold.holdId);
      const refunds = (await requestsOf(hold.holdId)).filter((r) => r.path === "/v1/refunds");
      expect(refunds.map((r) => r.idempotencyKey)).toEqual([refundKey, refundKey, refundKey]);
      expect((await chargesOf(hold.holdId)).map((c) => c.amountRefunded)).toEqual([hold.totalCents]);
      expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "refunded" });
    });
  });
});
