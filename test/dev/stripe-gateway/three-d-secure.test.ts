/** Card collection and 3-D Secure: PaymentMethods from test card numbers with the publishable key, the challenge page's pass / fail / abandon, and the Stripe.js stand-in. */
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { api, createParams, gateway, newHold, receiver, stripe, useGateway } from "./fixtures.ts";

useGateway();

const PUBLISHABLE_KEY = "pk_test_local";

/** What Stripe.js's createPaymentMethod sends for a card typed into the card element. */
async function paymentMethodFor(number: string): Promise<Stripe.PaymentMethod> {
  const created = await api("POST", "/v1/payment_methods", {
    key: PUBLISHABLE_KEY,
    form: { type: "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123" },
  });
  expect(created.status, created.text).toBe(200);
  return created.body as Stripe.PaymentMethod;
}

/** Creates an intent unconfirmed and confirms it with the card, as the Worker does. */
async function confirmWith(number: string): Promise<{ holdId: string; intent: Stripe.PaymentIntent }> {
  const { holdId, key } = newHold();
  const paymentMethod = await paymentMethodFor(number);
  const created = await stripe().paymentIntents.create(createParams(holdId, { payment_method: paymentMethod.id }), { idempotencyKey: key(1) });
  const intent = await stripe().paymentIntents.confirm(created.id, {}, { idempotencyKey: `${key(1)}_confirm` });
  return { holdId, intent };
}

async function challenge(intent: Stripe.PaymentIntent, outcome: "pass" | "fail"): Promise<{ status: number; text: string }> {
  const url = intent.next_action?.use_stripe_sdk?.stripe_js;
  if (typeof url !== "string") throw new Error("no challenge url");
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `outcome=${outcome}` });
  return { status: response.status, text: await response.text() };
}

describe("card collection with the publishable key", () => {
  it("creates a PaymentMethod from a test card number, and a publishable key can do nothing else", async () => {
    const paymentMethod = await paymentMethodFor("4242424242424242");
    expect(paymentMethod).toMatchObject({ object: "payment_method", type: "card", card: { brand: "visa", last4: "4242", exp_month: 12, exp_year: 2034 } });
    expect(paymentMethod.id).toMatch(/^pm_\w{24}$/);
    const refused = await api("POST", "/v1/payment_intents", { key: PUBLISHABLE_KEY, form: { amount: "4500", currency: "eur" } });
    expect(refused.status).toBe(401);
    const bad = await api("POST", "/v1/payment_methods", { key: PUBLISHABLE_KEY, form: { type: "card", "card[number]": "4242", "card[exp_month]": "12", "card[exp_year]": "2034" } });
    expect(bad.status).toBe(400);
  });

  it.each([
    ["4242424242424242", "succeeded", null],
    ["4000000000000002", "requires_payment_method", "generic_decline"],
    ["4000000000009995", "requires_payment_method", "insufficient_funds"],
  ])("card %s: %s (%s)", async (number, status, declineCode) => {
    const { holdId, key } = newHold();
    const paymentMethod = await paymentMethodFor(number);
    const created = await stripe().paymentIntents.create(createParams(holdId, { payment_method: paymentMethod.id }), { idempotencyKey: key(1) });
    const outcome = await stripe()
      .paymentIntents.confirm(created.id, {}, { idempotencyKey: `${key(1)}_confirm` })
      .then((intent) => ({ status: intent.status, declineCode: null }))
      .catch((error: unknown) => {
        if (!(error instanceof Stripe.errors.StripeCardError)) throw error;
        return { status: error.payment_intent?.status, declineCode: error.decline_code };
      });
    expect(outcome).toEqual({ status, declineCode });
  });
});

describe("3-D Secure (4000 0027 6000 3184)", () => {
  it("confirm answers requires_action with a use_stripe_sdk challenge, charges nothing and sends payment_intent.requires_action", async () => {
    const { holdId, intent } = await confirmWith("4000002760003184");
    expect(intent).toMatchObject({ status: "requires_action", next_action: { type: "use_stripe_sdk", use_stripe_sdk: { type: "three_d_secure_redirect" } }, latest_charge: null });
    expect(intent.next_action?.use_stripe_sdk?.stripe_js).toBe(`${gateway.url}/3ds/${intent.id}?source=${String(intent.next_action?.use_stripe_sdk?.source)}`);
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.requires_action"]);
    const page = await fetch(String(intent.next_action?.use_stripe_sdk?.stripe_js));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Complete authentication");
  });

  it("passing the challenge charges the card once: succeeded, payment_intent.succeeded; it cannot be completed twice", async () => {
    const { holdId, intent } = await confirmWith("4000002760003184");
    const passed = await challenge(intent, "pass");
    expect(passed.status).toBe(200);
    expect(passed.text).toContain("stripe-3ds-complete");
    expect(await stripe().paymentIntents.retrieve(intent.id)).toMatchObject({ status: "succeeded", next_action: null, amount_received: 4_500 });
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toMatchObject([{ status: "succeeded", paymentIntent: intent.id }]);
    expect((await challenge(intent, "fail")).status).toBe(409);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.requires_action", "payment_intent.succeeded"]);
  });

  it("failing the challenge leaves requires_payment_method with payment_intent_authentication_failure and no charge", async () => {
    const { holdId, intent } = await confirmWith("4000002760003184");
    expect((await challenge(intent, "fail")).status).toBe(200);
    const failed = await stripe().paymentIntents.retrieve(intent.id);
    expect(failed).toMatchObject({ status: "requires_payment_method", payment_method: null, last_payment_error: { code: "payment_intent_authentication_failure" } });
    expect(gateway.charges({ metadata: { hold_id: holdId } })).toEqual([]);
    await gateway.settleWebhooks();
    expect(receiver.typesFor(intent.id)).toEqual(["payment_intent.requires_action", "payment_intent.payment_failed"]);
  });

  it("an abandoned challenge waits in requires_action until the intent is canceled; the challenge then cannot pass", async () => {
    const { intent } = await confirmWith("4000002760003184");
    expect((await stripe().paymentIntents.retrieve(intent.id)).status).toBe("requires_action");
    expect(await stripe().paymentIntents.cancel(intent.id)).toMatchObject({ status: "canceled" });
    expect((await challenge(intent, "pass")).status).toBe(409);
    expect((await stripe().paymentIntents.retrieve(intent.id)).status).toBe("canceled");
  });

  it("Stripe.js reads the intent with the publishable key only when it holds the client secret", async () => {
    const { intent } = await confirmWith("4000002760003184");
    const withSecret = await api("GET", `/v1/payment_intents/${intent.id}?client_secret=${String(intent.client_secret)}`, { key: PUBLISHABLE_KEY });
    expect(withSecret.status).toBe(200);
    expect(withSecret.body).toMatchObject({ id: intent.id, status: "requires_action" });
    expect((await api("GET", `/v1/payment_intents/${intent.id}?client_secret=${intent.id}_secret_wrong`, { key: PUBLISHABLE_KEY })).status).toBe(401);
  });
});

describe("the Stripe.js stand-in", () => {
  it("is served at /v3/ with Stripe.js's API, pointing at the gateway, and CORS lets pages call the API", async () => {
    const script = await fetch(`${gateway.url}/v3/`);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    const text = await script.text();
    for (const name of ["createPaymentMethod", "handleNextAction", "elements", "mount", "window.Stripe"]) expect(text).toContain(name);
    expect(text).toContain(`"${gateway.url}"`);
    const preflight = await fetch(`${gateway.url}/v1/payment_methods`, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
  });
});
