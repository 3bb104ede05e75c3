/** The control routes (`/__...`) that the Worker's tests use from inside workerd. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { cardErrorOf, control, createParams, newHold, receiver, stripe, useGateway } from "./fixtures.ts";

useGateway();

describe("control over HTTP (for the Worker's tests in workerd)", () => {
  it("adds, lists and removes faults; rejects a bad one", async () => {
    const { holdId } = newHold();
    const added = await control("POST", "/__faults", { mode: "error500", count: 1, match: { path: "/v1/payment_intents", metadata: { hold_id: holdId } } });
    expect(added).toMatchObject({ status: 201, body: { id: expect.any(String), mode: "error500", remaining: 1 } });
    const { id } = z.object({ id: z.string() }).parse(added.body);
    expect((await control("GET", "/__faults")).body).toMatchObject([{ id, remaining: 1 }]);
    expect(await control("DELETE", `/__faults/${id}`)).toEqual({ status: 200, body: { cleared: 1 } });
    expect(await control("DELETE", `/__faults/${id}`)).toEqual({ status: 404, body: { cleared: 0 } });

    expect((await control("POST", "/__faults", { mode: "explode" })).status).toBe(400);
    expect((await control("POST", "/__faults", { mode: "reorder_webhooks", count: 1 })).status).toBe(400);
    expect((await control("POST", "/__faults", { mode: "hang", declineCode: "insufficient_funds" })).status).toBe(400);
    await control("POST", "/__faults", { mode: "hang", count: 3 });
    expect(await control("DELETE", "/__faults")).toEqual({ status: 200, body: { cleared: 1 } });
  });

  it("drives a decline and a delayed webhook, and shows charges, intents, webhooks and requests filtered by hold", async () => {
    const { holdId, key } = newHold();
    await control("POST", "/__faults", { mode: "decline", match: { metadata: { hold_id: holdId } } });
    await control("POST", "/__faults", { mode: "delay_webhook", count: 2, match: { metadata: { hold_id: holdId } } });
    const declined = await cardErrorOf(stripe().paymentIntents.create(createParams(holdId, { payment_method: "pm_card_visa", confirm: true }), { idempotencyKey: key(1) }));
    const intentId = String(declined.payment_intent?.id);
    await stripe().paymentIntents.confirm(intentId, { payment_method: "pm_card_visa" }, { idempotencyKey: key(2) });

    const query = `metadata[hold_id]=${encodeURIComponent(holdId)}`;
    expect((await control("GET", `/__charges?${query}`)).body).toMatchObject([
      { paymentIntent: intentId, status: "failed", declineCode: "generic_decline", idempotencyKey: key(1) },
      { paymentIntent: intentId, status: "succeeded", idempotencyKey: key(2) },
    ]);
    expect((await control("GET", `/__payment_intents?${query}`)).body).toMatchObject([{ id: intentId, status: "succeeded" }]);
    expect((await control("GET", `/__requests?idempotency_key=${encodeURIComponent(key(2))}`)).body).toMatchObject([{ outcome: 200, paymentIntent: intentId, metadata: { hold_id: holdId } }]);

    expect((await control("POST", "/__webhooks/settle")).status).toBe(200);
    expect(receiver.typesFor(intentId)).toEqual([]);
    expect((await control("GET", `/__webhooks?payment_intent=${intentId}`)).body).toMatchObject([{ status: "held" }, { status: "held" }]);
    expect(await control("POST", "/__webhooks/flush")).toEqual({ status: 200, body: { released: 2 } });
    expect(receiver.typesFor(intentId)).toEqual(["payment_intent.payment_failed", "payment_intent.succeeded"]);
    expect((await control("GET", `/__webhooks?type=payment_intent.succeeded&${query}`)).body).toMatchObject([{ status: "delivered", eventId: expect.stringMatching(/^evt_/) }]);
  });
});
