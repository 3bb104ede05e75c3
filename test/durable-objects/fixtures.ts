import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { loadConfig } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";
import { createEvent } from "../../workers/events/events";
import { createOrganizer } from "../../workers/organizers/api-keys";
import type { SeatingChart } from "../../workers/venues/seating-chart";
import { importVenue } from "../../workers/venues/venues";

/** Runs `fn` with a db handle on the test Postgres, closing it afterwards. */
export async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const { db, close } = createDb(loadConfig(env));
  try {
    return await fn(db);
  } finally {
    await close();
  }
}

/** A small chart: 2 seated sections (tiers A and B) of `rows` x `seatsPerRow`, plus a GA pit. */
export function smallChart(rows = 3, seatsPerRow = 6, gaCapacity = 10): SeatingChart {
  return {
    name: `Hall ${crypto.randomUUID()}`,
    sections: [
      { label: "A", priceTier: "A", rows: Array.from({ length: rows }, (_, r) => ({ label: String(r + 1), seats: seatsPerRow })) },
      { label: "B", priceTier: "B", rows: Array.from({ length: rows }, (_, r) => ({ label: String(r + 1), seats: seatsPerRow })) },
      { label: "PIT", priceTier: "GA", generalAdmission: { capacity: gaCapacity } },
    ],
  };
}

/** An event with its sale open now, at a fresh venue of a fresh organizer, plus `accounts` fan accounts. */
export async function openEvent(options: { chart?: SeatingChart; demandClass: "calm" | "hot"; purchaseLimit?: number; holdTtlSeconds?: number; accounts?: number }) {
  return withDb(async (db) => {
    const { organizerId } = await createOrganizer(db, `Org ${crypto.randomUUID()}`);
    const chart = options.chart ?? smallChart();
    const venue = await importVenue(db, organizerId, chart);
    const now = Date.now();
    const event = await createEvent(db, organizerId, {
      venueId: venue.id,
      name: "Show",
      startsAt: new Date(now + 30 * 86_400_000).toISOString(),
      saleStartsAt: new Date(now - 60_000).toISOString(),
      demandClass: options.demandClass,
      status: "published",
      purchaseLimit: options.purchaseLimit ?? 4,
      holdTtlSeconds: options.holdTtlSeconds ?? 600,
      prices: venue.priceTiers.map((priceTier, i) => ({ priceTier, priceCents: 1000 * (i + 1) })),
    });
    const accounts: string[] = [];
    const count = options.accounts ?? 4;
    if (count > 0) {
      const rows = await db.execute<{ id: string }>(sql`
        insert into accounts (email) select 'fan-' || gen_random_uuid() || '@example.test' from generate_series(1, ${count}) returning id`);
      accounts.push(...rows.rows.map((r) => r.id));
    }
    return { organizerId, venue, event, accounts };
  });
}
