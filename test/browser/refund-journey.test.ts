/**
 * A refund made in the Stripe dashboard, as a fan lives it: a small show sells
 * out, a second fan joins its waitlist, the organizer refunds the first fan's
 * payment in Stripe (the local gateway's dashboard), Stripe's signed
 * `charge.refunded` reaches the Worker, and the first fan's "My tickets"
 * says in plain words that the tickets are void because the order was
 * refunded, while the waiting fan is emailed the offer and can open it to
 * pay. On a phone and on a desktop, with screenshots and the accessibility
 * check of the new page states.
 */
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { seriousViolations } from "./harness/axe";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { admin, buyByApi, deliverWebhooks, fanEmail, newFan, signInByApi, unique, waitFor, type FanSession } from "./harness/fixtures";
import { Screenshots, watchPage } from "./harness/pages";

const browser = chromiumForThisFile();

/** A published calm event at a two-seat room, on sale now: one fan buying both sells it out. */
async function twoSeatShow(): Promise<{ id: string; name: string }> {
  const venue = await admin(
    "POST",
    "/venues",
    { name: `Back Room ${unique()}`, city: "Springfield", timezone: "UTC", sections: [{ label: "Room", priceTier: "Room", rows: [{ label: "A", seats: 2 }] }] },
    z.object({ id: z.uuid() }),
  );
  return admin(
    "POST",
    "/events",
    {
      venueId: venue.id,
      name: `Songwriter Night ${unique()}`,
      description: "Two seats, one songwriter.",
      startsAt: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      saleStartsAt: new Date(Date.now() - 60_000).toISOString(),
      currency: "USD",
      status: "published",
      demandClass: "calm",
      prices: [{ priceTier: "Room", priceCents: 3_000 }],
    },
    z.object({ id: z.uuid(), name: z.string() }),
  );
}

/** The gateway's control routes (the test stack's Stripe). */
async function gateway<T>(method: string, path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
  const response = await fetch(`${inject("stripeApiBase")}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`gateway ${method} ${path}: HTTP ${response.status} ${text}`);
  return schema.parse(JSON.parse(text));
}

/** Joins the event's waitlist through the API. */
async function joinWaitlist(eventId: string, session: FanSession, quantity: number): Promise<void> {
  const response = await fetch(`${inject("appUrl")}/api/events/${eventId}/waitlist`, {
    method: "POST",
    headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ quantity }),
  });
  if (response.status !== 201) throw new Error(`joining the waitlist answered ${response.status}: ${await response.text()}`);
}

const outboxList = z.object({ data: z.array(z.object({ subject: z.string(), text: z.string().nullable() })) });

/** The link in the waitlist offer emailed to `email`, once it has arrived. */
async function offerLink(email: string): Promise<string> {
  return waitFor(`a waitlist offer for ${email}`, async () => {
    const response = await fetch(`${inject("mailOutboxUrl")}/emails?to=${encodeURIComponent(email)}`);
    const { data } = outboxList.parse(await response.json());
    const offer = data.find((message) => message.subject.startsWith("Your waitlist offer for "));
    return offer?.text ? /(https?:\/\/\S+\/checkout\S*)/.exec(offer.text)?.[1] : undefined;
  });
}

describe.each(DEVICE_NAMES)("a refund made in the Stripe dashboard, on a %s", (device) => {
  it("voids the fan's tickets on My tickets, in plain words, and offers the places to the waitlist", async () => {
    const event = await twoSeatShow();
    const shots = new Screenshots("refund-journey", device);
    const buyer = await signInByApi(fanEmail("buyer"));
    const waiter = await signInByApi(fanEmail("waiter"));
    await buyByApi(event.id, buyer, [0, 1]);
    await joinWaitlist(event.id, waiter, 2);

    const fan = await newFan(browser(), device, buyer);
    const page = await fan.newPage();
    const problems = watchPage(page);
    // The sales queue writes the tickets a moment after payment; the page waits for them.
    await page.goto(`/tickets?event=${event.id}`);
    const qr = page.getByRole("img", { name: /^QR code for / });
    await expect.poll(() => qr.count(), { timeout: 30_000 }).toBe(2);
    await shots.take(page, "tickets");

    // The organizer refunds the payment in Stripe's dashboard; Stripe sends charge.refunded.
    const [intent] = await gateway("GET", `/__payment_intents?${new URLSearchParams({ "metadata[event_id]": event.id }).toString()}`, undefined, z.array(z.object({ id: z.string() })));
    if (!intent) throw new Error("no PaymentIntent for the event");
    await gateway("POST", "/__dashboard/refund", { payment_intent: intent.id }, z.object({ object: z.literal("refund"), amount: z.literal(6_000) }));
    expect(await deliverWebhooks(event.id)).toContain("charge.refunded");

    await page.reload();
    await expect.poll(() => page.getByText("Void · refunded").count(), { timeout: 15_000 }).toBe(2);
    expect(await page.getByText("Your order was refunded, so this ticket no longer gets you in.").count()).toBe(2);
    expect(await qr.count()).toBe(0);
    await shots.take(page, "tickets-refunded");
    expect(await seriousViolations(page)).toEqual([]);
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);

    // The waiting fan is offered the two places, and the offer opens on checkout, ready to pay.
    const link = await offerLink(waiter.email);
    const other = await newFan(browser(), device, waiter);
    const offerPage = await other.newPage();
    const offerProblems = watchPage(offerPage);
    await offerPage.goto(link);
    await offerPage.getByRole("button", { name: /^Pay / }).waitFor();
    await shots.take(offerPage, "waitlist-offer-checkout");
    expect(offerProblems.failedCalls).toEqual([]);
    await fan.close();
    await other.close();
  });
});
