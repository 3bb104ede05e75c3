/**
 * Declined cards: the seats go back at once, or the fan may try another card
 * within the event's retry window, after which the cron releases the hold.
 *
 * One of the checkout files (payments.test.ts says what they drive); they run
 * one at a time (`checkoutTestFile`).
 */
import { describe, expect, it } from "vitest";
import {
  checkoutTestFile,
  clock,
  CRON_STEP_MS,
  expectConfirmed,
  expectNoSale,
  expectSeatsFree,
  getHold,
  heldPair,
  PAIR,
  pay,
  payExpecting,
  paymentRows,
  runCron,
} from "../../fixtures/checkout";
import { addFault, chargesOf, deliverAll, sent, webhooksOf } from "../../fixtures/gateway";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("payment is declined", () => {
    it.each([
      ["a generic decline (test card)", "pm_card_chargeDeclined", undefined, "generic_decline"],
      ["insufficient funds (test card)", "pm_card_chargeDeclinedInsufficientFunds", undefined, "insufficient_funds"],
      ["insufficient funds (injected on a good card)", "pm_card_visa", "insufficient_funds", "insufficient_funds"],
    ] as const)("releases the seats at once after %s when no retry is allowed", async (_name, card, injected, code) => {
      const { sale, fan, hold } = await heldPair({ demandClass, declineRetrySeconds: 0 });
      if (injected) await addFault({ mode: "decline", declineCode: injected, match: { metadata: { hold_id: hold.holdId } } });
      const payment = await payExpecting(sale, fan, hold.holdId, card, 402);
      expect(payment).toMatchObject({ status: "failed", lastError: code, retryUntil: null });
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      await expectSeatsFree(sale, PAIR);
      // No second card: the hold is gone.
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "hold_expired" });
      const charges = await chargesOf(hold.holdId);
      expect(charges.map((c) => [c.status, c.declineCode])).toEqual([["failed", code]]);
      // The payment_failed webhook changes nothing.
      await deliverAll(sent(await webhooksOf({ hold_id: hold.holdId })));
      await expectNoSale(hold.holdId);
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["failed"]);
    });

    it("lets the fan try another card within the retry window", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass, declineRetrySeconds: 120 });
      const declined = await payExpecting(sale, fan, hold.holdId, "pm_card_chargeDeclinedInsufficientFunds", 402);
      expect(declined.status).toBe("failed");
      expect(Date.parse(declined.retryUntil ?? "")).toBe(Date.now() + 120_000);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");

      clock.advance(61_000);
      await runCron(); // the window is still open: nothing is released
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");
      const paid = await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
      expect(paid).toMatchObject({ attempt: 2, status: "succeeded" });
      const rows = await expectConfirmed(hold.holdId, PAIR);
      expect(rows.payments.map((p) => p.status)).toEqual(["failed", "succeeded"]);
      expect((await chargesOf(hold.holdId)).map((c) => c.status)).toEqual(["failed", "succeeded"]);

      // After the window the cron leaves the paid hold alone.
      clock.advance(120_000);
      await runCron();
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
      await expectConfirmed(hold.holdId, PAIR);
    });

    it("releases the hold through the cron once the retry window has closed", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass, declineRetrySeconds: 90 });
      await payExpecting(sale, fan, hold.holdId, "pm_card_chargeDeclined", 402);
      clock.advance(91_000);
      // Too late for another card, though the hold itself has not expired yet.
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "hold_expired" });
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");
      await runCron();
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      await expectSeatsFree(sale, PAIR);
      // A second pass does nothing more.
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectNoSale(hold.holdId);
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.lastError])).toEqual([["failed", "window_closed"]]);
    });
  });
});
