/**
 * Organizers' events through the admin API: created with defaults and their
 * inventory, listed and read only by their organizer, and changed freely
 * before the sale but only in wording, end times and admission once a
 * published event's sale has started.
 */
import { count, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { eventGaSections, eventSeats, events } from "../../../core/db/schema";
import { withDb } from "../../fixtures/db";
import { DAY, eventBody, eventList, type EventView, fromNow, HOUR, organizerWithTheatre, postEvent, strictEvent, THEATRE_PRICES } from "../../fixtures/events";
import { adminRequest, expectApiError, expectInvalid, rawRequest, type ReadResponse } from "../../fixtures/http";
import { newOrganizer } from "../../fixtures/seeding";

async function readEvent(apiKey: string, id: string): Promise<EventView> {
  const response = await adminRequest(apiKey, "GET", `/events/${id}`);
  expect(response.status, response.text).toBe(200);
  return strictEvent.parse(response.json);
}

function eventOf(response: ReadResponse): EventView {
  expect(response.status, response.text).toBe(200);
  return strictEvent.parse(response.json);
}

const countEvents = (organizerId: string) => withDb((db) => db.$count(events, eq(events.organizerId, organizerId)));

describe("POST /admin/events", () => {
  it("creates an event with defaults and its per-seat and general-admission inventory", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const body = eventBody(venue.id);
    const event = await postEvent(apiKey, body);

    expect(event).toMatchObject({
      venueId: venue.id,
      venueName: venue.name,
      name: body.name,
      description: "",
      endsAt: null,
      saleEndsAt: null,
      lobbyOpensMinutes: 30,
      holdTtlSeconds: 600,
      declineRetrySeconds: 120,
      purchaseLimit: 4,
      currency: "USD",
      expectedDemand: 0,
      demandClass: "calm",
      status: "draft",
      saleState: "upcoming",
      capacity: 44,
    });
    expect(new Date(event.startsAt).getTime()).toBe(new Date(String(body.startsAt)).getTime());
    // Most expensive first.
    expect(event.prices).toEqual(THEATRE_PRICES);

    const inventory = await withDb(async (db) => ({
      seats: await db
        .select({ status: eventSeats.status, n: count() })
        .from(eventSeats)
        .where(eq(eventSeats.eventId, event.id))
        .groupBy(eventSeats.status),
      seatIndexes: await db.select({ seatIndex: eventSeats.seatIndex }).from(eventSeats).where(eq(eventSeats.eventId, event.id)),
      ga: await db
        .select({ sectionId: eventGaSections.sectionId, capacity: eventGaSections.capacity, sold: eventGaSections.sold })
        .from(eventGaSections)
        .where(eq(eventGaSections.eventId, event.id)),
    }));
    expect(inventory.seats).toEqual([{ status: "available", n: venue.seatCount }]);
    expect(inventory.seatIndexes.map((s) => s.seatIndex).sort((a, b) => a - b)).toEqual(Array.from({ length: venue.seatCount }, (_, i) => i));
    const pit = venue.sections.find((s) => s.kind === "general_admission");
    expect(inventory.ga).toEqual([{ sectionId: pit?.id, capacity: 20, sold: 0 }]);
  });

  it("keeps explicit settings", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const event = await postEvent(
      apiKey,
      eventBody(venue.id, {
        description: "Two sets",
        endsAt: fromNow(30 * DAY + 3 * HOUR),
        saleEndsAt: fromNow(29 * DAY),
        lobbyOpensMinutes: 0,
        holdTtlSeconds: 60,
        declineRetrySeconds: 0,
        purchaseLimit: 50,
        currency: "EUR",
        status: "published",
      }),
    );
    expect(event).toMatchObject({ description: "Two sets", lobbyOpensMinutes: 0, holdTtlSeconds: 60, declineRetrySeconds: 0, purchaseLimit: 50, currency: "EUR", status: "published" });
  });

  it.each([
    { expectedDemand: 0, demandClass: undefined, expected: "calm" },
    { expectedDemand: 219, demandClass: undefined, expected: "calm" },
    { expectedDemand: 220, demandClass: undefined, expected: "hot" },
    { expectedDemand: 1_000_000, demandClass: undefined, expected: "hot" },
    { expectedDemand: 1_000_000, demandClass: "calm", expected: "calm" },
    { expectedDemand: 0, demandClass: "hot", expected: "hot" },
  ])("classifies expected demand $expectedDemand for capacity 44 (explicit: $demandClass) as $expected", async ({ expectedDemand, demandClass, expected }) => {
    const { apiKey, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id, { expectedDemand, demandClass }));
    expect(event.demandClass).toBe(expected);
    expect(event.expectedDemand).toBe(expectedDemand);
  });

  const priceProblems = [
    { name: "a missing tier", prices: THEATRE_PRICES.slice(1), mentions: "premium" },
    { name: "an unknown tier", prices: [...THEATRE_PRICES, { priceTier: "vip", priceCents: 1 }], mentions: "vip" },
    { name: "a duplicate tier", prices: [...THEATRE_PRICES, { priceTier: "balcony", priceCents: 1 }], mentions: "balcony" },
  ];
  it.each(priceProblems)("rejects prices with $name, creating nothing", async ({ prices, mentions }) => {
    const { apiKey, organizerId, venue } = await organizerWithTheatre();
    const body = expectInvalid(await adminRequest(apiKey, "POST", "/events", eventBody(venue.id, { prices })), "prices");
    expect(body.error.details?.map((d) => d.message).join(" ")).toContain(`"${mentions}"`);
    expect(await countEvents(organizerId)).toBe(0);
  });

  const dateProblems = [
    { name: "a sale starting after the event", dates: { saleStartsAt: fromNow(31 * DAY) }, path: "saleStartsAt" },
    { name: "an end before the start", dates: { endsAt: fromNow(29 * DAY) }, path: "endsAt" },
    { name: "an end equal to the start", dates: { startsAt: fromNow(30 * DAY), endsAt: fromNow(30 * DAY) }, path: "endsAt" },
    { name: "a sale ending before it starts", dates: { saleEndsAt: fromNow(9 * DAY) }, path: "saleEndsAt" },
    { name: "a date that is not ISO 8601", dates: { startsAt: "next friday" }, path: "startsAt" },
    { name: "a date without an offset", dates: { startsAt: "2030-01-01T20:00:00" }, path: "startsAt" },
  ];
  it.each(dateProblems)("rejects $name, creating nothing", async ({ dates, path }) => {
    const { apiKey, organizerId, venue } = await organizerWithTheatre();
    expectInvalid(await adminRequest(apiKey, "POST", "/events", eventBody(venue.id, dates)), path);
    expect(await countEvents(organizerId)).toBe(0);
  });

  const fieldProblems = [
    { name: "missing prices", body: (venueId: string) => eventBody(venueId, { prices: undefined }), path: "prices" },
    { name: "empty prices", body: (venueId: string) => eventBody(venueId, { prices: [] }), path: "prices" },
    { name: "a negative price", body: (venueId: string) => eventBody(venueId, { prices: [{ priceTier: "premium", priceCents: -1 }, ...THEATRE_PRICES.slice(1)] }), path: "prices.0.priceCents" },
    { name: "an unknown field", body: (venueId: string) => eventBody(venueId, { capacity: 10 }), path: "" },
    { name: "a hold TTL under a minute", body: (venueId: string) => eventBody(venueId, { holdTtlSeconds: 59 }), path: "holdTtlSeconds" },
    { name: "a purchase limit over 50", body: (venueId: string) => eventBody(venueId, { purchaseLimit: 51 }), path: "purchaseLimit" },
    { name: "a lowercase currency", body: (venueId: string) => eventBody(venueId, { currency: "usd" }), path: "currency" },
    { name: "a cancelled status", body: (venueId: string) => eventBody(venueId, { status: "cancelled" }), path: "status" },
    { name: "a venue id that is not a uuid", body: () => eventBody("venue-1"), path: "venueId" },
    { name: "no name", body: (venueId: string) => eventBody(venueId, { name: "   " }), path: "name" },
  ];
  it.each(fieldProblems)("rejects $name with a 400", async ({ body, path }) => {
    const { apiKey, organizerId, venue } = await organizerWithTheatre();
    expectInvalid(await adminRequest(apiKey, "POST", "/events", body(venue.id)), path);
    expect(await countEvents(organizerId)).toBe(0);
  });

  it("rejects a body that is not JSON", async () => {
    const { apiKey } = await organizerWithTheatre();
    const response = await rawRequest("/admin/events", {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: "{venueId:",
    });
    expectApiError(response, 400, "invalid_request");
  });

  it("answers 404 for another organizer's venue, exactly as for an unknown one", async () => {
    const owner = await organizerWithTheatre();
    const stranger = await newOrganizer();
    const theirs = await adminRequest(stranger.apiKey, "POST", "/events", eventBody(owner.venue.id));
    const nobodys = await adminRequest(stranger.apiKey, "POST", "/events", eventBody(crypto.randomUUID()));
    expectApiError(theirs, 404, "not_found");
    expect(theirs.text).toBe(nobodys.text);
    expect(await countEvents(stranger.organizerId)).toBe(0);
    expect(await countEvents(owner.organizerId)).toBe(0);
  });
});

describe("GET /admin/events", () => {
  it("lists and reads only the caller's events", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const other = await organizerWithTheatre();
    const later = await postEvent(apiKey, eventBody(venue.id, { startsAt: fromNow(40 * DAY) }));
    const sooner = await postEvent(apiKey, eventBody(venue.id));
    await postEvent(other.apiKey, eventBody(other.venue.id));

    const list = await adminRequest(apiKey, "GET", "/events");
    expect(list.status).toBe(200);
    expect(list.headers.get("Cache-Control")).toBe("no-store");
    expect(eventList.parse(list.json).events).toEqual([sooner, later]);
    expect(await readEvent(apiKey, later.id)).toEqual(later);
  });

  it("answers 404 for another organizer's event, exactly as for an unknown one, and 400 for a malformed id", async () => {
    const owner = await organizerWithTheatre();
    const stranger = await newOrganizer();
    const event = await postEvent(owner.apiKey, eventBody(owner.venue.id));

    const theirs = await adminRequest(stranger.apiKey, "GET", `/events/${event.id}`);
    const nobodys = await adminRequest(stranger.apiKey, "GET", `/events/${crypto.randomUUID()}`);
    expectApiError(theirs, 404, "not_found");
    expect(theirs.text).toBe(nobodys.text);
    expect(eventList.parse((await adminRequest(stranger.apiKey, "GET", "/events")).json).events).toEqual([]);
    expectInvalid(await adminRequest(owner.apiKey, "GET", "/events/42"), "id");
  });
});

describe("PATCH /admin/events/:id", () => {
  it("changes anything before the sale, recomputing the demand class", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id));
    const changes = {
      name: "Renamed",
      description: "New description",
      startsAt: fromNow(60 * DAY),
      endsAt: fromNow(60 * DAY + 2 * HOUR),
      saleStartsAt: fromNow(20 * DAY),
      saleEndsAt: fromNow(59 * DAY),
      lobbyOpensMinutes: 90,
      holdTtlSeconds: 300,
      declineRetrySeconds: 30,
      purchaseLimit: 8,
      currency: "GBP",
      expectedDemand: 500,
      status: "published",
      prices: THEATRE_PRICES.map((p) => ({ ...p, priceCents: p.priceCents + 1 })),
    };
    const updated = eventOf(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, changes));
    expect(updated).toMatchObject({
      name: "Renamed",
      description: "New description",
      lobbyOpensMinutes: 90,
      holdTtlSeconds: 300,
      declineRetrySeconds: 30,
      purchaseLimit: 8,
      currency: "GBP",
      expectedDemand: 500,
      demandClass: "hot",
      status: "published",
      prices: changes.prices,
    });
    for (const key of ["startsAt", "endsAt", "saleStartsAt", "saleEndsAt"] as const) {
      expect(new Date(updated[key] ?? 0).getTime(), key).toBe(new Date(changes[key]).getTime());
    }
    expect(await readEvent(apiKey, event.id)).toEqual(updated);
  });

  it("lets a draft change even once its sale date has passed", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id, { saleStartsAt: fromNow(-DAY) }));
    expect(eventOf(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, { purchaseLimit: 2 })).purchaseLimit).toBe(2);
  });

  it("rejects inconsistent dates and unknown fields, changing nothing", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id));
    expectInvalid(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, { saleStartsAt: fromNow(31 * DAY) }), "saleStartsAt");
    expectInvalid(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, { startsAt: fromNow(5 * DAY) }), "saleStartsAt");
    expectInvalid(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, { venueId: crypto.randomUUID() }), "");
    expectInvalid(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, { prices: THEATRE_PRICES.slice(0, 2) }), "prices");
    expect(await readEvent(apiKey, event.id)).toEqual(event);
  });

  describe("once a published event's sale has started", () => {
    async function onSaleEvent() {
      const { apiKey, venue } = await organizerWithTheatre();
      const event = await postEvent(apiKey, eventBody(venue.id, { saleStartsAt: fromNow(-HOUR), status: "published" }));
      expect(event.saleState).toBe("on_sale");
      return { apiKey, event };
    }

    it("changes its name, description and end times", async () => {
      const { apiKey, event } = await onSaleEvent();
      const changes = { name: "New name", description: "Doors at 7", endsAt: fromNow(30 * DAY + 4 * HOUR), saleEndsAt: fromNow(29 * DAY) };
      const updated = eventOf(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, changes));
      expect(updated).toMatchObject({ name: "New name", description: "Doors at 7", saleState: "on_sale" });
      expect(updated.endsAt && new Date(updated.endsAt).getTime()).toBe(new Date(changes.endsAt).getTime());
      expect(updated.saleEndsAt && new Date(updated.saleEndsAt).getTime()).toBe(new Date(changes.saleEndsAt).getTime());
      const { name: _n, description: _d, endsAt: _e, saleEndsAt: _s, updatedAt: _u, ...unchanged } = event;
      expect(updated).toMatchObject(unchanged);
    });

    it("refuses a sale end in the past", async () => {
      const { apiKey, event } = await onSaleEvent();
      expectInvalid(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, { saleEndsAt: fromNow(-60_000) }));
      expect(await readEvent(apiKey, event.id)).toEqual(event);
    });

    const locked: Record<string, unknown>[] = [
      { startsAt: fromNow(31 * DAY) },
      { saleStartsAt: fromNow(-2 * HOUR) },
      { lobbyOpensMinutes: 10 },
      { holdTtlSeconds: 900 },
      { declineRetrySeconds: 0 },
      { purchaseLimit: 10 },
      { currency: "EUR" },
      { expectedDemand: 10_000 },
      { demandClass: "hot" },
      { status: "draft" },
      { prices: THEATRE_PRICES.map((p) => ({ ...p, priceCents: 1 })) },
      { name: "Sneaky", purchaseLimit: 20 },
    ];
    it.each(locked)("answers 409 sale_in_progress for %o and changes nothing", async (changes) => {
      const { apiKey, event } = await onSaleEvent();
      const body = expectApiError(await adminRequest(apiKey, "PATCH", `/events/${event.id}`, changes), 409, "sale_in_progress");
      for (const key of Object.keys(changes).filter((k) => k !== "name")) expect(body.error.message).toContain(key);
      expect(await readEvent(apiKey, event.id)).toEqual(event);
    });
  });

  it("answers 404 to another organizer and leaves the event alone", async () => {
    const owner = await organizerWithTheatre();
    const stranger = await newOrganizer();
    const event = await postEvent(owner.apiKey, eventBody(owner.venue.id));
    const theirs = await adminRequest(stranger.apiKey, "PATCH", `/events/${event.id}`, { name: "Hijacked" });
    const nobodys = await adminRequest(stranger.apiKey, "PATCH", `/events/${crypto.randomUUID()}`, { name: "Hijacked" });
    expectApiError(theirs, 404, "not_found");
    expect(theirs.text).toBe(nobodys.text);
    expect(await readEvent(owner.apiKey, event.id)).toEqual(event);
  });
});
