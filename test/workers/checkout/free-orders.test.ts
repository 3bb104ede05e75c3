/**
 * Orders the gateway cannot charge: a free order (a 0-cent tier; Stripe
 * refuses a PaymentIntent under its minimum, 50 cents for usd, with
 * `amount_too_small`) is confirmed without the gateway, and its refund asks
 * nothing of it; a create the gateway refuses with a 4xx is a definite
 * failure, not an ambiguous answer to try again. A free hold is paid with
 * no card; any other hold without one is refused 400, recording nothing.
 *
 * One of the checkout files (payments.test.ts says what they drive); they run
 * one at a time (`checkoutTestFile`).
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  callOf,
  checkoutTestFile,
  clock,
  confirmedSale,
  CRON_STEP_MS,
  expectNoSale,
  expectSeatsFree,
  getHold,
  holdSeats,
  keysOf,
  latestPayment,
  openCheckoutSale,
  PAIR,
  pay,
  payExpecting,
  paymentRows,
  runCron,
} from "../../fixtures/checkout";
import { payForHold } from "../../../workers/checkout/payments";
import { withDb } from "../../fixtures/db";
import { requestsOf } from "../../fixtures/gateway";
import { envWith } from "../../fixtures/queues";
import { adminRequest } from "../../fixtures/http";
import { fanOf } from "../../fixtures/seeding";
import { myTickets } from "../../fixtures/tickets";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  it("confirms a free order without the gateway: the fan gets the tickets, and its refund asks nothing of the gateway", async () => {
    const sale = await openCheckoutSale({ demandClass, tierPrices: { A: 0 } });
    const fan = fanOf(sale, 0);
    const hold = await holdSeats(sale, fan, PAIR);
    expect(hold.totalCents).toBe(0);

    // No card: a free hold needs none.
    const payment = await payExpecting(sale, fan, hold.holdId, undefined, 200);
    expect(payment).toMatchObject({ status: "succeeded", amountCents: 0, lastError: null, retryUntil: null });
    const rows = await confirmedSale(hold.holdId, PAIR.length);
    expect(rows.orders).toMatchObject([{ status: "confirmed", totalCents: 0 }]);
    expect(rows.payments).toMatchObject([{ status: "succeeded", providerPaymentId: null }]);
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
    const tickets = await myTickets(fan.accountId);
    expect(tickets.map((t) => [t.event.id, t.orderId, t.status, t.place.section, t.place.seat]).sort()).toEqual([
      [sale.eventId, rows.orders[0]?.id, "valid", "A", "1"],
      [sale.eventId, rows.orders[0]?.id, "valid", "A", "2"],
    ]);
    // A cron pass later, nothing changed and nothing reached the gateway.
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "succeeded" });
    expect(await requestsOf(hold.holdId)).toEqual([]);

    const refunded = await adminRequest(sale.apiKey, "POST", `/orders/${rows.orders[0]?.id}/refund`);
    expect(refunded.status, refunded.text).toBe(200);
    expect(z.object({ order: z.object({ status: z.string(), liveTickets: z.number() }) }).parse(refunded.json).order).toEqual({ status: "refunded", liveTickets: 0 });
    expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["refunded"]);
    expect(await requestsOf(hold.holdId)).toEqual([]);
    await expectSeatsFree(sale, PAIR);
  });

  it("fails a payment at once when the gateway refuses to create its intent (4xx), releasing the hold and saying why", async () => {
    // 25 cents: under Stripe's minimum charge, so the create is refused 400 amount_too_small. The event's
    // window for another card does not keep the seats: no card can pay an amount the gateway refuses.
    const sale = await openCheckoutSale({ demandClass, tierPrices: { A: 25 }, declineRetrySeconds: 120 });
    const fan = fanOf(sale, 0);
    const hold = await holdSeats(sale, fan, [0]);
    expect(hold.totalCents).toBe(25);
    // Without a card, a hold that costs money is refused as bad input, and nothing is recorded.
    expect(await pay(sale, fan, hold.holdId, undefined)).toEqual({ status: 400, code: "payment_method_required" });
    expect(await paymentRows(hold.holdId)).toEqual([]);
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");

    const payment = await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 402);
    expect(payment).toMatchObject({ status: "failed", amountCents: 25, lastError: "refused: amount_too_small", retryUntil: null });
    expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId, p.gatewayCalls])).toEqual([["failed", null, 1]]);
    expect(["released", "expired"]).toContain((await getHold(sale, fan, hold.holdId)).status);
    await expectSeatsFree(sale, [0]);
    // One create, refused; nothing tried again.
    expect((await requestsOf(hold.holdId)).map((r) => [...callOf(r), r.idempotencyKey])).toEqual([["POST", "/v1/payment_intents", keysOf(hold.holdId).create]]);
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "failed", lastError: "refused: amount_too_small", retryUntil: null });
    expect(await requestsOf(hold.holdId)).toHaveLength(1);
    await expectNoSale(hold.holdId);
  });

  it("keeps the hold when the gateway refuses the Worker itself (401: a rotated or mistyped key): not the fan's payment that failed", async () => {
    const sale = await openCheckoutSale({ demandClass });
    const fan = fanOf(sale, 0);
    const hold = await holdSeats(sale, fan, [0]);
    const ctx = { env: envWith({ STRIPE_SECRET_KEY: "sk_test_rotated-key" }), keepAlive: () => undefined };
    const answer = await withDb((db) => payForHold({ ...ctx, db }, { eventId: sale.eventId, holdId: hold.holdId, accountId: fan.accountId, paymentMethod: "pm_card_visa" }));
    expect(answer.status).toBe(202);
    expect(answer.payment).toMatchObject({ status: "unknown", retryUntil: null });
    expect(answer.payment.lastError).not.toMatch(/^refused: /);
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");
    // With the right key, the cron's next pass charges it.
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "succeeded" });
    await confirmedSale(hold.holdId, 1);
  });
});
