/**
 * The organizer console (/console/) in Chromium, over the admin API with the
 * browser tests' organizer key: signing in keeps the key in memory only; a
 * venue imported from a chart file is previewed then saved, and an event
 * there priced and published shows in the events list; during a simulated
 * sale the dashboard shows the API's numbers at its next 2-second refresh; on a
 * hot event, pausing admission and lowering its rate show on the dashboard, in
 * the API and in the room's published queue document; on a calm event,
 * refunding an order from the orders table refunds it; an event edited in the
 * console's form changes in the API (and a change the API refuses during a
 * sale shows its reason); and the orders search
 * box finds one buyer's order by email. Every state is checked
 * with axe and saved as screenshots at phone and desktop sizes.
 */
import type { Locator, Page } from "playwright-core";
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { adminCallsAreDocumented } from "./harness/admin-calls";
import { DEVICE_NAMES, chromiumForThisFile, type DeviceName } from "./harness/browser";
import { checkPage, signedInConsole as openConsole } from "./harness/console";
import { admin, appUrl, buyByApi, calmEvent, fanEmail, holdByApi, hotEvent, signInByApi, unique, waitFor } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";

const browser = chromiumForThisFile();
adminCallsAreDocumented();

/** Opens the console on `device` and signs in with the organizer's key. */
const signedInConsole = (device: DeviceName, shots: Screenshots) => openConsole(browser(), device, shots);

const statOf = (page: Page, key: string) => page.locator(`[data-stat="${key}"]`);

/** The queue document the room published, as fans poll it. */
async function publishedQueue(eventId: string): Promise<{ paused: boolean; ratePerSecond: number }> {
  const response = await fetch(`${appUrl()}/api/events/${eventId}/queue`);
  expect(response.status).toBe(200);
  return z.object({ paused: z.boolean(), ratePerSecond: z.number() }).parse(await response.json());
}

const liveView = z.object({
  totals: z.object({ capacity: z.number(), available: z.number(), held: z.number(), sold: z.number() }),
  sections: z.array(z.object({ label: z.string(), capacity: z.number(), available: z.number(), held: z.number(), sold: z.number() })),
  soldOut: z.boolean(),
  returned: z.number(),
  history: z.object({ minutes: z.array(z.object({ sold: z.number() })) }),
});
type LiveView = z.infer<typeof liveView>;

/** A read of the page that fails rather than waits when the element is missing. */
const READ = { timeout: 2_000 };

/** What the dashboard shows, in the API's terms. */
async function dashboard(page: Page): Promise<unknown> {
  const number = async (key: string) => Number(await statOf(page, key).innerText(READ));
  const rows: string[][] = [];
  for (const row of await page.locator("#live-sections tr").all()) rows.push(await row.locator("th, td").allTextContents());
  return {
    totals: { capacity: await number("capacity"), available: await number("available"), held: await number("held"), sold: await number("sold") },
    sections: rows.map(([label, , capacity, sold, held, available]) => ({ label, capacity: Number(capacity), available: Number(available), held: Number(held), sold: Number(sold) })),
    soldOut: (await statOf(page, "sold-out").innerText(READ)) === "Yes",
    returned: await number("returned"),
    soldInHistory: Number(await page.getByRole("img", { name: /^Places sold per minute/ }).getAttribute("data-total", READ)),
  };
}

/** The API's live view, as the dashboard should show it. */
function expected(view: LiveView): unknown {
  return {
    totals: view.totals,
    sections: view.sections.map(({ label, capacity, available, held, sold }) => ({ label, capacity, available, held, sold })),
    soldOut: view.soldOut,
    returned: view.returned,
    soldInHistory: view.history.minutes.reduce((sum, m) => sum + m.sold, 0),
  };
}

/** Polls within the dashboard's own refresh (2 s) and then some, for a loaded machine. */
const POLL = { timeout: 10_000 };

/** Waits for `locator`; on failure says what the console's status and alert regions said. */
async function shown(page: Page, locator: Locator): Promise<void> {
  try {
    await locator.waitFor();
  } catch (error) {
    const said: unknown = await page.evaluate('`status "${document.getElementById("status").textContent}", alert "${document.getElementById("error").textContent}", at ${location.href}`');
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nThe console said: ${said}`);
  }
}

/** A calm event where a fan bought `seats`, open in the console on `device`, its order's row shown as confirmed. */
async function eventWithAnOrder(device: DeviceName, journey: string, seats: number[]) {
  const event = await calmEvent();
  const buyer = await signInByApi(fanEmail(journey.replace("/", "-")));
  await buyByApi(event.id, buyer, seats);
  // The order is written by the sales queue's consumer, after the payment: the console lists orders as they are when it opens.
  const orders = z.object({ orders: z.array(z.object({ email: z.string() })) });
  await waitFor("the order in the admin API", async () => ((await admin("GET", `/events/${event.id}/orders`, undefined, orders)).orders.some((o) => o.email === buyer.email) ? true : undefined));
  const shots = new Screenshots(journey, device);
  const opened = await signedInConsole(device, shots);
  await opened.page.goto(`/console/#/events/${event.id}`);
  const row = opened.page.locator("#orders-list tr", { hasText: buyer.email });
  await expect.poll(() => row.locator("td").nth(3).innerText(), POLL).toBe("confirmed");
  return { ...opened, event, buyer, shots, row };
}

describe("the organizer console", () => {
  it.each(DEVICE_NAMES)("keeps the API key out of storage, and a wrong key is refused (%s)", async (device) => {
    const shots = new Screenshots("console/signin", device);
    const { page, close } = await signedInConsole(device, shots);
    const stored = String(await page.evaluate("JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie })"));
    expect(stored).not.toContain(inject("organizerApiKey"));
    // A reload forgets the key.
    await page.reload();
    await page.getByLabel("API key").fill("etk_not-a-real-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").innerText(), POLL).toBe("That API key is unknown or revoked.");
    await checkPage(page, shots, "wrong-key");
    await close();
  });

  it.each(DEVICE_NAMES)("imports a venue from a chart file with a preview, then creates, prices and publishes an event there (%s)", async (device) => {
    const shots = new Screenshots("console/create", device);
    const { page, problems, close } = await signedInConsole(device, shots);
    const venueName = `Console Hall ${unique()}`;
    const chart = {
      name: venueName,
      city: "Springfield",
      timezone: "UTC",
      sections: [
        { label: "Stalls", priceTier: "Stalls", rows: [{ label: "A", seats: 10 }, { label: "B", seats: ["1", "2", "3"] }] },
        { label: "Pit", name: "Standing pit", priceTier: "Pit", generalAdmission: { capacity: 25 } },
      ],
    };
    await page.getByRole("link", { name: "New venue" }).click();
    await page.getByLabel("Chart file (.json)").setInputFiles({ name: "hall.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(chart)) });
    const preview = page.locator("#chart-preview table");
    await expect.poll(() => preview.locator("caption").innerText(), POLL).toBe(`${venueName}: 2 sections, 38 places, tiers Stalls, Pit`);
    expect(await preview.locator("tbody tr").allInnerTexts()).toEqual(["Stalls\tStalls\t2\t13", "Pit\tPit\tstanding\t25"]);
    await checkPage(page, shots, "venue-preview");
    await page.getByRole("button", { name: "Save venue" }).click();

    await page.getByRole("heading", { name: "New event" }).waitFor();
    await expect.poll(() => page.getByLabel("Venue").locator("option:checked").innerText(), POLL).toBe(`${venueName} (38 places)`);
    await page.getByLabel("Pit price").waitFor();
    await checkPage(page, shots, "event-form");
    const eventName = `Console Night ${unique()}`;
    await page.getByLabel("Name", { exact: true }).fill(eventName);
    await page.getByLabel("Stalls price").fill("45.50");
    await page.getByLabel("Pit price").fill("30");
    await page.getByRole("button", { name: "Create event" }).click();
    await shown(page, page.getByRole("heading", { name: eventName, level: 2 }));
    await expect.poll(() => statOf(page, "capacity").innerText(), POLL).toBe("38");
    await checkPage(page, shots, "event");

    // The API has it as the console showed it: published, priced.
    const { events } = await admin("GET", "/events", undefined, z.object({ events: z.array(z.object({ id: z.uuid(), name: z.string(), status: z.string(), prices: z.array(z.object({ priceTier: z.string(), priceCents: z.number() })) })) }));
    const created = events.find((e) => e.name === eventName);
    expect(created?.status).toBe("published");
    expect(created?.prices.map((p) => [p.priceTier, p.priceCents]).sort()).toEqual([["Pit", 3_000], ["Stalls", 4_550]]);

    await page.getByRole("link", { name: "Events", exact: true }).click();
    await page.getByRole("link", { name: eventName }).waitFor();
    await checkPage(page, shots, "events");
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });

  it.each(DEVICE_NAMES)("pauses and resumes a hot event's admission, and sets its rate, with the dashboard and the API agreeing (%s)", async (device) => {
    const event = await hotEvent({ admissionRatePerSecond: 40 });
    const shots = new Screenshots("console/admission", device);
    const { page, problems, close } = await signedInConsole(device, shots);
    await page.goto(`/console/#/events/${event.id}`);
    // The fragment changed without a reload: still signed in.
    await page.getByRole("heading", { name: event.name, level: 2 }).waitFor();
    // Before anyone joins, the room may not be set up yet; the first change sets it up.
    await expect.poll(() => statOf(page, "admission").innerText(), POLL).toMatch(/^(Running|Not open yet)$/);
    await checkPage(page, shots, "running");

    await page.getByRole("button", { name: "Pause admission" }).click();
    await expect.poll(() => statOf(page, "admission").innerText(), POLL).toBe("Paused");
    const live = z.object({ queue: z.object({ paused: z.boolean(), ratePerSecond: z.number() }) });
    expect((await admin("GET", `/events/${event.id}/live`, undefined, live)).queue.paused).toBe(true);
    // The room published it: fans polling the queue see the pause.
    await expect.poll(async () => (await publishedQueue(event.id)).paused, POLL).toBe(true);
    await checkPage(page, shots, "paused");

    await page.getByLabel("Fans admitted per second").fill("7");
    await page.getByRole("button", { name: "Set rate" }).click();
    await expect.poll(() => statOf(page, "rate").innerText(), POLL).toBe("7");
    await expect.poll(async () => (await publishedQueue(event.id)).ratePerSecond, POLL).toBe(7);
    await expect.poll(() => page.locator("#live-charts svg").count(), POLL).toBe(2);
    await page.getByRole("button", { name: "Resume admission" }).click();
    await expect.poll(() => statOf(page, "admission").innerText(), POLL).toBe("Running");
    const after = (await admin("GET", `/events/${event.id}/live`, undefined, live)).queue;
    expect(after).toEqual({ ...after, paused: false, ratePerSecond: 7 });
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });

  it.each(DEVICE_NAMES)("during a simulated sale the dashboard's numbers match the API's at its next refresh (%s)", async (device) => {
    const event = await calmEvent();
    const shots = new Screenshots("console/dashboard", device);
    const { page, problems, close } = await signedInConsole(device, shots);
    // Every dashboard read of the live view, by when the page sent it.
    const reads: number[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith(`/admin/events/${event.id}/live`)) reads.push(Date.now());
    });
    await page.goto(`/console/#/events/${event.id}`);
    await page.getByRole("heading", { name: event.name, level: 2 }).waitFor();
    const api = () => admin("GET", `/events/${event.id}/live`, undefined, liveView);
    await expect.poll(() => dashboard(page), POLL).toEqual(expected(await api()));

    const [a, b, c] = await Promise.all(["dash-a", "dash-b", "dash-c"].map((name) => signInByApi(fanEmail(name))));
    if (!a || !b || !c) throw new Error("three fans expected");
    const steps: [string, () => Promise<unknown>][] = [
      ["sold", () => buyByApi(event.id, a, [0, 1])],
      ["held", () => holdByApi(event.id, b, [2, 3, 4])],
      ["sold-again", () => buyByApi(event.id, c, [5])],
    ];
    for (const [state, step] of steps) {
      await step();
      // Tickets reach Postgres through the sales queue: read the API once they have (the per-minute sales count them).
      let view = await api();
      await expect.poll(async () => (view = await api()).history.minutes.reduce((sum, m) => sum + m.sold, 0), POLL).toBe(view.totals.sold);
      // The page's next read shows it (a read every 2 s; the wait allows for a loaded machine).
      await expect.poll(() => dashboard(page), POLL).toEqual(expected(view));
      await checkPage(page, shots, state);
    }
    expect((await api()).totals).toMatchObject({ held: 3, sold: 3 });
    // The page read the live view every 2 s: no gap between reads much over that (timers run late on a loaded machine).
    const gaps = reads.slice(1).map((at, i) => at - (reads[i] ?? at));
    expect(gaps.length).toBeGreaterThan(0);
    expect(gaps.filter((gap) => gap < 1_500)).toEqual([]);
    expect(Math.max(...gaps)).toBeLessThan(6_000);
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });

  it.each(DEVICE_NAMES)("refunds an order from the orders table, and the place comes back on the dashboard (%s)", async (device) => {
    const { page, problems, close, event, buyer, shots, row } = await eventWithAnOrder(device, "console/refund", [0, 1]);
    await expect.poll(() => statOf(page, "sold").innerText(), POLL).toBe("2");
    await checkPage(page, shots, "orders");

    await row.getByRole("button", { name: `Refund order of ${buyer.email}` }).click();
    await row.getByRole("button", { name: /^Confirm refund of / }).click();
    await expect.poll(() => row.locator("td").nth(3).innerText(), POLL).toBe("refunded");
    await expect.poll(() => statOf(page, "sold").innerText(), POLL).toBe("0");
    await expect.poll(() => statOf(page, "returned").innerText(), POLL).toBe("2");
    await checkPage(page, shots, "refunded");
    const orders = await admin("GET", `/events/${event.id}/orders`, undefined, z.object({ orders: z.array(z.object({ email: z.string(), status: z.string() })) }));
    expect(orders.orders.filter((o) => o.email === buyer.email).map((o) => o.status)).toEqual(["refunded"]);
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });

  it.each(DEVICE_NAMES)("edits an event's name, price, hold time, sale end, line opening, decline window and network limit before its sale, and shows the API's refusal once it is on sale (%s)", async (device) => {
    const shots = new Screenshots("console/edit", device);
    const { page, problems, close } = await signedInConsole(device, shots);
    const upcoming = await calmEvent({ saleStartsAt: new Date(Date.now() + 7 * 86_400_000).toISOString() });
    await page.goto(`/console/#/events/${upcoming.id}`);
    await page.getByRole("link", { name: "Edit event" }).click();
    await shown(page, page.getByRole("heading", { name: `Edit ${upcoming.name}` }));
    // Prefilled from the API.
    expect(await page.getByLabel("Name", { exact: true }).inputValue()).toBe(upcoming.name);
    expect(await page.getByLabel("Stalls price").inputValue()).toBe("45.00");
    expect(await page.getByLabel("Hold time (seconds)").inputValue()).toBe(String(upcoming.holdTtlSeconds));
    await checkPage(page, shots, "edit-form");

    const renamed = `${upcoming.name} (matinee)`;
    await page.getByLabel("Name", { exact: true }).fill(renamed);
    await page.getByLabel("Stalls price").fill("55.50");
    await page.getByLabel("Hold time (seconds)").fill("900");
    await page.getByLabel("Sale ends (UTC, optional: the event's end, or its start)").fill("2099-01-02T03:04");
    await page.getByLabel("Line opens (minutes before the sale, hot events)").fill("45");
    await page.getByLabel("Time to try another card after a decline (seconds)").fill("60");
    await page.getByLabel("Accounts per network address in the line").fill("80");
    await page.getByRole("button", { name: "Save changes" }).click();
    await shown(page, page.getByRole("heading", { name: renamed }));
    expect(await page.locator("#status").innerText()).toBe(`Event ${renamed} updated.`);
    await checkPage(page, shots, "edited");
    const after = await admin(
      "GET",
      `/events/${upcoming.id}`,
      undefined,
      z.object({
        name: z.string(),
        holdTtlSeconds: z.number(),
        saleEndsAt: z.string().nullable(),
        lobbyOpensMinutes: z.number(),
        declineRetrySeconds: z.number(),
        maxAccountsPerIp: z.number(),
        prices: z.array(z.object({ priceTier: z.string(), priceCents: z.number() })),
      }),
    );
    expect(after).toEqual({
      name: renamed,
      holdTtlSeconds: 900,
      saleEndsAt: "2099-01-02T03:04:00.000Z",
      lobbyOpensMinutes: 45,
      declineRetrySeconds: 60,
      maxAccountsPerIp: 80,
      prices: expect.arrayContaining([{ priceTier: "Stalls", priceCents: 5_550 }, { priceTier: "Balcony", priceCents: 2_500 }]),
    });

    // On sale: the price may no longer change, and the console says the API's reason.
    const onSale = await calmEvent();
    await page.goto(`/console/#/edit-event/${onSale.id}`);
    await shown(page, page.getByRole("heading", { name: `Edit ${onSale.name}` }));
    await page.getByLabel("Stalls price").fill("99.00");
    await page.getByRole("button", { name: "Save changes" }).click();
    await expect.poll(() => page.getByRole("alert").innerText(), POLL).toMatch(/^The sale has started; prices can no longer change/);
    await checkPage(page, shots, "edit-refused");
    const unchanged = await admin("GET", `/events/${onSale.id}`, undefined, z.object({ prices: z.array(z.object({ priceTier: z.string(), priceCents: z.number() })) }));
    expect(unchanged.prices).toContainEqual({ priceTier: "Stalls", priceCents: 4_500 });
    // The refused PATCH is the page's only failed call, and Chromium's log line for it its only console error.
    expect(problems.errors).toEqual([expect.stringContaining("responded with a status of 409")]);
    expect(problems.failedCalls).toEqual([{ method: "PATCH", path: `/admin/events/${onSale.id}`, status: 409 }]);
    await close();
  });

  it.each(DEVICE_NAMES)("searches the orders by a buyer's email, any case, and shows only that buyer's order (%s)", async (device) => {
    const { page, problems, close, event, buyer, shots } = await eventWithAnOrder(device, "console/search", [5]);
    const other = await signInByApi(fanEmail(`console-search-other-${device}`));
    await buyByApi(event.id, other, [6]);
    // The order is confirmed once the payment's webhook is processed: both are listed without a search.
    const buyers = async () => (await admin("GET", `/events/${event.id}/orders`, undefined, z.object({ orders: z.array(z.object({ email: z.string() })) }))).orders.map((o) => o.email).sort();
    await expect.poll(buyers, POLL).toEqual([buyer.email, other.email].sort());

    const search = page.getByRole("searchbox", { name: "Buyer's email or order id" });
    await search.fill(other.email.toUpperCase());
    await page.getByRole("button", { name: "Search orders" }).click();
    await expect.poll(() => page.locator("#orders-list tr").allInnerTexts(), POLL).toEqual([expect.stringContaining(other.email)]);
    await checkPage(page, shots, "search-found");

    await search.fill("stranger@example.com");
    await page.getByRole("button", { name: "Search orders" }).click();
    await expect.poll(() => page.locator("#orders-list tr").allInnerTexts(), POLL).toEqual(["No orders match stranger@example.com."]);
    await checkPage(page, shots, "search-none");
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });

  it.each(DEVICE_NAMES)("cancels an event, refunding its orders, and says what it did (%s)", async (device) => {
    const { page, problems, close, event, buyer, shots, row } = await eventWithAnOrder(device, "console/cancel", [3]);
    await page.getByRole("button", { name: "Cancel event" }).click();
    await page.getByRole("button", { name: `Confirm: cancel ${event.name} and refund every order` }).click();
    await expect.poll(() => page.locator("#status").innerText(), POLL).toMatch(/^Event cancelled: 1 orders refunded, \d+ waitlist entries closed\.$/);
    await expect.poll(() => row.locator("td").nth(3).innerText(), POLL).toBe("cancelled");
    await expect.poll(() => page.locator("#event-summary").innerText(), POLL).toMatch(/· cancelled ·/);
    expect(await page.getByRole("button", { name: "Cancel event" }).isVisible()).toBe(false);
    await checkPage(page, shots, "cancelled");
    const after = await admin("GET", `/events/${event.id}`, undefined, z.object({ status: z.string() }));
    expect(after.status).toBe("cancelled");
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });
});
