/**
 * Cancelled events: a payment started after the organizer cancels (or
 * unpublishes) is refused and nothing reaches the gateway; one left
 * unresolved before the cancellation is not charged by the cron's retry.
 *
 * One of the checkout files (payments.test.ts says what they drive); they run
 * one at a time (`checkoutTestFile`).
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { events } from "../../../core/db/schema";
import {
  cancelSale,
  checkoutTestFile,
  clock,
  CONFIRM_PATH,
  CRON_STEP_MS,
  expectNoSale,
  getHold,
  heldPair,
  pay,
  payExpecting,
  paymentRows,
  runCron,
} from "../../fixtures/checkout";
import { withDb } from "../../fixtures/db";
import { addFault, chargesOf, intentsOf, requestsOf } from "../../fixtures/gateway";
import { expectApiError, rawRequest } from "../../fixtures/http";

checkoutTestFile();

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("the organizer cancels the event", () => {
    it("refuses a payment started after the cancellation (409 event_cancelled); nothing reaches the gateway", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      await cancelSale(sale);
      const refused = await rawRequest(`/api/events/${sale.eventId}/holds/${hold.holdId}/payment`, {
        method: "POST",
        headers: { Authorization: `Bearer ${fan.session}`, "Content-Type": "application/json" },
        body: JSON.stringify({ paymentMethod: "pm_card_visa" }),
      });
      expectApiError(refused, 409, "event_cancelled");
      // A second click gets the same answer.
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "event_cancelled" });
      expect(await requestsOf(hold.holdId)).toEqual([]);
      expect(await intentsOf(hold.holdId)).toEqual([]);
      expect(await chargesOf(hold.holdId)).toEqual([]);
      expect(await paymentRows(hold.holdId)).toEqual([]);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("live");
      await expectNoSale(hold.holdId);
    });

    it("charges nothing when the cron comes back to a payment left unresolved before the cancellation: it cancels the intent", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      // The intent is made, but both of the client's tries at confirming it fail: 202, the outcome unknown, nothing charged yet.
      await addFault({ mode: "error500", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      expect((await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202)).status).toBe("unknown");
      expect(await chargesOf(hold.holdId)).toEqual([]);
      await cancelSale(sale);
      // The gateway answers again, but the event is cancelled: the cron must not try the charge again.
      clock.advance(CRON_STEP_MS);
      await runCron();
      expect(await chargesOf(hold.holdId)).toEqual([]);
      expect((await intentsOf(hold.holdId)).map((intent) => intent.status)).toEqual(["canceled"]);
      expect((await paymentRows(hold.holdId)).map((p) => p.status)).toEqual(["canceled"]);
      await expectNoSale(hold.holdId);
    });

    it("refuses another card after a decline once the event is cancelled; only the declined attempt reached the gateway", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass, declineRetrySeconds: 120 });
      await payExpecting(sale, fan, hold.holdId, "pm_card_chargeDeclined", 402);
      await cancelSale(sale);
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "event_cancelled" });
      expect(await intentsOf(hold.holdId)).toHaveLength(1);
      expect((await chargesOf(hold.holdId)).map((c) => c.status)).toEqual(["failed"]);
      expect((await paymentRows(hold.holdId)).map((p) => [p.attempt, p.status])).toEqual([[1, "failed"]]);
      await expectNoSale(hold.holdId);
    });

    it("answers 404 for an event no longer published, as fans see drafts everywhere, and charges nothing", async () => {
      const { sale, fan, hold } = await heldPair({ demandClass });
      // The admin API refuses this once the sale has started; the payment checks Postgres all the same.
      await withDb((db) => db.update(events).set({ status: "draft" }).where(eq(events.id, sale.eventId)));
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 404, code: "not_found" });
      expect(await requestsOf(hold.holdId)).toEqual([]);
      expect(await paymentRows(hold.holdId)).toEqual([]);
    });
  });
});
