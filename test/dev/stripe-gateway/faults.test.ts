/** Request faults (error500, hang, lose_response, decline) and what a client retrying with the same key ends with. */
import fc from "fast-check";
import Stripe from "stripe";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { api, cardErrorOf, createParams, gateway, newHold, receiver, rejectionOf, stripe, useGateway } from "./fixtures.ts";

useGateway();

describe("faults", () => {
  it("error500 fails before acting; the client's retry with the same key charges exactly once", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "error500", match: { path: "/v1/payment_intents", idempotencyKey: key(1) } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(gateway.requests({ idempotencyKey: key(1) }).map((request) => [request.outcome, request.fault])).toEqual([
      [500, "error500"],
      [200, null],
    ]);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("error500 on every try surfaces as StripeAPIError, and nothing was created", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "error500", count: 2, match: { idempotencyKey: key(1) } });
    const error = await rejectionOf(stripe({ maxNetworkRetries: 1 }).paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(error).toMatchObject({ statusCode: 500, raw: { type: "api_error" } });
    expect(gateway.paymentIntents({ metadata: { hold_id: holdId } })).toEqual([]);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
  });

  it("lose_response charges, then the client's automatic retry gets the replayed result: one charge, one event", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", match: { metadata: { hold_id: holdId } } });
    const intent = await stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(intent.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(gateway.requests({ idempotencyKey: key(1) }).map((request) => [request.outcome, request.replayed])).toEqual([
      ["lost", false],
      [200, true],
    ]);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.succeeded"]);
  });

  it("lose_response is retried once even with maxNetworkRetries 0 (a closed connection), so the key matters there too", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", match: { idempotencyKey: key(1) } });
    const intent = await stripe({ maxNetworkRetries: 0 }).paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("lose_response on every try leaves the client unsure; retrieving shows the charge went through, and a later retry replays it", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "lose_response", count: 2, match: { idempotencyKey: key(1) } });
    const params = createParams(holdId, { payment_method: "pm_card_visa", confirm: true });
    const error = await rejectionOf(stripe({ maxNetworkRetries: 0 }).paymentIntents.create(params, { idempotencyKey: key(1) }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);

    const [truth] = gateway.paymentIntents({ metadata: { hold_id: holdId } });
    expect(truth).toMatchObject({ status: "succeeded", amount_received: 4_500 });
    expect((await stripe().paymentIntents.retrieve(String(truth?.id))).status).toBe("succeeded");
    const retried = await stripe().paymentIntents.create(params, { idempotencyKey: key(1) });
    expect(retried.id).toBe(truth?.id);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("hang: the client times out, nothing was charged, and a retry with the same key charges once", async () => {
    const { holdId, key } = newHold();
    const client = stripe();
    const intent = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa" }), { idempotencyKey: key(0) });
    gateway.addFault({ mode: "hang", match: { path: `/v1/payment_intents/${intent.id}/confirm` } });
    const error = await rejectionOf(client.paymentIntents.confirm(intent.id, {}, { idempotencyKey: key(1), timeout: 200, maxNetworkRetries: 0 }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(error).toMatchObject({ message: expect.stringMatching(/timeout/) });

    expect(await client.paymentIntents.retrieve(intent.id)).toMatchObject({ status: "requires_confirmation", latest_charge: null });
    expect(gateway.charges({ paymentIntent: intent.id })).toEqual([]);
    await vi.waitFor(() => expect(gateway.requests({ idempotencyKey: key(1) })[0]?.outcome).toBe("hung"), { interval: 5 });

    const confirmed = await client.paymentIntents.confirm(intent.id, {}, { idempotencyKey: key(1) });
    expect(confirmed.status).toBe("succeeded");
    expect(gateway.charges({ paymentIntent: intent.id })).toHaveLength(1);
  });

  it("hang: the client's own retry after its timeout succeeds, charging once", async () => {
    const { holdId, key } = newHold();
    gateway.addFault({ mode: "hang", match: { idempotencyKey: key(1) } });
    const intent = await stripe({ timeout: 300 }).paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) });
    expect(intent.status).toBe("succeeded");
    const outcomes = gateway.requests({ idempotencyKey: key(1) }).map((request) => request.outcome);
    expect(outcomes[0]).toBe("hung");
    expect(outcomes.at(-1)).toBe(200);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
  });

  it("decline declines a good card for the matching hold only, count times", async () => {
    const { holdId, key } = newHold();
    const other = newHold();
    gateway.addFault({ mode: "decline", declineCode: "insufficient_funds", match: { metadata: { hold_id: holdId } } });
    const otherIntent = await stripe().paymentIntents.create(createParams(other.holdId, { payment_method: "pm_card_visa", confirm: true }));
    expect(otherIntent.status).toBe("succeeded");

    const error = await cardErrorOf(stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    expect(error).toMatchObject({ code: "card_declined", decline_code: "insufficient_funds" });
    const paid = await stripe().paymentIntents.confirm(String(error.payment_intent?.id), { payment_method: "pm_card_visa" }, { idempotencyKey: key(2) });
    expect(paid.status).toBe("succeeded");
  });

  it("whatever request faults hit, a client retrying with the same key ends with one PaymentIntent, one charge and one answer", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom("error500", "lose_response", "hang", "none"), { maxLength: 4 }), async (schedule) => {
        const { holdId, key } = newHold();
        for (const mode of schedule) if (mode !== "none") gateway.addFault({ mode, match: { idempotencyKey: key(1) } });
        const form = { amount: "4500", currency: "eur", "metadata[hold_id]": holdId, payment_method: "pm_card_visa", confirm: "true" };
        const answers: string[] = [];
        for (let attempt = 0; attempt < 12 && answers.length < 2; attempt++) {
          const answer = await api("POST", "/v1/payment_intents", { form, idempotencyKey: key(1), signal: AbortSignal.timeout(100) }).catch(() => undefined);
          if (answer?.status === 200) answers.push(answer.text);
        }
        expect(answers).toHaveLength(2);
        expect(answers[1]).toBe(answers[0]);
        expect(gateway.paymentIntents({ metadata: { hold_id: holdId } })).toHaveLength(1);
        expect(gateway.charges({ metadata: { hold_id: holdId } })).toHaveLength(1);
      }),
      { numRuns: 25 },
    );
  });
});

describe("create, then confirm (the Worker's two calls)", () => {
  const requestModes = fc.array(fc.constantFrom("error500", "lose_response", "hang", "none"), { maxLength: 4 });

  /** Sends one request until it is answered 200, as a client retrying with the same key does; returns the answers' bodies. */
  async function untilAnswered(path: string, form: Record<string, string>, idempotencyKey: string, answers = 1): Promise<unknown[]> {
    const bodies: unknown[] = [];
    for (let attempt = 0; attempt < 12 && bodies.length < answers; attempt++) {
      const answer = await api("POST", path, { form, idempotencyKey, signal: AbortSignal.timeout(100) }).catch(() => undefined);
      if (answer?.status === 200) bodies.push(answer.body);
    }
    expect(bodies).toHaveLength(answers);
    return bodies;
  }

  it("whatever request faults hit either call, the create charges nothing, the confirm charges once, and the paid intent cannot be canceled", async () => {
    await fc.assert(
      fc.asyncProperty(requestModes, requestModes, async (createFaults, confirmFaults) => {
        const { holdId, key } = newHold();
        for (const mode of createFaults) if (mode !== "none") gateway.addFault({ mode, match: { path: "/v1/payment_intents", metadata: { hold_id: holdId } } });
        for (const mode of confirmFaults) if (mode !== "none") gateway.addFault({ mode, match: { path: "/v1/payment_intents/*/confirm", metadata: { hold_id: holdId } } });

        const form = { amount: "4500", currency: "eur", "metadata[hold_id]": holdId, payment_method: "pm_card_visa" };
        const [created] = await untilAnswered("/v1/payment_intents", form, key(1));
        const intentId = z.object({ id: z.string(), status: z.literal("requires_confirmation") }).parse(created).id;
        expect(gateway.paymentIntents({ metadata: { hold_id: holdId } }).map((intent) => [intent.id, intent.status])).toEqual([[intentId, "requires_confirmation"]]);
        expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
        await gateway.settleWebhooks();
        expect(receiver.typesFor(intentId)).toEqual([]);

        const [first, second] = await untilAnswered(`/v1/payment_intents/${intentId}/confirm`, {}, `${key(1)}_confirm`, 2);
        expect(second).toEqual(first);
        expect(first).toMatchObject({ id: intentId, status: "succeeded" });
        expect(gateway.charges({ metadata: { hold_id: holdId } })).toMatchObject([{ paymentIntent: intentId, status: "succeeded", idempotencyKey: `${key(1)}_confirm` }]);
        const cancel = await api("POST", `/v1/payment_intents/${intentId}/cancel`, { form: {} });
        expect(cancel).toMatchObject({ status: 400, body: { error: { code: "payment_intent_unexpected_state", payment_intent: { status: "succeeded" } } } });
      }),
      { numRuns: 25 },
    );
  });

  it("a cancel whose answer was lost took effect: the intent is canceled and a confirm afterwards charges nothing", async () => {
    const { holdId, key } = newHold();
    const client = stripe({ maxNetworkRetries: 0 });
    const intent = await client.paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa" }), { idempotencyKey: key(1) });
    gateway.addFault({ mode: "lose_response", count: 2, match: { path: "/v1/payment_intents/*/cancel", metadata: { hold_id: holdId } } });
    expect(await rejectionOf(client.paymentIntents.cancel(intent.id))).toBeInstanceOf(Stripe.errors.StripeConnectionError);

    expect(await client.paymentIntents.retrieve(intent.id)).toMatchObject({ status: "canceled", latest_charge: null });
    const late = await rejectionOf(client.paymentIntents.confirm(intent.id, {}, { idempotencyKey: `${key(1)}_confirm` }));
    expect(late).toMatchObject({ statusCode: 400, code: "payment_intent_unexpected_state" });
    expect(gateway.charges({ paymentIntent: intent.id })).toEqual([]);
  });
});
