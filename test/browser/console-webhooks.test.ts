/**
 * The console's Webhooks view in Chromium, against a real receiver on
 * loopback (test/setup/webhook-receiver.ts; the browser stack allows local
 * receivers as the local stack does): a URL the API refuses shows the API's
 * reason and stores nothing; an endpoint added through the form for one event
 * shows its signing secret once and is in the API with the chosen types;
 * cancelling that event delivers a webhook signed with that secret, which the
 * delivery log shows as delivered; Resend sends it again (the same
 * webhook-id, a second attempt in the API); rotating shows a new secret once;
 * Delete takes a second click and the endpoint is then gone from the API.
 * Every state is checked with axe and saved as screenshots at phone and
 * desktop sizes.
 */
import { createHmac } from "node:crypto";
import type { Locator, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { WEBHOOK_EVENT_TYPES } from "../../core/db/schema";
import { receiver, type ReceivedWebhook } from "../fixtures/webhook-receivers";
import { adminCallsAreDocumented } from "./harness/admin-calls";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { checkPage, signedInConsole } from "./harness/console";
import { admin, calmEvent, unique, waitFor } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";

const browser = chromiumForThisFile();
adminCallsAreDocumented();

/** Polls within a loaded machine's patience (the queue batches for up to 2 s). */
const POLL = { timeout: 20_000 };

const endpointList = z.object({
  endpoints: z.array(z.object({ id: z.uuid(), url: z.string(), eventTypes: z.array(z.string()), eventId: z.uuid().nullable(), previousSecretExpiresAt: z.string().nullable() })),
});
const deliveryList = z.object({
  deliveries: z.array(z.object({ id: z.uuid(), webhookId: z.string(), eventType: z.string(), status: z.string(), attempts: z.array(z.object({ httpStatus: z.number().nullable() })) })),
});

const endpoints = async () => (await admin("GET", "/webhooks/endpoints", undefined, endpointList)).endpoints;
const deliveriesOf = async (endpointId: string) => (await admin("GET", `/webhooks/endpoints/${endpointId}/deliveries`, undefined, deliveryList)).deliveries;

/** Whether `secret` (`whsec_` + base64 key) signed this request, the Standard Webhooks way. */
function signedWith(secret: string, request: ReceivedWebhook): boolean {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.${request.body}`).digest("base64");
  return (request.headers["webhook-signature"] ?? "").split(" ").includes(`v1,${expected}`);
}

const cells = (row: Locator) => row.locator("td").allInnerTexts();
const alertText = (page: Page) => page.getByRole("alert").innerText();

describe("the console's webhooks", () => {
  it.each(DEVICE_NAMES)("adds an endpoint with its secret shown once, logs a real delivery, resends it, rotates the secret and deletes the endpoint (%s)", async (device) => {
    const shots = new Screenshots("console/webhooks", device);
    const event = await calmEvent();
    const hooks = receiver(`console-${device}-${unique()}`);
    const { page, problems, close } = await signedInConsole(browser(), device, shots);

    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.getByRole("heading", { name: "Webhooks" }).waitFor();
    const boxes = page.locator("#hook-types input[type=checkbox]");
    expect(await boxes.evaluateAll((inputs) => inputs.map((input) => input.getAttribute("value")))).toEqual([...WEBHOOK_EVENT_TYPES]);
    await expect.poll(() => page.getByLabel("Only this event").locator("option", { hasText: event.name }).count(), POLL).toBe(1);
    await checkPage(page, shots, "webhooks");

    // No event type chosen: the console asks for one. A URL with credentials: the API's refusal, and nothing stored.
    await page.getByLabel("Endpoint URL").fill("https://hook-user:hunter2@hooks.example.com/in");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    await expect.poll(() => alertText(page), POLL).toBe("Choose at least one event type.");
    await page.getByLabel(/^Event cancelled/).check();
    await page.getByRole("button", { name: "Add endpoint" }).click();
    await expect.poll(() => alertText(page), POLL).toMatch(/^Invalid url: it must not carry a user name or password\./);
    expect((await endpoints()).map((e) => e.url)).not.toContain("https://hook-user:hunter2@hooks.example.com/in");
    await checkPage(page, shots, "refused");

    await page.getByLabel("Endpoint URL").fill(hooks.url);
    await page.getByLabel(/^Order refunded/).check();
    await page.getByLabel("Only this event").selectOption({ label: event.name });
    await page.getByLabel("Description (optional)").fill("Box office sync");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const secretValue = page.locator("#hook-secret-value");
    await expect.poll(() => secretValue.innerText(), POLL).toMatch(/^whsec_/);
    const secret = await secretValue.innerText();
    expect(await page.locator("#hook-secret").innerText()).toContain("shown only this once");
    expect(await page.getByRole("alert").isHidden()).toBe(true);
    const stored = (await endpoints()).find((e) => e.url === hooks.url);
    expect(stored).toMatchObject({ eventId: event.id, previousSecretExpiresAt: null });
    expect(stored?.eventTypes.toSorted()).toEqual(["event.cancelled", "order.refunded"]);
    const endpointId = stored?.id ?? "";
    const row = page.locator(`#hooks-list tr[data-endpoint="${endpointId}"]`);
    await expect.poll(() => cells(row), POLL).toEqual([`${hooks.url}\nBox office sync`, "order.refunded, event.cancelled", event.name, expect.any(String), expect.stringContaining("Deliveries")]);
    await checkPage(page, shots, "endpoint-added");

    // A real delivery: the event is cancelled; the receiver gets it, signed with the secret the page showed.
    await admin("POST", `/events/${event.id}/cancel`, undefined, z.object({ ordersRemaining: z.number() }));
    const [first] = await waitFor("the cancellation's webhook", async () => ((await hooks.received()).length > 0 ? hooks.received() : undefined), POLL.timeout);
    expect(first && signedWith(secret, first)).toBe(true);
    expect(JSON.parse(first?.body ?? "{}")).toMatchObject({ type: "event.cancelled", data: { eventId: event.id } });
    await waitFor("the delivery marked delivered", async () => ((await deliveriesOf(endpointId))[0]?.status === "delivered" ? true : undefined), POLL.timeout);

    await page.getByRole("button", { name: `Deliveries to ${hooks.url}` }).click();
    await page.getByRole("heading", { name: `Deliveries to ${hooks.url}` }).waitFor();
    const delivery = page.locator("#deliveries-list tr").first();
    await expect.poll(() => cells(delivery), POLL).toEqual([expect.any(String), "event.cancelled", "delivered", "1", expect.stringMatching(/^HTTP 200 \(/), "Resend"]);
    expect(await page.locator("#deliveries-more").isHidden()).toBe(true);
    await checkPage(page, shots, "deliveries");

    // Resend: queued again, the same webhook-id at the receiver, a second attempt in the API.
    await page.getByRole("button", { name: /^Resend the event\.cancelled delivery of / }).click();
    await expect.poll(() => page.getByRole("status").innerText(), POLL).toMatch(/delivery of .* is queued again/);
    const both = await waitFor("the resent webhook", async () => {
      const received = await hooks.received();
      return received.length === 2 ? received : undefined;
    }, POLL.timeout);
    expect(both.map((r) => r.headers["webhook-id"])).toEqual([first?.headers["webhook-id"], first?.headers["webhook-id"]]);
    await waitFor("the second attempt in the log", async () => {
      const [logged] = await deliveriesOf(endpointId);
      return logged?.status === "delivered" && logged.attempts.length === 2 ? true : undefined;
    }, POLL.timeout);
    await page.getByRole("button", { name: `Deliveries to ${hooks.url}` }).click();
    await expect.poll(() => cells(delivery), POLL).toEqual([expect.any(String), "event.cancelled", "delivered", "2", expect.stringMatching(/^HTTP 200 \(/), "Resend"]);
    await checkPage(page, shots, "resent");

    // Rotate: a new secret, shown once; the old one keeps signing until previousSecretExpiresAt.
    await page.getByRole("button", { name: `Rotate secret of ${hooks.url}` }).click();
    await expect.poll(() => secretValue.innerText(), POLL).not.toBe(secret);
    expect(await secretValue.innerText()).toMatch(/^whsec_/);
    expect(await page.locator("#hook-secret").innerText()).toMatch(/shown only this once\. The old secret keeps signing too until /);
    expect((await endpoints()).find((e) => e.id === endpointId)?.previousSecretExpiresAt).not.toBeNull();
    await checkPage(page, shots, "rotated");

    // Delete: a second, explicit click; then the endpoint (and its log) is gone.
    await page.getByRole("button", { name: `Delete endpoint ${hooks.url}` }).click();
    expect((await endpoints()).map((e) => e.id)).toContain(endpointId);
    await page.getByRole("button", { name: `Confirm: delete ${hooks.url} and its delivery log` }).click();
    await expect.poll(() => row.count(), POLL).toBe(0);
    expect((await endpoints()).map((e) => e.id)).not.toContain(endpointId);
    expect(await page.locator("#deliveries").isHidden()).toBe(true);
    await checkPage(page, shots, "deleted");

    // The refused POST is the page's only failed call, and Chromium's log line for it its only console error.
    expect(problems.errors).toEqual([expect.stringContaining("responded with a status of 400")]);
    expect(problems.failedCalls).toEqual([{ method: "POST", path: "/admin/webhooks/endpoints", status: 400 }]);
    await close();
  });
});
