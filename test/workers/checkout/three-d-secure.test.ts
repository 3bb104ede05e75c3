/**
 * Paying with a card that needs 3-D Secure (Stripe's 4000 0027 6000 3184):
 * the confirm answers requires_action, the payment waits on the fan's
 * challenge while its hold lives (neither "unknown" nor cancelled by the
 * cron), settles by webhook or reconciliation when the challenge passes or
 * fails, and is abandoned (intent canceled, seats released) once the hold
 * has ended. The gateway's challenge page stands in for the fan's bank.
 */
import { describe, expect, it } from "vitest";
import {
  checkoutTestFile,
  clock,
  CRON_STEP_MS,
  expectConfirmed,
  expectNoSale,
  heldPair,
  holdSeats,
  latestPayment,
  openCheckoutSale,
  PAIR,
  pay,
  payExpecting,
  paymentRows,
  runCron,
  tryHold,
} from "../../fixtures/checkout";
import { addFault, chargesOf, completeChallenge, deliverAll, intentsOf, requestsOf, sent, webhooksOf } from "../../fixtures/gateway";

checkoutTestFile();

const THREE_D_SECURE = "pm_card_authenticationRequired";

describe.each(["calm", "hot"] as const)("3-D Secure at checkout of a %s event", (demandClass) => {
  it("waits on the challenge past the cron's 3 tries and 2 minutes while the hold lives; passed, the cron settles it without a webhook", async () => {
    const { sale, fan, hold } = await heldPair({ demandClass, holdTtlSeconds: 600 });
    await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
    const waiting = await payExpecting(sale, fan, hold.holdId, THREE_D_SECURE, 202);
    expect(waiting).toMatchObject({ status: "requires_action", nextAction: { type: "use_stripe_sdk" } });
    const clientSecret = waiting.nextAction?.clientSecret;
    if (!clientSecret) throw new Error("no client secret");
    // The page reloaded mid-challenge gets the secret back; paying again is refused while the challenge is open.
    expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "requires_action", nextAction: { clientSecret } });
    // The checkout polls every 2 s while the challenge is open: the secret is asked of the gateway once, not at every poll (Stripe limits reads).
    for (let poll = 0; poll < 4; poll++) expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ nextAction: { clientSecret } });
    expect((await requestsOf(hold.holdId)).filter((request) => request.method === "GET")).toHaveLength(1);
    expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "payment_in_progress" });
    // The cron runs past the 3 tries and the 2 minutes for undetermined payments: this one is not undetermined.
    for (let pass = 0; pass < 4; pass++) {
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["requires_action"]);
      expect((await intentsOf(hold.holdId)).map((intent) => intent.status)).toEqual(["requires_action"]);
    }
    expect(await chargesOf(hold.holdId)).toEqual([]);
    await expectNoSale(hold.holdId);

    await completeChallenge(clientSecret, "pass");
    clock.advance(CRON_STEP_MS);
    await runCron();
    await expectConfirmed(hold.holdId, PAIR);
    expect(await chargesOf(hold.holdId)).toHaveLength(1);
  });

  it("a failed challenge is a decline (by webhook): the retry window opens and another card pays", async () => {
    const { sale, fan, hold } = await heldPair({ demandClass, declineRetrySeconds: 120 });
    const waiting = await payExpecting(sale, fan, hold.holdId, THREE_D_SECURE, 202);
    await completeChallenge(waiting.nextAction?.clientSecret ?? "", "fail");
    await deliverAll(sent(await webhooksOf({ hold_id: hold.holdId })));
    const failed = await latestPayment(sale, fan, hold.holdId);
    expect(failed).toMatchObject({ status: "failed", lastError: "payment_intent_authentication_failure", nextAction: null });
    expect(failed.retryUntil).not.toBeNull();
    await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
    await expectConfirmed(hold.holdId, PAIR);
  });

  it("abandoned: once the hold has ended the cron cancels the intent and releases the seats, and the challenge can no longer charge", async () => {
    const sale = await openCheckoutSale({ demandClass, holdTtlSeconds: 90 });
    const [fan, other] = sale.fans;
    if (!fan || !other) throw new Error("no fans");
    const hold = await holdSeats(sale, fan, PAIR);
    const waiting = await payExpecting(sale, fan, hold.holdId, THREE_D_SECURE, 202);
    clock.advance(CRON_STEP_MS);
    await runCron();
    expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["requires_action"]);
    // The hold ends (its TTL and jitter) while the fan sits on the challenge.
    clock.to(Date.parse(hold.expiresAt) + 1_000);
    await runCron();
    expect((await intentsOf(hold.holdId)).map((intent) => intent.status)).toEqual(["canceled"]);
    expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "canceled", nextAction: null });
    await expect(completeChallenge(waiting.nextAction?.clientSecret ?? "", "pass")).rejects.toThrow(/409/);
    expect(await chargesOf(hold.holdId)).toEqual([]);
    const probe = await tryHold(sale, other, PAIR);
    expect(probe.ok, JSON.stringify(probe)).toBe(true);
    await expectNoSale(hold.holdId);
  });
});
