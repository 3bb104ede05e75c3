/**
 * Gateway faults: errors, lost answers and dropped connections; the client
 * retries with the same key, and the cron settles what stays ambiguous,
 * charging once or not at all.
 *
 * One of the checkout files (payments.test.ts says what they drive); they run
 * one at a time (`checkoutTestFile`).
 */
import { describe, expect, it } from "vitest";
import {
  callOf,
  checkoutTestFile,
  clock,
  CONFIRM_PATH,
  CRON_STEP_MS,
  dropConnections,
  expectConfirmed,
  expectNoSale,
  expectSeatsFree,
  getHold,
  heldPair,
  holdSeats,
  keysOf,
  latestPayment,
  loseAnswersAfterCreate,
  openCheckoutSale,
  PAIR,
  pay,
  payExpecting,
  paymentRows,
  runCron,
} from "../../fixtures/checkout";
import { addFault, chargesOf, clearFaults, deliverAll, flushWebhooks, intentsOf, keptCharges, requestsOf, sent, webhooksOf } from "../../fixtures/gateway";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("the gateway's answer is ambiguous", () => {
    it("error500 once: the client retries with the same key and the fan is charged once", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "error500", count: 1, match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
      await expectConfirmed(hold.holdId, PAIR);
      const requests = await requestsOf(hold.holdId);
      const keys = keysOf(hold.holdId);
      expect(requests.map((r) => [r.outcome, r.idempotencyKey])).toEqual([
        [500, keys.create],
        [200, keys.create],
        [200, keys.confirm],
      ]);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it("error500 on every try: 202 processing, then the cron retries with the same key and confirms", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "error500", count: 2, match: { metadata: { hold_id: hold.holdId } } });
      const pending = await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      expect(pending.status).toBe("unknown");
      expect(await chargesOf(hold.holdId)).toEqual([]);
      // A second click while it is unresolved starts nothing.
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "payment_in_progress" });
      // Too fresh for the cron (the client may still be retrying).
      await runCron();
      expect((await latestPayment(sale, fan, hold.holdId)).status).toBe("unknown");
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect((await latestPayment(sale, fan, hold.holdId)).status).toBe("succeeded");
      await expectConfirmed(hold.holdId, PAIR);
      const keys = keysOf(hold.holdId);
      expect(new Set((await requestsOf(hold.holdId)).map((r) => r.idempotencyKey))).toEqual(new Set([keys.create, keys.confirm]));
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it.each([
      ["the create", "/v1/payment_intents", [["lost", false], [200, true], [200, false]]],
      ["the confirm", CONFIRM_PATH, [[200, false], ["lost", false], [200, true]]],
    ] as const)("lose_response once on %s: the client's retry gets the saved answer; one charge", async (_name, path, outcomes) => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "lose_response", count: 1, match: { path, metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
      await expectConfirmed(hold.holdId, PAIR);
      const requests = await requestsOf(hold.holdId);
      expect(requests.map((r) => [r.outcome, r.replayed])).toEqual(outcomes);
      expect(await intentsOf(hold.holdId)).toHaveLength(1);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it("lose_response on every confirm try: 202, and the webhook confirms; one charge", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      expect((await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202)).status).toBe("unknown");
      // Charged, though the Worker does not know it yet.
      expect(keptCharges(await chargesOf(hold.holdId))).toHaveLength(1);
      await deliverAll(sent(await webhooksOf({ hold_id: hold.holdId })));
      expect((await latestPayment(sale, fan, hold.holdId)).status).toBe("succeeded");
      await expectConfirmed(hold.holdId, PAIR);
      // The cron afterwards finds nothing to do for it.
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it("lose_response on every create try: nothing is confirmed, so nothing charged; the cron gets the intent back by its key and confirms it", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "lose_response", count: 2, match: { path: "/v1/payment_intents", metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      // The intent exists at the gateway, unconfirmed; the Worker never learned its id, so it never confirmed it.
      expect((await intentsOf(hold.holdId)).map((i) => i.status)).toEqual(["requires_confirmation"]);
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId])).toEqual([["unknown", null]]);
      expect(await chargesOf(hold.holdId)).toEqual([]);
      const before = (await requestsOf(hold.holdId)).length;
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      const keys = keysOf(hold.holdId);
      expect((await requestsOf(hold.holdId)).slice(before).map((r) => [r.outcome, r.replayed, r.idempotencyKey])).toEqual([
        [200, true, keys.create],
        [200, false, keys.confirm],
      ]);
      expect(await intentsOf(hold.holdId)).toHaveLength(1);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it("lose_response on every confirm try and the webhook dropped: the cron asks about the stored intent and confirms the order; one charge", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      expect(sent(await webhooksOf({ hold_id: hold.holdId }))).toEqual([]);
      // Charged, the Worker does not know it, but it stored the intent's id before confirming it.
      const [charge] = keptCharges(await chargesOf(hold.holdId));
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.providerPaymentId])).toEqual([["unknown", charge?.paymentIntent]]);
      const before = (await requestsOf(hold.holdId)).length;
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      // One question about that intent: no new create, no second confirm.
      expect((await requestsOf(hold.holdId)).slice(before).map(callOf)).toEqual([["GET", "/v1/payment_intents/pi"]]);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it("hang on every try (each connection dropped unanswered): after 3 gateway calls the cron releases the hold; nothing charged", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await dropConnections(hold.holdId, 100);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(CRON_STEP_MS);
      await runCron(); // second gateway call: still unknown
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.gatewayCalls])).toEqual([["unknown", 2]]);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");
      clock.advance(CRON_STEP_MS);
      await runCron(); // third call: undetermined, default to release
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.gatewayCalls])).toEqual([["canceled", 3]]);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      await expectSeatsFree(sale, PAIR);
      expect(await latestPayment(sale, fan, hold.holdId)).toMatchObject({ status: "canceled" });
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "hold_expired" });
      await expectNoSale(hold.holdId);
      expect(await chargesOf(hold.holdId)).toEqual([]);
      // Only creates were sent: nothing confirms an intent whose id the Worker does not have.
      expect(new Set((await requestsOf(hold.holdId)).map(callOf).map((call) => call.join(" ")))).toEqual(new Set(["POST /v1/payment_intents"]));
    });

    it("hang on every try for 2 minutes: the cron releases the hold after 2 minutes even before 3 calls", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await dropConnections(hold.holdId, 100);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(2 * 60_000);
      await runCron();
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.gatewayCalls])).toEqual([["canceled", 2]]);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      await expectNoSale(hold.holdId);
    });

    it("hang on the payment's tries, then the gateway recovers: the cron's retry with the same key confirms", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await dropConnections(hold.holdId, 2);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      const keys = keysOf(hold.holdId);
      expect(new Set((await requestsOf(hold.holdId)).map((r) => r.idempotencyKey))).toEqual(new Set([keys.create, keys.confirm]));
    });

    it("a late success after the cron released the hold: seats still free, so the order is confirmed", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      // The gateway charges, but no answer about the intent comes back (not even to the cron's cancel); the webhook is held up.
      await loseAnswersAfterCreate(hold.holdId, 100);
      await addFault({ mode: "delay_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(CRON_STEP_MS);
      await runCron();
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      // Released, but the payment stays open: its intent could not be canceled.
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.lastError])).toEqual([["unknown", "undetermined: hold released, intent not canceled yet"]]);
      await clearFaults();
      await flushWebhooks();
      await deliverAll(sent(await webhooksOf({ hold_id: hold.holdId })));
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("confirmed");
      await expectConfirmed(hold.holdId, PAIR);
    });

    it("a late success after the cron released the hold: seats taken meanwhile, so the charge is refunded", async () => {
      const sale = await openCheckoutSale({ demandClass });
      const [fan, other] = sale.fans;
      if (!fan || !other) throw new Error("no fans");
      const hold = await holdSeats(sale, fan, PAIR);
      await loseAnswersAfterCreate(hold.holdId, 100);
      await addFault({ mode: "delay_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(CRON_STEP_MS);
      await runCron();
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      const taken = await holdSeats(sale, other, PAIR);
      await clearFaults();
      await flushWebhooks();
      await deliverAll(sent(await webhooksOf({ hold_id: hold.holdId })));
      const charges = await chargesOf(hold.holdId);
      expect(charges).toHaveLength(1);
      expect(charges[0]).toMatchObject({ status: "succeeded", amountRefunded: charges[0]?.amount });
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["refunded"]);
      await expectNoSale(hold.holdId);
      expect((await getHold(sale, other, taken.holdId)).status).toBe("live");
    });
  });
});

describe("a client timeout", () => {
  it(
    "hang: the client gives up after its timeout and answers 202; the cron retries with the same key and confirms",
    async () => {
      const { sale, fan, hold } = await heldPair({ demandClass: "hot" });
      // Both the request and the client's own retry hang until the client times out (8 s each).
      await addFault({ mode: "hang", count: 2, match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      expect((await requestsOf(hold.holdId)).map((r) => r.outcome)).toEqual(["hung", "hung"]);
      expect(await chargesOf(hold.holdId)).toEqual([]);
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      const keys = keysOf(hold.holdId);
      expect(new Set((await requestsOf(hold.holdId)).map((r) => r.idempotencyKey))).toEqual(new Set([keys.create, keys.confirm]));
    },
    60_000,
  );
});
