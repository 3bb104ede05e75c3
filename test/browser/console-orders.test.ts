/**
 * The console's orders table in Chromium, with what the payment gateway
 * reported: three fans buy; the cardholder's bank disputes one payment and
 * the organizer refunds part of another in the Stripe dashboard, each sent
 * to the Worker as the signed webhook the test stack's Stripe recorded
 * (`charge.dispute.created`, `charge.refunded`). The table says the dispute's
 * reason and status and the partial refund in words, offers no Refund for the
 * disputed order (and the rest of a partial refund for the other); the Status
 * filter lists the disputed order alone, and, once the dispute is won, says
 * so; an order refunded under the Confirmed filter leaves the table. Paging: with the page size the console asks for shrunk to 2 on the way
 * (the API's limit is not the UI's to choose), "More orders" appends the rest
 * and hides when the API's nextCursor is null. Every state is checked with axe
 * and saved as screenshots at phone and desktop sizes.
 */
import type { Locator, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { adminCallsAreDocumented } from "./harness/admin-calls";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { checkPage, signedInConsole } from "./harness/console";
import { admin, answerDispute, buyByApi, calmEvent, deliverWebhooks, disputePayment, fanEmail, refundInDashboard, signInByApi, waitFor } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";

const browser = chromiumForThisFile();
adminCallsAreDocumented();

/** Polls within a loaded machine's patience (the sales queue batches for up to 2 s). */
const POLL = { timeout: 20_000 };

const orderList = z.object({
  orders: z.array(
    z.object({
      orderId: z.uuid(),
      email: z.string(),
      status: z.string(),
      totalCents: z.number(),
      refundedCents: z.number(),
      dispute: z.object({ reason: z.string(), status: z.string() }).nullable(),
    }),
  ),
  nextCursor: z.string().nullable(),
});
const ordersOf = async (eventId: string) => (await admin("GET", `/events/${eventId}/orders`, undefined, orderList)).orders;

const dollars = (cents: number) => new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(cents / 100);
const statusCell = (row: Locator) => row.locator('td[data-label="Status"]').innerText();
const listedOrders = (page: Page) => page.locator("#orders-list tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-order")));

describe("the console's orders table", () => {
  it.each(DEVICE_NAMES)("shows a dispute and a partial refund, filters by status, and pages with More orders (%s)", async (device) => {
    const shots = new Screenshots("console/orders", device);
    const event = await calmEvent();
    const disputedFan = await signInByApi(fanEmail(`console-orders-disputed-${device}`));
    const partialFan = await signInByApi(fanEmail(`console-orders-partial-${device}`));
    const plainFan = await signInByApi(fanEmail(`console-orders-plain-${device}`));
    const disputedHold = await buyByApi(event.id, disputedFan, [0]);
    const partialHold = await buyByApi(event.id, partialFan, [1]);
    await buyByApi(event.id, plainFan, [2]);
    // The sales queue writes the orders after the payments; the gateway's news is about orders that exist.
    const orders = await waitFor("the three orders confirmed", async () => {
      const listed = await ordersOf(event.id);
      return listed.length === 3 && listed.every((o) => o.status === "confirmed") ? listed : undefined;
    }, POLL.timeout);
    const byEmail = (email: string) => orders.find((o) => o.email === email) ?? expect.fail(`no order of ${email}`);
    const [disputed, partial, plain] = [byEmail(disputedFan.email), byEmail(partialFan.email), byEmail(plainFan.email)];
    // Newest first, as the API lists them (the queue may write the three in one batch: its order, not the buying order).
    const newestFirst = orders.map((o) => o.orderId);

    // The bank disputes one payment; the organizer refunds $12.00 of another in the Stripe dashboard. Stripe sends both.
    const disputeId = await disputePayment(disputedHold, "fraudulent");
    await refundInDashboard(partialHold, 1_200);
    expect((await deliverWebhooks(event.id, ["charge.dispute.created", "charge.refunded"])).toSorted()).toEqual(["charge.dispute.created", "charge.refunded"]);
    await waitFor("the dispute and the partial refund in the API", async () => {
      const listed = await ordersOf(event.id);
      const ok = listed.some((o) => o.orderId === disputed.orderId && o.status === "disputed") && listed.some((o) => o.orderId === partial.orderId && o.refundedCents === 1_200);
      return ok ? true : undefined;
    }, POLL.timeout);

    const { page, problems, close } = await signedInConsole(browser(), device, shots);
    await page.goto(`/console/#/events/${event.id}`);
    const row = (orderId: string) => page.locator(`#orders-list tr[data-order="${orderId}"]`);
    await expect.poll(() => listedOrders(page), POLL).toEqual(newestFirst);
    expect(await statusCell(row(disputed.orderId))).toBe("disputed: fraudulent (needs response)");
    expect(await row(disputed.orderId).getByRole("button").count()).toBe(0);
    expect(await statusCell(row(partial.orderId))).toBe(`confirmed, $12.00 of ${dollars(partial.totalCents)} refunded`);
    expect(await statusCell(row(plain.orderId))).toBe("confirmed");
    expect(await page.locator("#orders-more").isHidden()).toBe(true);
    await checkPage(page, shots, "dispute-and-partial-refund");

    // Refunding the partly refunded order returns what is left (the first click only asks).
    await row(partial.orderId).getByRole("button", { name: `Refund order of ${partialFan.email}` }).click();
    expect(await row(partial.orderId).getByRole("button").allInnerTexts()).toEqual([`Confirm refund of ${dollars(partial.totalCents - 1_200)}`]);

    // Disputed: the disputed order alone, with no Refund button in the table.
    const status = page.getByRole("combobox", { name: "Status", exact: true });
    await status.selectOption({ label: "Disputed" });
    await expect.poll(() => listedOrders(page), POLL).toEqual([disputed.orderId]);
    expect(await statusCell(row(disputed.orderId))).toBe("disputed: fraudulent (needs response)");
    expect(await page.locator("#orders-list").getByRole("button").count()).toBe(0);
    await checkPage(page, shots, "filtered-disputed");

    // The organizer answers with evidence and wins; Stripe sends the news, and the filtered table says so when searched again.
    await answerDispute(disputeId, "winning_evidence");
    // Only the dispute's news (the payment's success sent again changes nothing: test/workers/refunds/gateway-events.test.ts).
    expect(await deliverWebhooks(event.id, ["charge.dispute.updated", "charge.dispute.closed"])).toEqual(["charge.dispute.updated", "charge.dispute.closed"]);
    await waitFor("the won dispute in the API", async () => ((await ordersOf(event.id)).find((o) => o.orderId === disputed.orderId)?.dispute?.status === "won" ? true : undefined), POLL.timeout);
    await page.getByRole("button", { name: "Search orders" }).click();
    await expect.poll(() => statusCell(row(disputed.orderId)), POLL).toBe("disputed: fraudulent (won)");
    expect(await listedOrders(page)).toEqual([disputed.orderId]);

    // Confirmed: the two confirmed orders; each refunded there leaves the filtered table, which then says it has none,
    // naming the filters it was listed with, not a search typed since and not yet run.
    await status.selectOption({ label: "Confirmed" });
    await expect.poll(() => listedOrders(page), POLL).toEqual(newestFirst.filter((id) => id !== disputed.orderId));
    await row(plain.orderId).getByRole("button", { name: `Refund order of ${plainFan.email}` }).click();
    await row(plain.orderId).getByRole("button", { name: `Confirm refund of ${dollars(plain.totalCents)}` }).click();
    await expect.poll(() => listedOrders(page), POLL).toEqual([partial.orderId]);
    await page.getByRole("searchbox", { name: "Buyer's email or order id" }).fill("nobody@example.com");
    await row(partial.orderId).getByRole("button", { name: `Refund order of ${partialFan.email}` }).click();
    await row(partial.orderId).getByRole("button", { name: `Confirm refund of ${dollars(partial.totalCents - 1_200)}` }).click();
    await expect.poll(() => page.locator("#orders-list tr").allInnerTexts(), POLL).toEqual(["No confirmed orders."]);
    await page.getByRole("searchbox", { name: "Buyer's email or order id" }).fill("");
    await status.selectOption({ label: "Refunded" });
    await expect.poll(() => listedOrders(page), POLL).toEqual(newestFirst.filter((id) => id !== disputed.orderId));
    expect(await statusCell(row(plain.orderId))).toBe("refunded");
    expect(await statusCell(row(partial.orderId))).toBe("refunded");

    await status.selectOption({ label: "Cancelled" });
    await expect.poll(() => page.locator("#orders-list tr").allInnerTexts(), POLL).toEqual(["No cancelled orders."]);
    await checkPage(page, shots, "filtered-none");

    // Paging: the console's page size shrunk to 2 on the way to the API; More orders appends the third, then hides.
    await page.route(/\/admin\/events\/[^/]+\/orders\?/, (route) => route.continue({ url: route.request().url().replace("limit=50", "limit=2") }));
    await status.selectOption({ label: "All" });
    await expect.poll(() => listedOrders(page), POLL).toEqual(newestFirst.slice(0, 2));
    const more = page.getByRole("button", { name: "More orders" });
    expect(await more.isVisible()).toBe(true);
    await checkPage(page, shots, "first-page");
    await more.click();
    await expect.poll(() => listedOrders(page), POLL).toEqual(newestFirst);
    expect(await more.isHidden()).toBe(true);
    await checkPage(page, shots, "last-page");

    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });
});
