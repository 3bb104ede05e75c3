/**
 * A calm event, as a fan buys it: the home page, the seat map, sign-in by
 * emailed code, a hold, checkout, and My tickets with a QR code that decodes
 * to a token the published key set verifies; meanwhile a second fan's seat
 * map shows the first fan's seats taken within 2 seconds. On a phone and on a
 * desktop, with a screenshot of every page.
 */
import { describe, expect, it } from "vitest";
import { isForEvent } from "../../core/tickets/compact-token";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { appUrl, calmEvent, fanEmail, newFan, seatButton, seatMapReady, signInByApi, signInThroughPage } from "./harness/fixtures";
import { Screenshots, watchPage } from "./harness/pages";
import { payWith } from "./harness/steps";
import { readQrCode, verifyTicketCode } from "./harness/tickets";

const browser = chromiumForThisFile();

describe.each(DEVICE_NAMES)("a calm event on a %s", (device) => {
  it("goes from the home page to a ticket whose QR code verifies, while another fan sees the seats go", async () => {
    const event = await calmEvent();
    const shots = new Screenshots("calm-event", device);
    const fan = await newFan(browser(), device);
    const page = await fan.newPage();
    const problems = watchPage(page);
    // A second fan, already signed in, watching the same seat map.
    const other = await newFan(browser(), device, await signInByApi(fanEmail("other")));
    const otherPage = await other.newPage();
    await otherPage.goto(`/event?id=${event.id}`);
    await otherPage.getByText("Seats update live.").waitFor();

    await page.goto("/");
    await page.getByRole("link", { name: event.name }).waitFor();
    await shots.take(page, "home");
    await page.getByRole("link", { name: event.name }).click();
    await page.waitForURL(/\/event\?id=/);
    const seat = (row: string, n: number) => seatButton(page, "Stalls", row, n);
    await seatMapReady(page);
    await shots.take(page, "seat-map");
    if (device === "phone") {
      // A finger needs bigger seats: zoom in until they are 44 px, then tap.
      await page.getByRole("button", { name: "Zoom in" }).tap();
      await page.getByRole("button", { name: "Zoom in" }).tap();
      expect((await seat("C", 5).boundingBox())?.width).toBeGreaterThanOrEqual(44);
      await seat("C", 5).tap();
      await seat("C", 6).tap();
    } else {
      await seat("C", 5).click();
      await seat("C", 6).click();
    }
    await page.getByText("2 seats picked · $90.00").waitFor();
    await shots.take(page, "seat-map-picked");
    await page.getByRole("button", { name: "Hold 2 seats" }).click();

    await page.waitForURL(/\/signin\?next=/);
    await shots.take(page, "sign-in");
    await signInThroughPage(page, fanEmail(device), () => shots.take(page, "sign-in-code"));
    await page.waitForURL(/\/event\?id=/);
    // The picks survive signing in.
    await page.getByText("2 seats picked · $90.00").waitFor();
    const held = page.waitForResponse((response) => response.url().endsWith(`/api/events/${event.id}/holds`) && response.request().method() === "POST");
    await page.getByRole("button", { name: "Hold 2 seats" }).click();
    expect((await held).status()).toBe(201);
    const heldAt = Date.now();
    // The other fan's map: both seats taken within 2 s of the hold.
    const otherStalls = otherPage.locator(".seat-section", { hasText: "Stalls" });
    for (const n of [5, 6]) await otherStalls.getByRole("button", { name: new RegExp(`^Row C, seat ${n},.*taken$`) }).waitFor({ timeout: 2_000 });
    expect(Date.now() - heldAt).toBeLessThan(2_000);
    await shots.take(otherPage, "other-fan-seat-map");

    await page.waitForURL(/\/checkout\?/);
    await page.getByRole("button", { name: /^Pay / }).waitFor();
    await shots.take(page, "checkout");
    await payWith(page, "succeeds");
    await page.getByRole("heading", { name: "You're going!" }).waitFor();
    await shots.take(page, "checkout-paid");
    await page.getByRole("link", { name: "See my tickets" }).click();
    await page.waitForURL(/\/tickets/);
    const qr = page.getByRole("img", { name: /^QR code for / });
    await expect.poll(() => qr.count(), { timeout: 15_000 }).toBe(2);
    await shots.take(page, "tickets");
    for (const image of await qr.all()) {
      const ticket = await verifyTicketCode(appUrl(), await readQrCode(image));
      expect(isForEvent(ticket, event.id)).toBe(true);
    }
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await fan.close();
    await other.close();
  });
});
