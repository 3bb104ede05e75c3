/** Events: creation with their per-seat inventory, reads, and guarded updates. */
import { z } from "@hono/zod-openapi";
import { and, asc, desc, eq, gt, isNull, or, sql } from "drizzle-orm";
import type { Db } from "../../core/db/client";
import { eventPriceTiers, events, venues } from "../../core/db/schema";
import { conflict, invalidRequest, notFound } from "../../core/errors";
import { venuePriceTiers } from "../venues/venues";

/** Seed "Deep Dive 1": expected demand at or above 5x capacity makes an event hot. */
export const HOT_DEMAND_RATIO = 5;

/** The demand class an event gets from its expected demand and capacity. */
export function classifyDemand(expectedDemand: number, capacity: number, ratio = HOT_DEMAND_RATIO): "calm" | "hot" {
  return expectedDemand / capacity >= ratio ? "hot" : "calm";
}

const isoDate = z.iso.datetime({ offset: true }).openapi({ example: "2027-03-01T19:00:00Z" });
const priceSchema = z.strictObject({
  priceTier: z.string().trim().min(1).max(40),
  priceCents: z.number().int().min(0).max(10_000_000),
});

const eventFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(5_000),
  startsAt: isoDate,
  endsAt: isoDate.nullable(),
  saleStartsAt: isoDate,
  saleEndsAt: isoDate.nullable(),
  lobbyOpensMinutes: z.number().int().min(0).max(1_440),
  holdTtlSeconds: z.number().int().min(60).max(3_600),
  declineRetrySeconds: z.number().int().min(0).max(600),
  purchaseLimit: z.number().int().min(1).max(50),
  currency: z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code such as USD"),
  expectedDemand: z.number().int().min(0).max(1_000_000_000),
  demandClass: z.enum(["calm", "hot"]),
  status: z.enum(["draft", "published"]),
  prices: z.array(priceSchema).min(1).max(100),
  admissionRatePerSecond: z.number().int().min(1).max(100_000),
  botPolicy: z.enum(["deprioritize", "refuse"]),
  maxAccountsPerDevice: z.number().int().min(1).max(1_000),
  maxAccountsPerIp: z.number().int().min(1).max(100_000),
};

/** Body of `POST /admin/events`: the venue, a name, the start and sale start and the prices; the rest has defaults. */
export const createEventSchema = z
  .strictObject({ venueId: z.uuid(), ...eventFields })
  .partial({
    description: true,
    endsAt: true,
    saleEndsAt: true,
    lobbyOpensMinutes: true,
    holdTtlSeconds: true,
    declineRetrySeconds: true,
    purchaseLimit: true,
    currency: true,
    expectedDemand: true,
    demandClass: true,
    status: true,
    admissionRatePerSecond: true,
    botPolicy: true,
    maxAccountsPerDevice: true,
    maxAccountsPerIp: true,
  })
  .openapi("CreateEvent");

/** Body of `PATCH /admin/events/:id`: some or all of the editable fields. */
export const updateEventSchema = z.strictObject(eventFields).partial().openapi("UpdateEvent");

type CreateEvent = z.infer<typeof createEventSchema>;
type UpdateEvent = z.infer<typeof updateEventSchema>;

/** Fields that may still change once a published event's sale has started. */
const EDITABLE_DURING_SALE = new Set<keyof UpdateEvent>(["name", "description", "endsAt", "saleEndsAt", "admissionRatePerSecond", "botPolicy", "maxAccountsPerDevice", "maxAccountsPerIp"]);

/** An event as the APIs show it. */
export const eventViewSchema = z
  .object({
    id: z.uuid(),
    venueId: z.uuid(),
    venueName: z.string(),
    name: z.string(),
    description: z.string(),
    startsAt: z.string(),
    endsAt: z.string().nullable(),
    saleStartsAt: z.string(),
    saleEndsAt: z.string().nullable(),
    lobbyOpensMinutes: z.number(),
    holdTtlSeconds: z.number(),
    declineRetrySeconds: z.number(),
    purchaseLimit: z.number(),
    currency: z.string(),
    expectedDemand: z.number(),
    demandClass: z.enum(["calm", "hot"]),
    status: z.enum(["draft", "published", "cancelled"]),
    admissionRatePerSecond: z.number(),
    botPolicy: z.enum(["deprioritize", "refuse"]),
    maxAccountsPerDevice: z.number(),
    maxAccountsPerIp: z.number(),
    saleState: z.enum(["upcoming", "on_sale", "ended", "cancelled"]),
    capacity: z.number(),
    prices: z.array(priceSchema),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Event");

/** An event as the APIs show it. */
export type EventView = z.infer<typeof eventViewSchema>;

type EventRow = typeof events.$inferSelect;

function saleState(event: EventRow, now: Date): EventView["saleState"] {
  if (event.status === "cancelled") return "cancelled";
  if (now < event.saleStartsAt) return "upcoming";
  const end = event.saleEndsAt ?? event.endsAt ?? event.startsAt;
  return now < end ? "on_sale" : "ended";
}

function toView(event: EventRow, venue: { name: string; capacity: number }, prices: { priceTier: string; priceCents: number }[], now: Date): EventView {
  return {
    id: event.id,
    venueId: event.venueId,
    venueName: venue.name,
    name: event.name,
    description: event.description,
    startsAt: event.startsAt.toISOString(),
    endsAt: event.endsAt?.toISOString() ?? null,
    saleStartsAt: event.saleStartsAt.toISOString(),
    saleEndsAt: event.saleEndsAt?.toISOString() ?? null,
    lobbyOpensMinutes: event.lobbyOpensMinutes,
    holdTtlSeconds: event.holdTtlSeconds,
    declineRetrySeconds: event.declineRetrySeconds,
    purchaseLimit: event.purchaseLimit,
    currency: event.currency,
    expectedDemand: event.expectedDemand,
    demandClass: event.demandClass,
    status: event.status,
    admissionRatePerSecond: event.admissionRatePerSecond,
    botPolicy: event.botPolicy,
    maxAccountsPerDevice: event.maxAccountsPerDevice,
    maxAccountsPerIp: event.maxAccountsPerIp,
    saleState: saleState(event, now),
    capacity: venue.capacity,
    prices,
    createdAt: event.createdAt.toISOString(),
    updatedAt: event.updatedAt.toISOString(),
  };
}

interface Schedule {
  startsAt: Date;
  endsAt: Date | null;
  saleStartsAt: Date;
  saleEndsAt: Date | null;
}

function checkSchedule(s: Schedule): void {
  const problems: { path: string; message: string }[] = [];
  if (s.saleStartsAt > s.startsAt) problems.push({ path: "saleStartsAt", message: "the sale must start before the event does" });
  if (s.endsAt && s.endsAt <= s.startsAt) problems.push({ path: "endsAt", message: "the event must end after it starts" });
  if (s.saleEndsAt && s.saleEndsAt <= s.saleStartsAt) problems.push({ path: "saleEndsAt", message: "the sale must end after it starts" });
  if (problems.length > 0) throw invalidRequest("The event's dates are inconsistent.", problems);
}

function checkPrices(prices: { priceTier: string }[], venueTiers: string[]): void {
  const given = prices.map((p) => p.priceTier);
  const duplicates = given.filter((tier, i) => given.indexOf(tier) !== i);
  const unknown = given.filter((tier) => !venueTiers.includes(tier));
  const missing = venueTiers.filter((tier) => !given.includes(tier));
  const problems = [
    ...duplicates.map((tier) => ({ path: "prices", message: `price tier "${tier}" is priced twice` })),
    ...unknown.map((tier) => ({ path: "prices", message: `the venue has no price tier "${tier}"` })),
    ...missing.map((tier) => ({ path: "prices", message: `price tier "${tier}" needs a price` })),
  ];
  if (problems.length > 0) throw invalidRequest(`Prices must cover exactly the venue's price tiers: ${venueTiers.join(", ")}.`, problems);
}

/**
 * Creates an event at one of the organizer's venues, with a price per price
 * tier, and its per-seat and general-admission inventory rows, in one transaction.
 */
export async function createEvent(db: Db, organizerId: string, input: CreateEvent, now = new Date(), ratio = HOT_DEMAND_RATIO): Promise<EventView> {
  const [venue] = await db.select().from(venues).where(and(eq(venues.id, input.venueId), eq(venues.organizerId, organizerId)));
  if (!venue) throw notFound("Venue");
  const schedule = {
    startsAt: new Date(input.startsAt),
    endsAt: input.endsAt ? new Date(input.endsAt) : null,
    saleStartsAt: new Date(input.saleStartsAt),
    saleEndsAt: input.saleEndsAt ? new Date(input.saleEndsAt) : null,
  };
  checkSchedule(schedule);
  checkPrices(input.prices, await venuePriceTiers(db, venue.id));
  const expectedDemand = input.expectedDemand ?? 0;
  const eventId = await db.transaction(async (tx) => {
    const [event] = await tx
      .insert(events)
      .values({
        organizerId,
        venueId: venue.id,
        name: input.name,
        description: input.description ?? "",
        ...schedule,
        lobbyOpensMinutes: input.lobbyOpensMinutes,
        holdTtlSeconds: input.holdTtlSeconds,
        declineRetrySeconds: input.declineRetrySeconds,
        purchaseLimit: input.purchaseLimit,
        currency: input.currency,
        expectedDemand,
        demandClass: input.demandClass ?? classifyDemand(expectedDemand, venue.capacity, ratio),
        status: input.status,
        admissionRatePerSecond: input.admissionRatePerSecond,
        botPolicy: input.botPolicy,
        maxAccountsPerDevice: input.maxAccountsPerDevice,
        maxAccountsPerIp: input.maxAccountsPerIp,
      })
      .returning({ id: events.id });
    if (!event) throw new Error("event insert returned nothing");
    await tx.insert(eventPriceTiers).values(input.prices.map((p) => ({ eventId: event.id, ...p })));
    await tx.execute(sql`insert into event_seats (event_id, seat_index) select ${event.id}, seat_index from seats where venue_id = ${venue.id}`);
    await tx.execute(sql`
      insert into event_ga_sections (event_id, section_id, capacity)
      select ${event.id}, id, ga_capacity from sections where venue_id = ${venue.id} and kind = 'general_admission'`);
    return event.id;
  });
  return getEvent(db, { organizerId, eventId }, now);
}

/**
 * Reads an event with its venue and prices. Scoped to an organizer (admin) or
 * to published events (public); anything else is a 404.
 */
export async function getEvent(db: Db, scope: { eventId: string; organizerId?: string }, now = new Date()): Promise<EventView> {
  const visible = scope.organizerId ? eq(events.organizerId, scope.organizerId) : eq(events.status, "published");
  const [row] = await db
    .select({ event: events, venueName: venues.name, capacity: venues.capacity })
    .from(events)
    .innerJoin(venues, eq(venues.id, events.venueId))
    .where(and(eq(events.id, scope.eventId), visible));
  if (!row) throw notFound("Event");
  const prices = await db
    .select({ priceTier: eventPriceTiers.priceTier, priceCents: eventPriceTiers.priceCents })
    .from(eventPriceTiers)
    .where(eq(eventPriceTiers.eventId, scope.eventId))
    .orderBy(desc(eventPriceTiers.priceCents), asc(eventPriceTiers.priceTier));
  return toView(row.event, { name: row.venueName, capacity: row.capacity }, prices, now);
}

/** Throws 404 unless the event exists and is the organizer's (without reading the rest of it). */
export async function assertOrganizersEvent(db: Db, organizerId: string, eventId: string): Promise<void> {
  const [event] = await db
    .select({ id: events.id })
    .from(events)
    .where(and(eq(events.id, eventId), eq(events.organizerId, organizerId)));
  if (!event) throw notFound("Event");
}

/** Lists events: all of an organizer's, or the public upcoming published ones. */
export async function listEvents(db: Db, scope: { organizerId?: string }, now = new Date()): Promise<EventView[]> {
  const visible = scope.organizerId
    ? eq(events.organizerId, scope.organizerId)
    : and(eq(events.status, "published"), or(gt(events.endsAt, now), and(isNull(events.endsAt), gt(events.startsAt, now))));
  const rows = await db
    .select({ event: events, venueName: venues.name, capacity: venues.capacity })
    .from(events)
    .innerJoin(venues, eq(venues.id, events.venueId))
    .where(visible)
    .orderBy(asc(events.startsAt))
    .limit(500);
  if (rows.length === 0) return [];
  const prices = await db
    .select()
    .from(eventPriceTiers)
    .where(sql`${eventPriceTiers.eventId} in ${rows.map((r) => r.event.id)}`)
    .orderBy(desc(eventPriceTiers.priceCents), asc(eventPriceTiers.priceTier));
  return rows.map((r) =>
    toView(
      r.event,
      { name: r.venueName, capacity: r.capacity },
      prices.filter((p) => p.eventId === r.event.id).map(({ priceTier, priceCents }) => ({ priceTier, priceCents })),
      now,
    ),
  );
}

/**
 * Updates an event. Once a published event's sale has started only its
 * wording and end times may change: anything else would break the sale.
 */
export async function updateEvent(db: Db, organizerId: string, eventId: string, input: UpdateEvent, now = new Date(), ratio = HOT_DEMAND_RATIO): Promise<EventView> {
  const [current] = await db
    .select({ event: events, capacity: venues.capacity })
    .from(events)
    .innerJoin(venues, eq(venues.id, events.venueId))
    .where(and(eq(events.id, eventId), eq(events.organizerId, organizerId)));
  if (!current) throw notFound("Event");
  const { event } = current;
  if (event.status === "cancelled") throw conflict("event_cancelled", "A cancelled event cannot be edited.");
  const changed = (Object.keys(input) as (keyof UpdateEvent)[]).filter((key) => input[key] !== undefined);
  const saleStarted = event.status === "published" && now >= event.saleStartsAt;
  if (saleStarted) {
    const locked = changed.filter((key) => !EDITABLE_DURING_SALE.has(key));
    if (locked.length > 0) {
      throw conflict("sale_in_progress", `The sale has started; ${locked.join(", ")} can no longer change (only ${[...EDITABLE_DURING_SALE].join(", ")}).`);
    }
    if (input.saleEndsAt && new Date(input.saleEndsAt) <= now) {
      const message = "saleEndsAt must be in the future once the sale has started.";
      throw invalidRequest(message, [{ path: "saleEndsAt", message }]);
    }
  }
  const schedule = {
    startsAt: input.startsAt ? new Date(input.startsAt) : event.startsAt,
    endsAt: input.endsAt === undefined ? event.endsAt : input.endsAt === null ? null : new Date(input.endsAt),
    saleStartsAt: input.saleStartsAt ? new Date(input.saleStartsAt) : event.saleStartsAt,
    saleEndsAt: input.saleEndsAt === undefined ? event.saleEndsAt : input.saleEndsAt === null ? null : new Date(input.saleEndsAt),
  };
  checkSchedule(schedule);
  if (input.prices) checkPrices(input.prices, await venuePriceTiers(db, event.venueId));
  const expectedDemand = input.expectedDemand ?? event.expectedDemand;
  const demandClass = input.demandClass ?? (input.expectedDemand === undefined ? event.demandClass : classifyDemand(expectedDemand, current.capacity, ratio));
  const { prices, ...fields } = input;
  await db.transaction(async (tx) => {
    await tx
      .update(events)
      .set({ ...fields, ...schedule, expectedDemand, demandClass, updatedAt: now })
      .where(eq(events.id, eventId));
    if (prices) {
      await tx.delete(eventPriceTiers).where(eq(eventPriceTiers.eventId, eventId));
      await tx.insert(eventPriceTiers).values(prices.map((p) => ({ eventId, ...p })));
    }
  });
  return getEvent(db, { organizerId, eventId }, now);
}
