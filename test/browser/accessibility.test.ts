/**
 * Every fan page, in the states fans see it in (loading done, empty, error,
 * in use), at phone and desktop sizes: axe-core (from node_modules) finds no
 * serious or critical WCAG 2.2 A/AA violation, the page has a favicon that
 * loads, and the empty and error states say what happened in plain words.
 */
import type { BrowserContext, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { DEVICE_NAMES, chromiumForThisFile, type DeviceName } from "./harness/browser";
import { seriousViolations } from "./harness/axe";
import { buyByApi, calmEvent, fanEmail, hotEvent, joinLobby, newFan, seatButton, seatMapReady, signInByApi, type FanSession } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";
import { joinTheLine, payWith } from "./harness/steps";

const browser = chromiumForThisFile();

const MISSING_EVENT = "00000000-0000-4000-8000-000000000000";

/** Checks the page as it is now: no serious or critical axe violation, a favicon that loads; saves a screenshot. */
async function checkPage(page: Page, shots: Screenshots, state: string): Promise<void> {
  expect(await seriousViolations(page), `${state}: ${page.url()}`).toEqual([]);
  const icon = await page.locator('link[rel="icon"]').getAttribute("href");
  expect(icon, `${state}: a favicon`).toBe("/favicon.svg");
  const response = await page.request.get(icon ?? "");
  expect(response.status()).toBe(200);
  expect(response.headers()["content-type"]).toMatch(/^image\/svg\+xml/);
  await shots.take(page, state);
}

/** A fresh fan for each device. */
const freshFan = (name: string) => () => signInByApi(fanEmail(name));

/**
 * Runs `visit` on a phone and on a desktop, each in a fresh context: signed
 * out, signed in with the given session, or as a fresh fan per device.
 */
async function onEachDevice(
  page: string,
  fan: FanSession | (() => Promise<FanSession>) | undefined,
  visit: (page: Page, shots: Screenshots, device: DeviceName, context: BrowserContext) => Promise<void>,
): Promise<void> {
  for (const device of DEVICE_NAMES) {
    const context = await newFan(browser(), device, typeof fan === "function" ? await fan() : fan);
    try {
      await visit(await context.newPage(), new Screenshots(`pages/${page}`, device), device, context);
    } finally {
      await context.close();
    }
  }
}

describe("every fan page is accessible at phone and desktop sizes", () => {
  it("the home page", async () => {
    const calm = await calmEvent();
    const hot = await hotEvent();
    await onEachDevice("home", undefined, async (page, shots) => {
      await page.goto("/");
      await page.getByRole("link", { name: calm.name }).waitFor();
      await page.getByRole("link", { name: hot.name }).waitFor();
      await checkPage(page, shots, "events");
    });
  });

  it("the sign-in page", async () => {
    await onEachDevice("signin", undefined, async (page, shots) => {
      await page.goto("/signin?next=/tickets");
      await checkPage(page, shots, "email");
      await page.getByLabel("Email address").fill("not an address");
      await page.getByRole("button", { name: "Email me a code" }).click();
      await page.getByText("Enter a valid email address, like fan@example.com.").waitFor();
      await checkPage(page, shots, "email-invalid");
      await page.getByLabel("Email address").fill(fanEmail("a11y"));
      await page.getByRole("button", { name: "Email me a code" }).click();
      await page.getByLabel("6-digit code").fill("000000");
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.getByRole("alert").filter({ hasText: /code/i }).waitFor();
      await checkPage(page, shots, "code-wrong");
    });
  });

  it("the event page: a calm event's seat map, a hot event's lobby, a missing event", async () => {
    const calm = await calmEvent();
    const hot = await hotEvent();
    await onEachDevice("event", freshFan("a11y-event"), async (page, shots, device) => {
      await page.goto(`/event?id=${calm.id}`);
      await seatButton(page, "Stalls", "A", 1).waitFor();
      await page.getByText("Seats update live.").waitFor();
      await checkPage(page, shots, "seat-map");
      if (device === "phone") {
        await page.getByRole("button", { name: "Zoom in" }).tap();
        await page.getByRole("button", { name: "Zoom in" }).tap();
      }
      await seatButton(page, "Stalls", "A", 2).click();
      await page.getByText("1 seat picked").waitFor();
      await checkPage(page, shots, "seat-map-picked");
      await page.goto(`/event?id=${hot.id}`);
      await page.getByRole("heading", { name: "The line is open" }).waitFor();
      await checkPage(page, shots, "lobby");
      await page.goto(`/event?id=${MISSING_EVENT}`);
      await page.getByRole("heading", { name: "Event unavailable" }).waitFor();
      expect(await page.getByRole("alert").innerText()).toMatch(/not found/i);
      await checkPage(page, shots, "missing");
      await page.goto("/event?id=nonsense");
      await page.getByText("This link does not name an event.").waitFor();
      await checkPage(page, shots, "bad-link");
    });
  });

  it("the waiting room: signed out, joining, in line", async () => {
    const hot = await hotEvent();
    const others = await Promise.all([signInByApi(fanEmail("ahead-1")), signInByApi(fanEmail("ahead-2"))]);
    for (const other of others) await joinLobby(hot.id, other);
    await onEachDevice("queue", undefined, async (page, shots) => {
      await page.goto(`/queue?event=${hot.id}`);
      await page.getByRole("heading", { name: "Sign in to join the line" }).waitFor();
      await checkPage(page, shots, "signed-out");
    });
    await onEachDevice("queue", freshFan("a11y-queue"), async (page, shots) => {
      await page.goto(`/queue?event=${hot.id}`);
      await page.getByRole("button", { name: "Join the line" }).waitFor();
      await checkPage(page, shots, "join");
      await joinTheLine(page);
      await page.locator("#position").getByText(/next in line|ahead of you/).waitFor();
      await checkPage(page, shots, "waiting");
    });
  });

  it("checkout: ready to pay, declined, paid", async () => {
    const event = await calmEvent({ declineRetrySeconds: 120 });
    await onEachDevice("checkout", freshFan("a11y-checkout"), async (page, shots, device) => {
      await page.goto(`/event?id=${event.id}`);
      await seatMapReady(page);
      await seatButton(page, "Stalls", device === "phone" ? "E" : "F", 1).click();
      await page.getByRole("button", { name: "Hold 1 seat" }).click();
      await page.getByRole("button", { name: /^Pay / }).waitFor();
      await checkPage(page, shots, "ready");
      await payWith(page, "declined");
      await page.getByText("Time left to try another card:").waitFor();
      await checkPage(page, shots, "declined");
      await payWith(page, "succeeds");
      await page.getByRole("heading", { name: "You're going!" }).waitFor();
      await checkPage(page, shots, "paid");
      await page.goto("/checkout?event=nonsense");
      await page.getByText("This checkout link is incomplete.").waitFor();
      await checkPage(page, shots, "bad-link");
    });
  });

  it("my tickets: none yet, and some", async () => {
    await onEachDevice("tickets-empty", freshFan("a11y-none"), async (page, shots) => {
      await page.goto("/tickets");
      await page.locator("#tickets").getByText("No tickets yet.").waitFor();
      expect(await page.locator("#status").innerText()).toBe("You have no tickets yet.");
      await checkPage(page, shots, "empty");
    });
    const event = await calmEvent();
    const buyer = await signInByApi(fanEmail("a11y-tickets"));
    await buyByApi(event.id, buyer, [0, 1]);
    await onEachDevice("tickets", buyer, async (page, shots) => {
      await page.goto(`/tickets?event=${event.id}`);
      await page.getByRole("img", { name: /^QR code for / }).nth(1).waitFor();
      await checkPage(page, shots, "two-tickets");
    });
  });
});
