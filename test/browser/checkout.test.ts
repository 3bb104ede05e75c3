/**
 * Checkout in a browser: it loads without asking for a payment that does not
 * exist, counts down to the hold's own end even on a device whose clock is
 * wrong, and after a declined card says plainly why the time left has dropped
 * to the retry window, in which another card still buys the seats. A card
 * that needs 3-D Secure opens the bank's challenge (Stripe.js's dialog) and
 * the tickets follow once it passes. A free seat asks for no card.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { seriousViolations } from "./harness/axe";
import { calmEvent, deliverWebhooks, fanEmail, holdExpiresAt, holdOnMap, newFan, signInByApi, waitFor } from "./harness/fixtures";
import { Screenshots, watchPage } from "./harness/pages";
import { answerChallenge, payWith } from "./harness/steps";

const browser = chromiumForThisFile();

/** The countdown on the page, in milliseconds ("10:23" is 623,000). */
async function countdownMs(page: Page): Promise<number> {
  const text = await page.locator("#countdown").innerText();
  const match = /^(\d+):(\d\d)$/.exec(text);
  if (!match) throw new Error(`the countdown reads "${text}"`);
  return (Number(match[1]) * 60 + Number(match[2])) * 1000;
}

/** The hold id in the checkout page's address. */
const holdIdOf = (page: Page): string => new URL(page.url()).searchParams.get("hold") ?? "";

describe("checkout", () => {
  it("counts down to the hold's end on the server's clock, on a phone whose clock is 12 minutes fast", async () => {
    const event = await calmEvent();
    const session = await signInByApi(fanEmail("skewed"));
    const fan = await newFan(browser(), "phone", session);
    const page = await fan.newPage();
    const problems = watchPage(page);
    await page.clock.install({ time: Date.now() + 12 * 60_000 });
    await page.goto(`/event?id=${event.id}`);
    await page.getByRole("button", { name: "Zoom in" }).tap();
    await holdOnMap(page, [{ section: "Balcony", row: "BA1", seat: 4 }], true);
    const expiresAt = await holdExpiresAt(event.id, holdIdOf(page), session);
    // Read the countdown, then the true time left, with the page's own tick in between at most.
    const shown = await countdownMs(page);
    const left = expiresAt - Date.now();
    expect(Math.abs(shown - left)).toBeLessThanOrEqual(2_500);
    expect(await page.locator("#countdown-label").innerText()).toBe("Your seats are held for");
    await new Screenshots("checkout-clock", "phone").take(page, "checkout");
    // Loading checkout asked for no payment: there is none yet.
    expect(problems.failedCalls).toEqual([]);
    await fan.close();
  });

  it.each(DEVICE_NAMES)("on a %s, after a declined card, says why the time left drops to the retry window, and takes another card within it", async (device) => {
    const event = await calmEvent({ declineRetrySeconds: 120 });
    const session = await signInByApi(fanEmail("declined"));
    const shots = new Screenshots("checkout-decline", device);
    const fan = await newFan(browser(), device, session);
    const page = await fan.newPage();
    const problems = watchPage(page);
    const paymentReads: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "GET" && request.url().endsWith("/payment")) paymentReads.push(request.url());
    });
    await page.goto(`/event?id=${event.id}`);
    await holdOnMap(page, [
      { section: "Stalls", row: "A", seat: 1 },
      { section: "Stalls", row: "A", seat: 2 },
    ]);
    expect(paymentReads).toEqual([]);
    expect(await countdownMs(page)).toBeGreaterThan(9 * 60_000);
    await shots.take(page, "checkout");

    await payWith(page, "declined");
    await page.getByText("Time left to try another card:").waitFor();
    const explanation = await page.getByRole("alert").innerText();
    expect(explanation).toMatch(/^Your card was declined\. After a declined card we keep your seats only for 2 minutes more, not until .+, so that other fans are not kept waiting\. Try another card before .+; after that the seats go back on sale\.$/);
    expect(await countdownMs(page)).toBeLessThanOrEqual(120_000);
    await shots.take(page, "checkout-declined");

    // A reload shows the same: now there is a payment to ask about.
    await page.reload();
    await page.getByText("Time left to try another card:").waitFor();
    expect(await page.getByRole("alert").innerText()).toContain("we keep your seats only for 2 minutes more");

    await payWith(page, "succeeds");
    await page.getByRole("heading", { name: "You're going!" }).waitFor();
    await shots.take(page, "checkout-paid-after-decline");
    // The only error answer is the decline itself (402).
    expect(problems.failedCalls).toEqual([{ method: "POST", path: `/api/events/${event.id}/holds/${holdIdOf(page)}/payment`, status: 402 }]);
    await fan.close();
  });

  it("a free seat: checkout asks for no card, and its one button gets the ticket", async () => {
    const event = await calmEvent({
      prices: [
        { priceTier: "Stalls", priceCents: 0 },
        { priceTier: "Balcony", priceCents: 2_500 },
      ],
    });
    const session = await signInByApi(fanEmail("free"));
    const fan = await newFan(browser(), "desktop", session);
    const page = await fan.newPage();
    const problems = watchPage(page);
    const payments: (string | null)[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && request.url().endsWith("/payment")) payments.push(request.postData());
    });
    await page.goto(`/event?id=${event.id}`);
    await holdOnMap(page, [{ section: "Stalls", row: "C", seat: 5 }]);
    expect(await page.locator("#hold-total").innerText()).toMatch(/0\.00$/);
    expect(await page.getByRole("heading", { name: "Free tickets" }).isVisible()).toBe(true);
    expect(await page.locator("#card-fields").isVisible()).toBe(false);
    expect(await page.getByRole("button", { name: /^Pay / }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await new Screenshots("checkout-free", "desktop").take(page, "checkout");

    await page.getByRole("button", { name: "Get these free tickets" }).click();
    await page.getByRole("heading", { name: "You're going!" }).waitFor();
    expect(await page.locator("#outcome-text").innerText()).toMatch(/^Your free tickets are confirmed\./);
    // No card was asked of Stripe.js, and the Worker was sent none.
    expect(payments).toEqual(["{}"]);
    expect(problems.failedCalls).toEqual([]);
    await fan.close();
  });

  it.each(["phone", "desktop"] as const)("on a %s, a card that needs 3-D Secure: the bank's challenge passes in Stripe.js's dialog, and the tickets follow", async (device) => {
    const event = await calmEvent();
    const session = await signInByApi(fanEmail("3ds"));
    const shots = new Screenshots("checkout-3ds", device);
    const fan = await newFan(browser(), device, session);
    const page = await fan.newPage();
    const problems = watchPage(page);
    await page.goto(`/event?id=${event.id}`);
    if (device === "phone") await page.getByRole("button", { name: "Zoom in" }).tap();
    await holdOnMap(page, [{ section: "Stalls", row: "B", seat: device === "phone" ? 3 : 4 }], device === "phone");
    await page.getByRole("button", { name: /^Pay / }).waitFor();
    await shots.take(page, "checkout-card-form");

    await payWith(page, "threeDSecure");
    const dialog = page.getByRole("dialog", { name: "Card authentication" });
    await dialog.waitFor();
    const challengeFrame = page.frameLocator('iframe[title="3-D Secure authentication"]');
    await challengeFrame.getByRole("button", { name: "Complete authentication" }).waitFor();
    await shots.take(page, "checkout-3ds-challenge");
    // The challenge page on its own passes the accessibility check.
    const challengeUrl = (await page.locator('iframe[title="3-D Secure authentication"]').getAttribute("src")) ?? "";
    const challengePage = await fan.newPage();
    await challengePage.goto(challengeUrl);
    expect(await seriousViolations(challengePage), challengeUrl).toEqual([]);
    await challengePage.close();

    await answerChallenge(page, "pass");
    await dialog.waitFor({ state: "detached" });
    await page.getByText("Your payment is being confirmed with the bank…").waitFor();
    // Stripe tells the Worker (the test stack's gateway records its webhooks; the test delivers them).
    await waitFor("the payment webhook", async () => ((await deliverWebhooks(event.id)).includes("payment_intent.succeeded") ? true : undefined));
    await page.getByRole("heading", { name: "You're going!" }).waitFor();
    await shots.take(page, "checkout-3ds-paid");
    expect(problems.failedCalls).toEqual([]);
    await fan.close();
  });
});
