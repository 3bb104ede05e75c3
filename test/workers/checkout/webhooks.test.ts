/**
 * Webhooks: duplicated, delayed, reordered or dropped deliveries change
 * nothing; deliveries that cannot be confirmed or whose signature does not
 * match are refused.
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
  holdSeats,
  loseAnswersAfterCreate,
  openCheckoutSale,
  PAIR,
  payExpecting,
  paymentRows,
  runCron,
} from "../../fixtures/checkout";
import { addFault, chargesOf, deliver, deliverAll, flushWebhooks, freshSignature, requestsOf, sent, sign, webhooksOf } from "../../fixtures/gateway";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("webhooks", () => {
    it("duplicated, delayed, reordered and dropped deliveries change nothing", async () => {
      const sale = await openCheckoutSale({ demandClass, declineRetrySeconds: 120 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      // The gateway holds the decline's event and the success's event and sends them in reverse; they arrive out of order, twice.
      await addFault({ mode: "reorder_webhooks", count: 2, match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_chargeDeclined", 402);
      expect(sent(await webhooksOf({ hold_id: hold.holdId }))).toEqual([]);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
      await expectConfirmed(hold.holdId, PAIR);
      const deliveries = sent(await webhooksOf({ hold_id: hold.holdId }));
      expect(deliveries.map((d) => d.type)).toEqual(["payment_intent.payment_failed", "payment_intent.succeeded"]);
      const reversed = [...deliveries].reverse();
      await deliverAll([...reversed, ...reversed, ...deliveries]);
      await expectConfirmed(hold.holdId, PAIR);
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["failed", "succeeded"]);

      const other = sale.fans[1];
      if (!other) throw new Error("no second fan");
      const second = await holdSeats(sale, other, [4, 5]);
      await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: second.holdId } } });
      await addFault({ mode: "duplicate_webhook", match: { metadata: { hold_id: second.holdId } } });
      await payExpecting(sale, other, second.holdId, "pm_card_visa", 200);
      expect(sent(await webhooksOf({ hold_id: second.holdId }))).toEqual([]);
      await expectConfirmed(second.holdId, [4, 5]);
      expect(await chargesOf(second.holdId)).toHaveLength(1);
    });

    it("refuses (503) a delivery it cannot confirm with the gateway, keeps the intent id, and settles on redelivery", async () => {
      const sale = await openCheckoutSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      // Every answer about this hold's intent is lost for a while: the payment's two confirm tries, then the webhook's lookup and its retry.
      await loseAnswersAfterCreate(hold.holdId, 2);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      const [delivery] = sent(await webhooksOf({ hold_id: hold.holdId }));
      if (!delivery) throw new Error("no delivery");
      const refused = await deliver(delivery);
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "gateway_unavailable" } });
      // Not acknowledged, so the gateway will send it again; the payment knew its intent before it was confirmed.
      const [charge] = await chargesOf(hold.holdId);
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId])).toEqual([["unknown", charge?.paymentIntent]]);
      await deliverAll([delivery]);
      await expectConfirmed(hold.holdId, PAIR);
    });

    it("with the intent id known, the cron asks about that intent rather than creating one", async () => {
      const sale = await openCheckoutSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      await loseAnswersAfterCreate(hold.holdId, 2);
      await addFault({ mode: "delay_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      await flushWebhooks();
      const [delivery] = sent(await webhooksOf({ hold_id: hold.holdId }));
      if (!delivery) throw new Error("no delivery");
      expect((await deliver(delivery)).status).toBe(503);
      const before = (await requestsOf(hold.holdId)).length;
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      expect((await requestsOf(hold.holdId)).slice(before).map((r) => [r.method, r.path.startsWith("/v1/payment_intents/pi_")])).toEqual([["GET", true]]);
    });

    it("refuses a delivery whose signature does not match, and changes nothing", async () => {
      const sale = await openCheckoutSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      const [delivery] = sent(await webhooksOf({ hold_id: hold.holdId }));
      if (!delivery) throw new Error("no delivery");
      const forged = await deliver(delivery, await sign(delivery.payload, Math.floor(Date.now() / 1000), "whsec_not_ours"));
      expect(forged.status).toBe(400);
      expect(JSON.parse(forged.body)).toMatchObject({ error: { code: "invalid_signature" } });
      const tamperedPayload = delivery.payload.replace('"type": "payment_intent.succeeded"', '"type": "payment_intent.canceled"');
      expect(tamperedPayload).not.toBe(delivery.payload);
      const tampered = await deliver({ ...delivery, payload: tamperedPayload }, await freshSignature(delivery));
      expect(tampered.status).toBe(400);
      const stale = await deliver(delivery, await sign(delivery.payload, Math.floor(Date.now() / 1000) - 600));
      expect(stale.status).toBe(400);
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["unknown"]);
      await deliverAll([delivery]);
      await expectConfirmed(hold.holdId, PAIR);
    });
  });
});
