/**
 * A hot event, as a fan buys it: the home page's link to the event's lobby
 * (sale time, prices, when the line opens, a live countdown), the waiting
 * room (sign in by emailed code, join the line), the sale opening (an
 * organizer moves the sale start to now and an operator sets the admission
 * rate; the admission-control route reloads the room, whose own alarm admits
 * the line), best available, checkout with a card that needs 3-D Secure (the
 * bank's challenge passed in Stripe.js's dialog, the payment settled by
 * Stripe's webhook), back to the waiting room, which now says the fan has
 * their tickets instead of offering more, and "My tickets", whose QR codes
 * decode to compact codes that verify against the JWKS fetched from
 * /.well-known/jwks.json. On a phone and on a desktop, with a screenshot of
 * every page.
 */
import { describe, expect, it } from "vitest";
import { isForEvent } from "../../core/tickets/compact-token";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { appUrl, deliverWebhooks, fanEmail, hotEvent, newFan, openSaleNow, signInThroughPage, waitFor } from "./harness/fixtures";
import { Screenshots, watchPage, type PageProblems } from "./harness/pages";
import { answerChallenge, joinTheLine, payWith } from "./harness/steps";
import { readQrCode, verifyTicketCode } from "./harness/tickets";

const browser = chromiumForThisFile();

/**
 * The failed calls a hot journey expects: a poll of the queue document may
 * come before the room's first tick publishes it (404 queue_not_open, which
 * the page words as "the line is being set up").
 */
function unexpectedFailures(problems: PageProblems): PageProblems {
  const expected = (path: string) => path.endsWith("/queue");
  return {
    errors: problems.errors.filter((error) => {
      const failed = /^console: Failed to load resource: the server responded with a status of 404 .*\((https?:\/\/[^)]+)\)$/.exec(error)?.[1];
      return !(failed && expected(new URL(failed).pathname));
    }),
    failedCalls: problems.failedCalls.filter((call) => !(call.status === 404 && expected(call.path))),
  };
}

describe.each(DEVICE_NAMES)("a hot event on a %s", (device) => {
  it("goes from the lobby through the line to best available seats, passes a 3-D Secure challenge, gets tickets whose QR codes verify, and the waiting room then says so", async () => {
    const event = await hotEvent({ saleInMinutes: 20 });
    const shots = new Screenshots("hot-event", device);
    const fan = await newFan(browser(), device);
    const page = await fan.newPage();
    const problems = watchPage(page);

    await page.goto("/");
    await page.getByRole("link", { name: event.name }).waitFor();
    await shots.take(page, "home");
    await page.getByRole("link", { name: event.name }).click();
    // The lobby: sale time, prices, when the line opens, a live countdown, the way in.
    await page.waitForURL(`${appUrl()}/event?id=${event.id}`);
    await page.getByRole("heading", { name: "The line is open" }).waitFor();
    const facts = await page.locator("#sale-facts").innerText();
    expect(facts).toMatch(/Sale opens\s+\S/);
    expect(facts).toMatch(/Line opens\s+.+30 minutes before the sale/);
    expect(facts).toContain("$55.00 to $150.00");
    expect(await page.locator("#prices").innerText()).toContain("$150.00");
    expect(await page.locator("#sale-countdown-line").innerText()).toMatch(/^The sale opens in (19|20) min \d\d s$/);
    await shots.take(page, "lobby");
    await page.getByRole("link", { name: "Join the line" }).click();

    await page.waitForURL(/\/queue\?event=/);
    await page.getByRole("heading", { name: "Sign in to join the line" }).waitFor();
    await shots.take(page, "queue-signed-out");
    await page.getByRole("link", { name: "Sign in", exact: true }).first().click();
    await page.waitForURL(/\/signin\?next=/);
    await shots.take(page, "sign-in");
    await signInThroughPage(page, fanEmail(`hot-${device}`));
    await page.waitForURL(/\/queue\?event=/);
    await page.getByRole("button", { name: "Join the line" }).waitFor();
    expect(await page.locator("#join-intro").innerText()).toContain("gets a random place");
    await shots.take(page, "queue-join");
    await joinTheLine(page);
    await page.getByText("You are next in line.").waitFor();
    expect(await page.locator("#status").innerText()).toBe("You are in line.");
    await shots.take(page, "queue-waiting");

    await openSaleNow(event.id);
    await page.getByRole("heading", { name: "It is your turn" }).waitFor({ timeout: 20_000 });
    await shots.take(page, "queue-admitted");
    await page.getByLabel("Tickets", { exact: true }).selectOption("2");
    await page.getByRole("button", { name: "Hold the best available" }).click();
    await page.waitForURL(/\/checkout\?/);
    await page.getByRole("button", { name: /^Pay / }).waitFor();
    expect(await page.locator("#hold-items tbody tr").count()).toBe(2);
    await shots.take(page, "checkout");
    // A European card that needs 3-D Secure: the bank's challenge in Stripe.js's dialog, passed; Stripe's webhook settles it.
    await payWith(page, "threeDSecure");
    const dialog = page.getByRole("dialog", { name: "Card authentication" });
    await dialog.waitFor();
    await page.frameLocator('iframe[title="3-D Secure authentication"]').getByRole("button", { name: "Complete authentication" }).waitFor();
    await shots.take(page, "checkout-3ds-challenge");
    await answerChallenge(page, "pass");
    await dialog.waitFor({ state: "detached" });
    await waitFor("the payment webhook", async () => ((await deliverWebhooks(event.id)).includes("payment_intent.succeeded") ? true : undefined));
    await page.getByRole("heading", { name: "You're going!" }).waitFor();
    await shots.take(page, "checkout-paid");

    // Back in the waiting room: no more "It is your turn", no form for more tickets.
    await page.goto(`/queue?event=${event.id}`);
    await page.getByRole("heading", { name: "You have your tickets" }).waitFor();
    expect(await page.locator("#status").innerText()).toBe("You have your tickets for this event.");
    const shown = await page.locator("main").innerText();
    expect(shown).not.toContain("It is your turn");
    expect(shown).not.toContain("Hold the best available");
    await shots.take(page, "queue-done");

    await page.getByRole("link", { name: "See my tickets" }).click();
    const qr = page.getByRole("img", { name: /^QR code for / });
    await qr.nth(1).waitFor();
    await shots.take(page, "tickets");
    for (const image of await qr.all()) expect(isForEvent(await verifyTicketCode(appUrl(), await readQrCode(image)), event.id)).toBe(true);
    expect(unexpectedFailures(problems)).toEqual({ errors: [], failedCalls: [] });
    await fan.close();
  });
});
