/**
 * The browser side of the gateway: a stand-in for Stripe.js (`GET /v3/`)
 * with the calls our checkout page uses, and the 3-D Secure challenge page
 * it opens (`/3ds/:intent`), whose buttons pass or fail the challenge; a fan
 * who closes it abandons the challenge, and the intent waits in
 * `requires_action` until someone cancels it.
 *
 * The script's API is Stripe.js's: `Stripe(publishableKey)`, `elements()`,
 * `elements.create("card")`, `element.mount(selectorOrNode)`,
 * `stripe.createPaymentMethod({ type: "card", card: element })` (→
 * `{ paymentMethod }` or `{ error }`), and `stripe.handleNextAction({ clientSecret })`
 * (→ `{ paymentIntent }` or `{ error }`). It talks to the gateway's API with
 * the publishable key, as Stripe.js does, and the card element is plain
 * labelled inputs in the page instead of Stripe's iframe.
 */

export const STRIPE_JS_PATH = "/v3/";
export const CHALLENGE_PATH = "/3ds";

/** The Stripe.js stand-in. `__ORIGIN__` becomes the gateway's origin as the page reached it. */
const STRIPE_JS = String.raw`(() => {
  const origin = "__ORIGIN__";
  function form(fields) {
    return Object.entries(fields).map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");
  }
  function Stripe(publishableKey) {
    if (!/^pk_(test|live)_/.test(String(publishableKey))) throw new Error("Stripe(): a publishable key (pk_...) is required.");
    const auth = { Authorization: "Bearer " + publishableKey };
    async function call(method, path, fields) {
      const response = await fetch(origin + path, {
        method,
        headers: method === "POST" ? { ...auth, "Content-Type": "application/x-www-form-urlencoded" } : auth,
        body: method === "POST" ? form(fields) : undefined,
      });
      const body = await response.json();
      return response.ok ? { ok: true, body } : { ok: false, error: body.error };
    }
    function intentIdOf(clientSecret) {
      return String(clientSecret).split("_secret_")[0];
    }
    async function retrieveIntent(clientSecret) {
      return call("GET", "/v1/payment_intents/" + intentIdOf(clientSecret) + "?" + form({ client_secret: clientSecret }));
    }
    function challenge(url) {
      return new Promise((resolve) => {
        const overlay = document.createElement("div");
        overlay.setAttribute("role", "dialog");
        overlay.setAttribute("aria-modal", "true");
        overlay.setAttribute("aria-label", "Card authentication");
        overlay.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.6);display:flex;align-items:center;justify-content:center;z-index:2147483647";
        const frame = document.createElement("iframe");
        frame.title = "3-D Secure authentication";
        frame.name = "stripe-challenge-frame";
        frame.src = url;
        frame.style.cssText = "width:min(420px,94vw);height:min(520px,90vh);border:0;border-radius:8px;background:#fff";
        overlay.append(frame);
        function done(event) {
          if (event.source !== frame.contentWindow || !event.data || event.data.type !== "stripe-3ds-complete") return;
          window.removeEventListener("message", done);
          overlay.remove();
          resolve();
        }
        window.addEventListener("message", done);
        document.body.append(overlay);
      });
    }
    return {
      elements() {
        return {
          create(type) {
            if (type !== "card" && type !== "payment") throw new Error("elements.create(): only 'card' and 'payment' are supported by the local stand-in.");
            const fields = {};
            return {
              mount(target) {
                const host = typeof target === "string" ? document.querySelector(target) : target;
                if (!host) throw new Error("element.mount(): no such element");
                const wrap = document.createElement("div");
                wrap.className = "stripe-card-element";
                for (const [name, label, autocomplete, placeholder] of [
                  ["number", "Card number", "cc-number", "4242 4242 4242 4242"],
                  ["expiry", "Expiry (MM / YY)", "cc-exp", "12 / 34"],
                  ["cvc", "Security code (CVC)", "cc-csc", "123"],
                ]) {
                  const id = "stripe-card-" + name;
                  const row = document.createElement("p");
                  row.className = "field";
                  const labelEl = document.createElement("label");
                  labelEl.htmlFor = id;
                  labelEl.textContent = label;
                  const input = document.createElement("input");
                  Object.assign(input, { id, name: id, inputMode: "numeric", autocomplete, placeholder });
                  row.append(labelEl, input);
                  wrap.append(row);
                  fields[name] = input;
                }
                host.replaceChildren(wrap);
              },
              _card() {
                const [month, year] = (fields.expiry ? fields.expiry.value : "").split("/").map((part) => part.trim());
                return {
                  number: (fields.number ? fields.number.value : "").replace(/\s+/g, ""),
                  exp_month: month || "",
                  exp_year: year && year.length === 2 ? "20" + year : year || "",
                  cvc: fields.cvc ? fields.cvc.value.trim() : "",
                };
              },
            };
          },
        };
      },
      async createPaymentMethod(options) {
        const element = options && (options.card || (options.elements && options.element));
        if (!element || typeof element._card !== "function") return { error: { type: "validation_error", message: "Pass the mounted card element as { card }." } };
        const card = element._card();
        const result = await call("POST", "/v1/payment_methods", {
          type: "card",
          "card[number]": card.number,
          "card[exp_month]": card.exp_month,
          "card[exp_year]": card.exp_year,
          "card[cvc]": card.cvc,
        });
        return result.ok ? { paymentMethod: result.body } : { error: result.error };
      },
      async handleNextAction({ clientSecret }) {
        const before = await retrieveIntent(clientSecret);
        if (!before.ok) return { error: before.error };
        const action = before.body.next_action;
        if (before.body.status === "requires_action" && action && action.type === "use_stripe_sdk") await challenge(action.use_stripe_sdk.stripe_js);
        const after = await retrieveIntent(clientSecret);
        if (!after.ok) return { error: after.error };
        if (after.body.last_payment_error) return { error: { ...after.body.last_payment_error, payment_intent: after.body } };
        return { paymentIntent: after.body };
      },
    };
  }
  window.Stripe = Stripe;
})();
`;

/** Stripe.js as served to a page that reached the gateway at `origin`. */
export function stripeJs(origin: string): string {
  return STRIPE_JS.replace("__ORIGIN__", origin);
}

/** The challenge page for a PaymentIntent, or the page saying how it ended. */
export function challengePage(intentId: string, ended?: "passed" | "failed"): string {
  const body = ended
    ? `<h1>Authentication ${ended === "passed" ? "complete" : "failed"}</h1>
<p>${ended === "passed" ? "Your bank confirmed the payment." : "Your bank could not confirm the payment."} Returning to the shop…</p>
<script>parent.postMessage({ type: "stripe-3ds-complete", paymentIntent: ${JSON.stringify(intentId)} }, "*");</script>`
    : `<h1>Confirm your payment</h1>
<p>Test bank: this stands in for your card issuer's 3-D Secure check.</p>
<form method="post">
<button type="submit" name="outcome" value="pass">Complete authentication</button>
<button type="submit" name="outcome" value="fail">Fail authentication</button>
</form>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>3-D Secure authentication</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1.5rem;color:#1a1a1a;background:#fff}button{display:block;width:100%;min-height:44px;margin:.75rem 0;font:inherit;border-radius:6px;border:2px solid #1a4fd6;background:#1a4fd6;color:#fff}button[value=fail]{background:#fff;color:#1a4fd6}button:focus-visible{outline:3px solid #000;outline-offset:2px}</style>
</head><body><main>${body}</main></body></html>`;
}
