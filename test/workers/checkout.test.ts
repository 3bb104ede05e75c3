/**
 * Paying for holds (the seed's Component 4), end to end: the fan's payment
 * request through the Worker, the real `stripe` package against the local
 * gateway with its faults, webhooks posted as the gateway recorded them, the
 * reconciliation cron run at chosen (fake) times, and the sales consumer
 * that the queue runs on its own. Every scenario runs for a calm event
 * (Postgres inventory) and a hot one (the inventory Durable Object).
 *
 * The cron reconciles every open payment in the database: this file runs
 * while no other file runs it (`runCronExclusively`).
 */
import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { stripeClient } from "../../workers/checkout/gateway";
import { confirmKeyOf, finalizeSucceeded } from "../../workers/checkout/payments";
import { events, payments } from "../../core/db/schema";
import { withDb } from "../durable-objects/fixtures";
import {
  addFault,
  cancelSale,
  chargesOf,
  clearFaults,
  clock,
  CRON_STEP_MS,
  deliver,
  deliverAll,
  expectConfirmed,
  expectNoSale,
  flushWebhooks,
  freshSignature,
  getHold,
  holdSeats,
  intentsOf,
  keptCharges,
  latestPayment,
  openSale,
  pay,
  payExpecting,
  paymentRows,
  envWith,
  RecordingQueue,
  requestsOf,
  runCron,
  runCronExclusively,
  saleRows,
  sent,
  sign,
  tryHold,
  useFakeClock,
  webhooksOf,
  type Fan,
  type Sale,
} from "./checkout-harness";
import { expectApiError, rawRequest } from "./helpers";

runCronExclusively();

useFakeClock();

/** Seats 0 and 1 (section A, row 1) are what most tests hold. */
const PAIR = [0, 1];

/** The create call's key (the payment row's) and the confirm call's. */
function keysOf(holdId: string): { create: string; confirm: string } {
  const create = `hold_${holdId}_attempt_1`;
  return { create, confirm: confirmKeyOf({ idempotencyKey: create }) };
}

/** The gateway path of the confirm call. */
const CONFIRM_PATH = "/v1/payment_intents/*/confirm";

/** A request as `[method, path]`, the intent's id replaced by `pi`. */
function callOf(request: { method: string; path: string }): [string, string] {
  return [request.method, request.path.replace(/pi_\w+/, "pi")];
}

/**
 * The gateway charges (or cancels), but loses the answer to every call about
 * the hold's PaymentIntent once it exists: `confirms` confirm and cancel
 * calls, `retrieves` retrieve calls. The create call is answered.
 */
async function loseAnswersAfterCreate(holdId: string, confirms: number, retrieves = confirms): Promise<void> {
  await addFault({ mode: "lose_response", count: confirms, match: { method: "POST", path: "/v1/payment_intents/*/*", metadata: { hold_id: holdId } } });
  await addFault({ mode: "lose_response", count: retrieves, match: { method: "GET", path: "/v1/payment_intents/*", metadata: { hold_id: holdId } } });
}

/**
 * The gateway's "hang", cut short: it takes the request, never performs it,
 * and drops the connection unanswered after 20 ms (instead of making the
 * client wait out its 8 s timeout; the test "a client timeout" does that once).
 */
function dropConnections(holdId: string, count: number) {
  return addFault({ mode: "hang", count, delayMs: 20, match: { metadata: { hold_id: holdId } } });
}

async function expectSeatsFree(sale: Sale, seats: number[]): Promise<void> {
  const other = sale.fans[sale.fans.length - 1];
  if (!other) throw new Error("no spare fan");
  const probe = await tryHold(sale, other, seats);
  expect(probe.ok, JSON.stringify(probe)).toBe(true);
}

describe.each(["calm", "hot"] as const)("checkout of a %s event", (demandClass) => {
  describe("payment succeeds", () => {
    it("answers 200 and the consumer writes one order with its tickets, linked to the payment", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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

  describe("payment is declined", () => {
    it.each([
      ["a generic decline (test card)", "pm_card_chargeDeclined", undefined, "generic_decline"],
      ["insufficient funds (test card)", "pm_card_chargeDeclinedInsufficientFunds", undefined, "insufficient_funds"],
      ["insufficient funds (injected on a good card)", "pm_card_visa", "insufficient_funds", "insufficient_funds"],
    ] as const)("releases the seats at once after %s when no retry is allowed", async (_name, card, injected, code) => {
      const sale = await openSale({ demandClass, declineRetrySeconds: 0 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass, declineRetrySeconds: 120 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass, declineRetrySeconds: 90 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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

  describe("the fan abandons", () => {
    it("frees the seats when the hold expires, and refuses a payment started after that", async () => {
      const sale = await openSale({ demandClass, holdTtlSeconds: 120 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      clock.to(Date.parse(hold.expiresAt) + 1);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("expired");
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "hold_expired" });
      await expectSeatsFree(sale, PAIR);
      expect(await chargesOf(hold.holdId)).toEqual([]);
      expect(await paymentRows(hold.holdId)).toEqual([]);
    });
  });

  describe("the organizer cancels the event", () => {
    it("refuses a payment started after the cancellation (409 event_cancelled); nothing reaches the gateway", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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

    it("refuses another card after a decline once the event is cancelled; only the declined attempt reached the gateway", async () => {
      const sale = await openSale({ demandClass, declineRetrySeconds: 120 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      await payExpecting(sale, fan, hold.holdId, "pm_card_chargeDeclined", 402);
      await cancelSale(sale);
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 409, code: "event_cancelled" });
      expect(await intentsOf(hold.holdId)).toHaveLength(1);
      expect((await chargesOf(hold.holdId)).map((c) => c.status)).toEqual(["failed"]);
      expect((await paymentRows(hold.holdId)).map((p) => [p.attempt, p.status])).toEqual([[1, "failed"]]);
      await expectNoSale(hold.holdId);
    });

    it("answers 404 for an event no longer published, as fans see drafts everywhere, and charges nothing", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      // The admin API refuses this once the sale has started; the payment checks Postgres all the same.
      await withDb((db) => db.update(events).set({ status: "draft" }).where(eq(events.id, sale.eventId)));
      expect(await pay(sale, fan, hold.holdId, "pm_card_visa")).toMatchObject({ status: 404, code: "not_found" });
      expect(await requestsOf(hold.holdId)).toEqual([]);
      expect(await paymentRows(hold.holdId)).toEqual([]);
    });
  });

  describe("the gateway's answer is ambiguous", () => {
    it("error500 once: the client retries with the same key and the fan is charged once", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      await addFault({ mode: "lose_response", count: 1, match: { path, metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 200);
      await expectConfirmed(hold.holdId, PAIR);
      const requests = await requestsOf(hold.holdId);
      expect(requests.map((r) => [r.outcome, r.replayed])).toEqual(outcomes);
      expect(await intentsOf(hold.holdId)).toHaveLength(1);
      expect(await chargesOf(hold.holdId)).toHaveLength(1);
    });

    it("lose_response on every confirm try: 202, and the webhook confirms; one charge", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      await dropConnections(hold.holdId, 100);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(2 * 60_000);
      await runCron();
      expect((await paymentRows(hold.holdId)).map((p) => [p.status, p.gatewayCalls])).toEqual([["canceled", 2]]);
      expect((await getHold(sale, fan, hold.holdId)).status).toBe("released");
      await expectNoSale(hold.holdId);
    });

    it("hang on the payment's tries, then the gateway recovers: the cron's retry with the same key confirms", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
      await dropConnections(hold.holdId, 2);
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.advance(CRON_STEP_MS);
      await runCron();
      await expectConfirmed(hold.holdId, PAIR);
      const keys = keysOf(hold.holdId);
      expect(new Set((await requestsOf(hold.holdId)).map((r) => r.idempotencyKey))).toEqual(new Set([keys.create, keys.confirm]));
    });

    it("a late success after the cron released the hold: seats still free, so the order is confirmed", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass });
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

  describe("paid after the hold expired", () => {
    it("confirms the order when the seats are still free", async () => {
      const sale = await openSale({ demandClass, holdTtlSeconds: 120 });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
      const sale = await openSale({ demandClass, holdTtlSeconds: 120 });
      const [fan, other] = sale.fans;
      if (!fan || !other) throw new Error("no fans");
      const hold = await holdSeats(sale, fan, PAIR);
      await addFault({ mode: "lose_response", count: 2, match: { path: CONFIRM_PATH, metadata: { hold_id: hold.holdId } } });
      await addFault({ mode: "drop_webhook", match: { metadata: { hold_id: hold.holdId } } });
      await payExpecting(sale, fan, hold.holdId, "pm_card_visa", 202);
      clock.to(Date.parse(hold.expiresAt) + 1);
      const taken = await holdSeats(sale, other, [1, 2]);
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
  });

  describe("the Worker fails mid-way", () => {
    it("a sale never queued after the payment was marked paid is queued by the next cron pass", async () => {
      const sale = await openSale({ demandClass });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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

  describe("webhooks", () => {
    it("duplicated, delayed, reordered and dropped deliveries change nothing", async () => {
      const sale = await openSale({ demandClass, declineRetrySeconds: 120 });
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
      const sale = await openSale({ demandClass });
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
      const sale = await openSale({ demandClass });
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

    it("acknowledges (2xx) and ignores a delivery naming one payment while carrying another's intent", async () => {
      const sale = await openSale({ demandClass, declineRetrySeconds: 120 });
      const [fan, other] = sale.fans;
      if (!fan || !other) throw new Error("no fans");
      const declined = await holdSeats(sale, fan, PAIR);
      await payExpecting(sale, fan, declined.holdId, "pm_card_chargeDeclined", 402);
      const paid = await holdSeats(sale, other, [4, 5]);
      await payExpecting(sale, other, paid.holdId, "pm_card_visa", 200);
      await expectConfirmed(paid.holdId, [4, 5]);
      const [victim] = await paymentRows(declined.holdId);
      const [owner] = await paymentRows(paid.holdId);
      if (!victim || !owner) throw new Error("no payments");
      const success = sent(await webhooksOf({ hold_id: paid.holdId })).find((d) => d.type === "payment_intent.succeeded");
      if (!success) throw new Error("no success delivery");
      const crossed = success.payload.replaceAll(owner.id, victim.id);
      expect(crossed).not.toBe(success.payload);
      const notAUuid = success.payload.replaceAll(owner.id, "not-a-payment");
      for (const payload of [crossed, notAUuid]) {
        const response = await deliver({ ...success, payload }, await sign(payload, Math.floor(Date.now() / 1000)));
        expect(response.status, response.body).toBe(200);
      }
      expect(await paymentRows(declined.holdId)).toEqual([victim]);
      expect(await paymentRows(paid.holdId)).toEqual([owner]);
      await expectConfirmed(paid.holdId, [4, 5]);
      expect(await chargesOf(declined.holdId)).toHaveLength(1);
    });

    it("refuses a delivery whose signature does not match, and changes nothing", async () => {
      const sale = await openSale({ demandClass });
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

describe("a client timeout", () => {
  it(
    "hang: the client gives up after its timeout and answers 202; the cron retries with the same key and confirms",
    async () => {
      const sale = await openSale({ demandClass: "hot" });
      const [fan] = sale.fans;
      if (!fan) throw new Error("no fan");
      const hold = await holdSeats(sale, fan, PAIR);
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
    const sale = await openSale({ demandClass });
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
    const sale = await openSale({ demandClass });
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
    const sale = await openSale({ demandClass });
    const [fan] = sale.fans;
    if (!fan) throw new Error("no fan");
    const hold = await holdSeats(sale, fan, PAIR);
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
    const sale = await openSale({ demandClass });
    const [fan] = sale.fans;
    if (!fan) throw new Error("no fan");
    const hold = await holdSeats(sale, fan, PAIR);
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
    const sale = await openSale({ demandClass });
    const [fan] = sale.fans;
    if (!fan) throw new Error("no fan");
    const hold = await holdSeats(sale, fan, PAIR);
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
    const sale = await openSale({ demandClass: "calm" });
    const [fan] = sale.fans;
    if (!fan) throw new Error("no fan");
    const hold = await holdSeats(sale, fan, PAIR);
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
