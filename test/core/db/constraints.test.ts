/**
 * The database's own guarantees against double selling, proven through the
 * production driver (drizzle over the Neon serverless driver): whatever the
 * application does, Postgres refuses the second sale.
 */
import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../../core/db/client";
import { accounts, eventGaSections, eventSeats, holds, orders, payments, sections, tickets } from "../../../core/db/schema";
import { createEvent } from "../../../workers/events/events";
import { createOrganizer } from "../../../workers/organizers/api-keys";
import { importVenue } from "../../../workers/venues/venues";
import { uniqueName, withDb } from "../../fixtures/db";

/** The SQLSTATE and constraint of the Postgres error behind a failed query; fails if the query succeeds. */
async function refusal(query: PromiseLike<unknown>): Promise<{ code: string; constraint: string | undefined }> {
  try {
    await query;
  } catch (error) {
    for (let cause: unknown = error; typeof cause === "object" && cause !== null; cause = "cause" in cause ? cause.cause : undefined) {
      if ("code" in cause && typeof cause.code === "string" && /^[0-9A-Z]{5}$/.test(cause.code)) {
        return { code: cause.code, constraint: "constraint" in cause && typeof cause.constraint === "string" ? cause.constraint : undefined };
      }
    }
    throw error;
  }
  throw new Error("the database accepted a row it should have refused");
}

const UNIQUE_VIOLATION = "23505";
const CHECK_VIOLATION = "23514";

/**
 * The minimal rows a sale needs: an organizer's venue (4 seats in row A, a
 * general-admission area of 3), an event there, a fan, a hold and its order.
 */
async function seedSale(db: Db) {
  const { organizerId } = await createOrganizer(db, uniqueName("Constraints"));
  const venue = await importVenue(db, organizerId, {
    name: uniqueName("Club"),
    sections: [
      { label: "A", priceTier: "seated", rows: [{ label: "1", seats: 4 }] },
      { label: "GA", priceTier: "floor", generalAdmission: { capacity: 3 } },
    ],
  });
  const eventInput = {
    venueId: venue.id,
    name: uniqueName("Show"),
    startsAt: new Date(Date.now() + 86_400_000).toISOString(),
    saleStartsAt: new Date(Date.now() - 3_600_000).toISOString(),
    prices: [
      { priceTier: "seated", priceCents: 5_000 },
      { priceTier: "floor", priceCents: 2_000 },
    ],
  };
  const event = await createEvent(db, organizerId, eventInput);
  const [seated, ga] = await Promise.all(
    ["A", "GA"].map(async (label) => {
      const [row] = await db.select({ id: sections.id }).from(sections).where(and(eq(sections.venueId, venue.id), eq(sections.label, label)));
      if (!row) throw new Error(`section ${label} was not imported`);
      return row.id;
    }),
  );
  if (!seated || !ga) throw new Error("sections were not imported");
  const [account] = await db.insert(accounts).values({ email: `${crypto.randomUUID()}@fans.test` }).returning({ id: accounts.id });
  if (!account) throw new Error("account insert returned nothing");
  const [hold] = await db
    .insert(holds)
    .values({ eventId: event.id, accountId: account.id, clientRequestId: crypto.randomUUID(), expiresAt: new Date(Date.now() + 600_000) })
    .returning({ id: holds.id });
  if (!hold) throw new Error("hold insert returned nothing");
  const [order] = await db
    .insert(orders)
    .values({ eventId: event.id, accountId: account.id, holdId: hold.id, totalCents: 5_000, currency: "USD" })
    .returning({ id: orders.id });
  if (!order) throw new Error("order insert returned nothing");
  const ticket = (seatIndex: number | null, status: "valid" | "checked_in" | "void" = "valid", eventId = event.id) => ({
    orderId: order.id,
    eventId,
    accountId: account.id,
    seatIndex,
    sectionId: seatIndex === null ? ga : seated,
    priceCents: seatIndex === null ? 2_000 : 5_000,
    status,
  });
  return { organizerId, venue, event, eventInput, sections: { seated, ga }, accountId: account.id, holdId: hold.id, orderId: order.id, ticket };
}

describe("tickets_one_live_per_seat", () => {
  it("refuses a second live ticket for the same event seat, and allows one once the first is void", async () => {
    await withDb(async (db) => {
      const sale = await seedSale(db);
      const [first] = await db.insert(tickets).values(sale.ticket(2)).returning({ id: tickets.id });
      if (!first) throw new Error("ticket insert returned nothing");

      for (const status of ["valid", "checked_in"] as const) {
        expect(await refusal(db.insert(tickets).values(sale.ticket(2, status)))).toEqual({ code: UNIQUE_VIOLATION, constraint: "tickets_one_live_per_seat" });
      }
      // Other seats, and void tickets for the taken seat, are fine.
      await db.insert(tickets).values([sale.ticket(3), sale.ticket(2, "void")]);

      await db.update(tickets).set({ status: "void" }).where(eq(tickets.id, first.id));
      const [second] = await db.insert(tickets).values(sale.ticket(2)).returning({ id: tickets.id });
      expect(second).toBeDefined();
      // The new ticket is now the live one: a third is refused again.
      expect(await refusal(db.insert(tickets).values(sale.ticket(2)))).toEqual({ code: UNIQUE_VIOLATION, constraint: "tickets_one_live_per_seat" });
      // Reviving the void ticket would make two live tickets: refused too.
      expect(await refusal(db.update(tickets).set({ status: "valid" }).where(eq(tickets.id, first.id)))).toEqual({
        code: UNIQUE_VIOLATION,
        constraint: "tickets_one_live_per_seat",
      });

      const live = await db.$count(tickets, and(eq(tickets.eventId, sale.event.id), eq(tickets.seatIndex, 2), sql`${tickets.status} <> 'void'`));
      expect(live).toBe(1);
    });
  });

  it("scopes the seat to its event and leaves general-admission tickets unconstrained", async () => {
    await withDb(async (db) => {
      const sale = await seedSale(db);
      const otherEvent = await createEvent(db, sale.organizerId, { ...sale.eventInput, name: uniqueName("Matinee") });
      await db.insert(tickets).values([sale.ticket(0), sale.ticket(0, "valid", otherEvent.id), sale.ticket(null), sale.ticket(null), sale.ticket(null)]);
      expect(await db.$count(tickets, eq(tickets.orderId, sale.orderId))).toBe(5);
    });
  });
});

describe("one order per hold", () => {
  it("refuses a second order for the same hold", async () => {
    await withDb(async (db) => {
      const sale = await seedSale(db);
      const again = db.insert(orders).values({ eventId: sale.event.id, accountId: sale.accountId, holdId: sale.holdId, totalCents: 1, currency: "USD" });
      expect(await refusal(again)).toEqual({ code: UNIQUE_VIOLATION, constraint: "orders_hold_key" });
      expect(await db.$count(orders, eq(orders.holdId, sale.holdId))).toBe(1);
    });
  });
});

describe("general-admission counters", () => {
  it("refuse to sell above capacity or below zero", async () => {
    await withDb(async (db) => {
      const sale = await seedSale(db);
      const counter = and(eq(eventGaSections.eventId, sale.event.id), eq(eventGaSections.sectionId, sale.sections.ga));
      const sellOne = () => db.update(eventGaSections).set({ sold: sql`${eventGaSections.sold} + 1` }).where(counter);

      for (let i = 0; i < 3; i++) await sellOne();
      expect(await refusal(sellOne())).toEqual({ code: CHECK_VIOLATION, constraint: "event_ga_sections_sold_range" });
      expect(await refusal(db.update(eventGaSections).set({ sold: 1_000 }).where(counter))).toEqual({ code: CHECK_VIOLATION, constraint: "event_ga_sections_sold_range" });
      expect(await refusal(db.update(eventGaSections).set({ sold: -1 }).where(counter))).toEqual({ code: CHECK_VIOLATION, constraint: "event_ga_sections_sold_range" });

      const [row] = await db.select({ sold: eventGaSections.sold, capacity: eventGaSections.capacity }).from(eventGaSections).where(counter);
      expect(row).toEqual({ sold: 3, capacity: 3 });
    });
  });
});

describe("payments", () => {
  it("refuse a second payment with the same idempotency key", async () => {
    await withDb(async (db) => {
      const sale = await seedSale(db);
      const payment = (idempotencyKey: string) => ({
        holdId: sale.holdId,
        eventId: sale.event.id,
        accountId: sale.accountId,
        idempotencyKey,
        amountCents: 5_000,
        currency: "USD",
      });
      const key = `hold_${sale.holdId}_1`;
      await db.insert(payments).values(payment(key));
      expect(await refusal(db.insert(payments).values({ ...payment(key), attempt: 2 }))).toEqual({ code: UNIQUE_VIOLATION, constraint: "payments_idempotency_key" });
      await db.insert(payments).values({ ...payment(`hold_${sale.holdId}_2`), attempt: 2 });
      expect(await db.$count(payments, eq(payments.holdId, sale.holdId))).toBe(2);
    });
  });
});

describe("event seats", () => {
  it("refuse a held seat without a hold and expiry", async () => {
    await withDb(async (db) => {
      const sale = await seedSale(db);
      const seat = and(eq(eventSeats.eventId, sale.event.id), eq(eventSeats.seatIndex, 1));
      expect(await refusal(db.update(eventSeats).set({ status: "held" }).where(seat))).toEqual({ code: CHECK_VIOLATION, constraint: "event_seats_held_has_hold" });
      await db.update(eventSeats).set({ status: "held", holdId: sale.holdId, heldUntil: new Date(Date.now() + 600_000) }).where(seat);
      const [row] = await db.select({ status: eventSeats.status, holdId: eventSeats.holdId }).from(eventSeats).where(seat);
      expect(row).toEqual({ status: "held", holdId: sale.holdId });
    });
  });
});
