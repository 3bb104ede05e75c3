/**
 * "How many tickets, which tier": the fields the best-available form (event
 * page and waiting room) and the waitlist form (waiting room) share
 * (static/js/ticket-choice.js), checked by what the server ends up holding:
 * the calm event page's best available holds the quantity and tier chosen,
 * and a fan who reaches a sold-out waiting room joins the waitlist with the
 * quantity and tier chosen there. On a phone and on a desktop.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { appUrl, calmEvent, fanEmail, hotEvent, newFan, openSaleNow, signInByApi } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";
import { joinTheLine, payWith } from "./harness/steps";

const browser = chromiumForThisFile();

describe.each(DEVICE_NAMES)("choosing tickets on a %s", (device) => {
  it("best available on a calm event's page holds the quantity and tier chosen", async () => {
    const event = await calmEvent();
    const shots = new Screenshots("ticket-choice", device);
    const fan = await newFan(browser(), device, await signInByApi(fanEmail("best")));
    const page = await fan.newPage();
    await page.goto(`/event?id=${event.id}`);
    const form = page.locator("#best-form");
    await form.getByLabel("Tickets", { exact: true }).selectOption("3");
    await form.getByLabel("Price tier").selectOption("Balcony");
    await form.getByLabel("My seats need not be together").check();
    await shots.take(page, "best-available");
    const held = page.waitForRequest((request) => request.method() === "POST" && request.url().endsWith(`/api/events/${event.id}/holds/best`));
    await page.getByRole("button", { name: "Find seats" }).click();
    expect((await held).postDataJSON()).toMatchObject({ quantity: 3, priceTier: "Balcony", allowSplit: true });
    await page.waitForURL(/\/checkout\?/);
    const rows = page.locator("#hold-items tbody tr");
    await expect.poll(() => rows.count()).toBe(3);
    for (const row of await rows.all()) expect(await row.innerText()).toContain("Balcony");
    await fan.close();
  });

  it("a fan who reaches a sold-out waiting room joins the waitlist for the quantity and tier chosen", async () => {
    const event = await hotEvent({ saleInMinutes: 20, floorOnly: 2 });
    const shots = new Screenshots("ticket-choice", device);
    // The first fan buys both places.
    const first = await newFan(browser(), device, await signInByApi(fanEmail("first")));
    const firstPage = await first.newPage();
    await firstPage.goto(`/queue?event=${event.id}`);
    await joinTheLine(firstPage);
    await openSaleNow(event.id);
    await firstPage.getByRole("heading", { name: "It is your turn" }).waitFor({ timeout: 20_000 });
    await firstPage.getByLabel("Tickets", { exact: true }).selectOption("2");
    await firstPage.getByRole("button", { name: "Hold the best available" }).click();
    await firstPage.waitForURL(/\/checkout\?/);
    await payWith(firstPage, "succeeds");
    await firstPage.getByRole("heading", { name: "You're going!" }).waitFor();
    await first.close();

    // The second joins the line after that: sold out, and the waitlist form.
    const session = await signInByApi(fanEmail("second"));
    const second = await newFan(browser(), device, session);
    const page = await second.newPage();
    await page.goto(`/queue?event=${event.id}`);
    await joinTheLine(page);
    await page.getByRole("heading", { name: "Sold out right now" }).waitFor({ timeout: 20_000 });
    const form = page.locator("#waitlist-form");
    await form.getByLabel("Tickets wanted").selectOption("2");
    await form.getByLabel("Price tier").selectOption("Floor");
    await shots.take(page, "waitlist");
    await form.getByRole("button", { name: "Join the waitlist" }).click();
    await page.getByText("You are number 1 on the waitlist.").waitFor();
    const response = await fetch(`${appUrl()}/api/events/${event.id}/waitlist`, { headers: { Authorization: `Bearer ${session.token}` } });
    const { entry } = z.object({ entry: z.object({ quantity: z.number(), priceTier: z.string().nullable(), status: z.string() }) }).parse(await response.json());
    expect(entry).toEqual({ quantity: 2, priceTier: "Floor", status: "waiting" });
    await second.close();
  });
});
