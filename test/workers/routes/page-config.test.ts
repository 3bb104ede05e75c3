/** `GET /api/config`: the public keys and script URLs the pages load Turnstile and Stripe.js with. */
import { env, SELF } from "cloudflare:test";
import { expect, it } from "vitest";
import { DEFAULT_STRIPE_JS_URL, DEFAULT_TURNSTILE_SCRIPT_URL } from "../../../workers/routes/fans/config";

it("names the Turnstile site key and widget script and Stripe's publishable key and Stripe.js, as configured", async () => {
  const response = await SELF.fetch("https://tickets.test/api/config");
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({
    turnstile: { siteKey: env.TURNSTILE_SITE_KEY, scriptUrl: env.TURNSTILE_SCRIPT_URL },
    stripe: { publishableKey: "pk_test_local", jsUrl: env.STRIPE_JS_URL },
  });
  // Locally the stand-ins; production leaves the URLs unset and gets Cloudflare's and Stripe's own.
  expect(env.TURNSTILE_SCRIPT_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/turnstile\/v0\/api\.js$/);
  expect(env.STRIPE_JS_URL).toBe(`${env.STRIPE_API_BASE}/v3/`);
  expect(DEFAULT_TURNSTILE_SCRIPT_URL).toBe("https://challenges.cloudflare.com/turnstile/v0/api.js");
  expect(DEFAULT_STRIPE_JS_URL).toBe("https://js.stripe.com/v3/");
});
