/**
 * The steps of a journey that a later phase changes underneath: joining the
 * line (the Turnstile widget comes first then) and paying (card entry in the
 * Payment Element, 3-D Secure). Tests call these, so that phase edits one
 * place. Today checkout offers Stripe's test payment methods as radio
 * buttons; each card here names its label there and its test card number.
 */
import type { Page } from "playwright-core";

/** Stripe's test cards, by outcome. */
export const TEST_CARDS = {
  succeeds: { label: "Visa 4242 (succeeds)", number: "4242424242424242" },
  declined: { label: "Visa 0002 (declined)", number: "4000000000000002" },
} as const;

/** Joins the line on the waiting-room page (the human check passes by itself with the test site key). */
export async function joinTheLine(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Join the line" }).click();
}

/** Pays on the checkout page with `card`; the caller waits for the outcome it expects. */
export async function payWith(page: Page, card: keyof typeof TEST_CARDS): Promise<void> {
  await page.getByLabel(TEST_CARDS[card].label).check();
  await page.getByRole("button", { name: /^Pay / }).click();
}
