/**
 * The steps of a journey that a later phase changes underneath: joining the
 * line (the Turnstile widget comes first then) and paying (card entry in the
 * Payment Element, 3-D Secure). Tests call these, so that phase edits one
 * place. Checkout collects the card with Stripe.js (locally the gateway's
 * stand-in: labelled card number, expiry and CVC fields), and a card that
 * needs 3-D Secure opens the bank's challenge in a dialog.
 */
import type { Page } from "playwright-core";

/** Stripe's test cards, by outcome. */
export const TEST_CARDS = {
  succeeds: { number: "4242 4242 4242 4242" },
  declined: { number: "4000 0000 0000 0002" },
  threeDSecure: { number: "4000 0027 6000 3184" },
} as const;

/**
 * Joins the line on the waiting-room page, as in production: the page loads
 * the Turnstile widget script GET /api/config names (locally the stand-in's),
 * the widget passes by itself with the test site key and hands the page its
 * token, and the join sends it for the server's siteverify.
 */
export async function joinTheLine(page: Page): Promise<void> {
  await page.locator("#turnstile .cf-turnstile-widget").getByText("Success!").waitFor();
  const join = page.waitForRequest((request) => request.method() === "POST" && new URL(request.url()).pathname.endsWith("/lobby"));
  await page.getByRole("button", { name: "Join the line" }).click();
  const body: unknown = (await join).postDataJSON();
  if (typeof body !== "object" || body === null || !("turnstileToken" in body) || body.turnstileToken !== "XXXX.DUMMY.TOKEN.XXXX") {
    throw new Error(`the lobby join did not carry the widget's token: ${JSON.stringify(body)}`);
  }
}

/** Pays on the checkout page with `card`; the caller waits for the outcome it expects. */
export async function payWith(page: Page, card: keyof typeof TEST_CARDS): Promise<void> {
  await page.getByLabel("Card number").fill(TEST_CARDS[card].number);
  await page.getByLabel("Expiry (MM / YY)").fill("12 / 34");
  await page.getByLabel("Security code (CVC)").fill("123");
  await page.getByRole("button", { name: /^Pay / }).click();
}

/** The bank's 3-D Secure challenge, in the dialog Stripe.js opens: passed or failed (abandoning is leaving it open). */
export async function answerChallenge(page: Page, outcome: "pass" | "fail"): Promise<void> {
  const challenge = page.frameLocator('iframe[title="3-D Secure authentication"]');
  await challenge.getByRole("button", { name: outcome === "pass" ? "Complete authentication" : "Fail authentication" }).click();
}
