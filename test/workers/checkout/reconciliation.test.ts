/**
 * The reconciliation cron: sales the Worker failed to queue, charges whose
 * every answer was lost until the cron gave up (issue 5), and one failing
 * payment not holding up the rest.
 *
 * One of the checkout files (payments.test.ts says what they drive); they run
 * one at a time (`checkoutTestFile`).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { stripeClient } from "../../../workers/checkout/gateway";
import { finalizeSucceeded } from "../../../workers/checkout/payments";
import { payments } from "../../../core/db/schema";
import {
  callOf,
  checkoutTestFile,
  clock,
  CONFIRM_PATH,
  CRON_STEP_MS,
  expectConfirmed,
  expectNoSale,
  expectSeatsFree,
  getHold,
  heldPair,
  holdSeats,
  keysOf,
  loseAnswersAfterCreate,
  openCheckoutSale,
  PAIR,
  payExpecting,
  paymentRows,
  runCron,
  saleRows,
} from "../../fixtures/checkout";
import { withDb } from "../../fixtures/db";
import { addFault, chargesOf, clearFaults, intentsOf, keptCharges, requestsOf } from "../../fixtures/gateway";
import { envWith, RecordingQueue } from "../../fixtures/queues";
import type { Fan, Sale } from "../../fixtures/seeding";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("the Worker fails mid-way", () => {
    it("a sale never queued after the payment was marked paid is queued by the next cron pass", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      const [charge] = await chargesOf(hold.holdId);
      const [payment] = await paymentRows(hold.holdId);
      if (!charge || !payment) throw new Error("no charge or payment");
      // The Worker records the success and confirms the hold, then dies before the sale reaches the queue.
      const brokenQueue = new RecordingQueue();
      brokenQueue.failure = new Error("queue unavailable");
      await expect(
        withDb((db) => finalizeSucceeded({ env: envWith({ SALES_QUEUE: brokenQueue }), db, keepAlive: () => undefined }, payment, charge.paymentIntent)),
      ).rejects.toThrow("queue unavailable");
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["succeeded"]);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
      expect((await saleRows(hold.holdId)).orders).toEqual([]);
      // No webhook will come: the cron must notice the paid hold without an order.
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });
  });
});

describe.each(["calm", "hot"] as const)("answers about a charge lost until the cron gives up (issue 5), %s event", (demandClass) => {
  /** Pays with every answer about the intent lost after its creation and the webhook dropped; the cron gives up and releases the hold. */
  async function chargeNobodyHears(sale: Sale, fan: Fan) {
    const hold = await holdSeats(sale, fan, PAIR);
    await loseAnswersAfterCreate(hold.holdId, 100);
    await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
    await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
    // Charged, and no answer or event about it will reach the Worker.
    const [charge] = keptCharges(await chargesOf(hold.holdId));
    if (!charge) throw new Error("not charged");
    for (let pass = 0; pass < 3; pass++) {
      clock.advance(CRON_STEP_MS);
      await runCron();
    }
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
    // The seats went back (seed: default to release), but the payment stays open: the cron never managed to cancel its intent.
    expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId, p.lastError])).toEqual([
      ["unknown", charge.paymentIntent, "undetermined: hold released, intent not canceled yet"],
    ]);
    expect((await saleRows(hold.holdId)).orders).toEqual([]);
    return { hold, charge };
  }

  it("a charge whose every answer was lost and whose webhook never came ends as an order (seats still free)", async () => {
    const sale = await openCheckoutSale({ demandClass });
    const [fan] = sale.fans;
    if (!fan) throw new Error("no fan");
    const { hold } = await chargeNobodyHears(sale, fan);
    // The gateway answers again: the next pass asks about the stored intent and finds it paid.
    await clearFaults();
    clock.advance(CRON_STEP_MS);
    await runCron();
    await expectConfirmed(hold.holdId, PAIR);
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
    for (let pass = 0; pass < 2; pass++) {
      clock.advance(CRON_STEP_MS);
      await runCron();
    }
    await expectConfirmed(hold.holdId, PAIR);
    expect(await chargesOf(hold.holdId)).toHaveLength(1);
  });

  it("a charge whose every answer was lost and whose webhook never came ends as a refund (seats taken meanwhile)", async () => {
    const sale = await openCheckoutSale({ demandClass });
    const [fan, other] = sale.fans;
    if (!fan || !other) throw new Error("no fans");
    const { hold, charge } = await chargeNobodyHears(sale, fan);
    const taken = await holdSeats(sale, other, PAIR);
    await clearFaults();
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.lastError])).toEqual([["refunded", "refunded: hold_expired"]]);
    expect(await chargesOf(hold.holdId)).toMatchObject([{ paymentIntent: charge.paymentIntent, amountRefunded: charge.amount }]);
    // Later passes refund nothing twice.
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect((await chargesOf(hold.holdId)).map((c) => c.amountRefunded)).toEqual([charge.amount]);
    await expectNoSale(hold.holdId);
    expect((await getHold(sale, other, taken.holdId)).status).toBe("live");
  });

  it("every answer lost from the create on: nothing was confirmed, so nothing is charged, and the cron releases the hold", async () => {
    const { sale, fan, hold } = await heldPair({ demandClass });
    await addFault({ mode: "lose_response", count: 100, match: { metadata: { hold_id: hold.holdId } } });
    await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
    await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
    for (let pass = 0; pass < 3; pass++) {
      clock.advance(CRON_STEP_MS);
      await runCron();
    }
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
    expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId, p.lastError])).toEqual([["canceled", null, "undetermined: released"]]);
    await clearFaults();
    for (let pass = 0; pass < 3; pass++) {
      clock.advance(CRON_STEP_MS);
      await runCron();
    }
    // The intent was created (its answers lost) and never confirmed: no charge, now or later.
    expect((await intentsOf(hold.holdId)).map((i) => [i.status, i.latest_charge])).toEqual([["requires_confirmation", null]]);
    expect(new Set((await requestsOf(hold.holdId)).map(callOf).map((call) => call.join(" ")))).toEqual(new Set(["POST /v1/payment_intents"]));
    expect(await chargesOf(hold.holdId)).toEqual([]);
    await expectNoSale(hold.holdId);
    await expectSeatsFree(sale, PAIR);
  });

  it("the cron cancels an undetermined intent before it releases the hold, so a late confirm cannot charge", async () => {
    const { sale, fan, hold } = await heldPair({ demandClass });
    // Every confirm is taken and never performed: the intent stays unconfirmed, and its fate undetermined.
    await addFault({ mode: "hang", count: 100, delayMs: 20, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
    await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
    clock.advance(CRON_STEP_MS);
    await runCron(); // second try: the intent still awaits confirmation; confirming it hangs again
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");
    clock.advance(CRON_STEP_MS);
    await runCron(); // third: undetermined, so cancel the intent, then release
    const [intent] = await intentsOf(hold.holdId);
    expect(intent?.status).toBe("canceled");
    expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId, p.gatewayCalls])).toEqual([["canceled", intent?.id, 3]]);
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
    const calls = (await requestsOf(hold.holdId)).map((r) => callOf(r).join(" "));
    expect(calls.at(-2)).toBe("GET /v1/payment_intents/pi");
    expect(calls.at(-1)).toBe("POST /v1/payment_intents/pi/cancel");
    // A confirm that reaches the gateway only now (the one that hung, say) cannot charge.
    await clearFaults();
    await expect(stripeClient(env).paymentIntents.confirm(intent?.id ?? "", {}, { idempotencyKey: keysOf(hold.holdId).confirm })).rejects.toMatchObject({
      code: "payment_intent_unexpected_state",
    });
    expect(await chargesOf(hold.holdId)).toEqual([]);
    await expectNoSale(hold.holdId);
    await expectSeatsFree(sale, PAIR);
  });

  it("the cron's cancel of an undetermined intent finds it paid: the order is confirmed and the hold never released", async () => {
    const { sale, fan, hold } = await heldPair({ demandClass });
    // Lost: the payment's two confirm answers, and the cron's first four retrieve answers (two passes); the cancel is answered.
    await loseAnswersAfterCreate(hold.holdId, 2, 4);
    await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
    await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["unknown"]);
    clock.advance(CRON_STEP_MS);
    await runCron();
    await expectConfirmed(hold.holdId, PAIR);
    expect((await requestsOf(hold.holdId)).filter((r) => r.path.endsWith("/cancel")).map((r) => r.outcome)).toEqual([400]);
    expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
  });
});

describe("the reconciliation cron", () => {
  it("settles every other payment when one of them fails to reconcile", async () => {
    const { sale, fan, hold } = await heldPair({ demandClass: "calm" });
    await addFault({ mode: "error500", count: 2, match: { metadata: { hold_id: hold.holdId } } });
    await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
    // An older open payment whose event is gone: reconciling it throws.
    const orphanHold = crypto.randomUUID();
    const longAgo = new Date(Date.now() - 86_400_000);
    await withDb((db) =>
      db.insert(payments).values({
        holdId: orphanHold,
        eventId: crypto.randomUUID(),
        accountId: fan.accountId,
        idempotencyKey: `hold_${orphanHold}_attempt_1`,
        paymentMethod: "pm_card_chargeDeclined",
        amountCents: 1_000,
        currency: "USD",
        status: "unknown",
        gatewayCalls: 1,
        createdAt: longAgo,
        updatedAt: longAgo,
      }),
    );
    clock.advance(CRON_STEP_MS);
    await runCron();
    await expectConfirmed(hold.holdId, PAIR);
  });
});
