/**
 * A 3-D Secure challenge abandoned: a fan holds two seats, pays with a card
 * that needs the bank's challenge, and leaves it open. The seats stay theirs
 * while the hold lives (another fan's map shows them taken); once the hold
 * has ended, the every-minute cron (run here at a time past the hold's end,
 * through Miniflare's scheduled route: no waiting) cancels the PaymentIntent
 * and releases the seats, and the other fan's map shows them free. On a
 * phone and on a desktop, with screenshots and the accessibility check of the
 * new page states.
 */
import type { Page } from "playwright-core";
import { describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { seriousViolations } from "./harness/axe";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { appUrl, calmEvent, fanEmail, holdExpiresAt, holdOnMap, newFan, seatButton, seatMapReady, signInByApi, waitFor, type FanSession } from "./harness/fixtures";
import { Screenshots, watchPage } from "./harness/pages";
import { payWith } from "./harness/steps";

const browser = chromiumForThisFile();

/** The shortest hold an event may set (seconds). */
const SHORT_HOLD_S = 60;

/** The payment of a hold, as its fan's session sees it. */
async function paymentStatus(eventId: string, holdId: string, session: FanSession): Promise<string> {
  const response = await fetch(`${appUrl()}/api/events/${eventId}/holds/${holdId}/payment`, { headers: { Authorization: `Bearer ${session.token}` } });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET payment: HTTP ${response.status} ${text}`);
  return z.object({ payment: z.object({ status: z.string() }) }).parse(JSON.parse(text)).payment.status;
}

/** Runs the Worker's cron once, as if at `at` (epoch ms), through Miniflare's scheduled route. */
async function runCronAt(at: number): Promise<void> {
  const response = await fetch(`${appUrl()}/cdn-cgi/local/scheduled?${new URLSearchParams({ cron: "* * * * *", time: String(at) }).toString()}`);
  const text = await response.text();
  if (!response.ok) throw new Error(`the cron answered ${response.status}: ${text}`);
}

/** The seat's state on a fan's map: "taken", or its price when free. */
async function seatState(page: Page, row: string, seat: number): Promise<string> {
  const label = (await seatButton(page, "Stalls", row, seat).getAttribute("aria-label")) ?? "";
  return label.split(", ").at(-1) ?? "";
}

describe.each(DEVICE_NAMES)("an abandoned 3-D Secure challenge, on a %s", (device) => {
  it("keeps the seats while the hold lives and releases them when it ends, for another fan's map", async () => {
    const event = await calmEvent({ holdTtlSeconds: SHORT_HOLD_S });
    const shots = new Screenshots("abandoned-challenge-journey", device);
    const session = await signInByApi(fanEmail("abandons"));
    const fan = await newFan(browser(), device, session);
    const page = await fan.newPage();
    const problems = watchPage(page);
    const seats = device === "phone" ? [7, 8] : [1, 2];

    await page.goto(`/event?id=${event.id}`);
    if (device === "phone") await page.getByRole("button", { name: "Zoom in" }).tap();
    await holdOnMap(
      page,
      seats.map((seat) => ({ section: "Stalls", row: "D", seat })),
      device === "phone",
    );
    const holdId = new URL(page.url()).searchParams.get("hold") ?? "";
    await payWith(page, "threeDSecure");
    const challenge = page.frameLocator('iframe[title="3-D Secure authentication"]');
    await challenge.getByRole("button", { name: "Complete authentication" }).waitFor();
    await shots.take(page, "checkout-challenge-open");
    await waitFor("the payment to wait on its challenge", async () => ((await paymentStatus(event.id, holdId, session)) === "requires_action" ? true : undefined));

    // Another fan's map: the seats are taken while the hold lives.
    const other = await newFan(browser(), device, await signInByApi(fanEmail("watcher")));
    const otherPage = await other.newPage();
    const otherProblems = watchPage(otherPage);
    await otherPage.goto(`/event?id=${event.id}`);
    await seatMapReady(otherPage);
    await otherPage.getByText("Seats update live.").waitFor();
    for (const seat of seats) expect(await seatState(otherPage, "D", seat)).toBe("taken");

    // The cron while the hold lives leaves the challenge alone; past the hold's end it abandons it.
    const expiresAt = await holdExpiresAt(event.id, holdId, session);
    await runCronAt(expiresAt - 5_000);
    expect(await paymentStatus(event.id, holdId, session)).toBe("requires_action");
    await runCronAt(expiresAt + 1_000);
    expect(await paymentStatus(event.id, holdId, session)).toBe("canceled");
    const [intent] = z
      .array(z.object({ status: z.string() }))
      .parse(await (await fetch(`${inject("stripeApiBase")}/__payment_intents?${new URLSearchParams({ "metadata[hold_id]": holdId }).toString()}`)).json());
    expect(intent?.status).toBe("canceled");

    // The other fan's map shows the seats free, live.
    for (const seat of seats) await waitFor(`seat D${seat} free on the other map`, async () => ((await seatState(otherPage, "D", seat)) === "$45.00" ? true : undefined));
    await shots.take(otherPage, "other-fan-seats-free");
    expect(await seriousViolations(otherPage)).toEqual([]);
    expect(otherProblems.errors).toEqual([]);
    expect(problems.errors).toEqual([]);
    await fan.close();
    await other.close();
  });
});
