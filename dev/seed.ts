/**
 * Demo data for the local stack, written through the app's own functions
 * (createOrganizer, importVenue, createEvent) so it is exactly what the admin
 * API would have created. Idempotent: things are found by name within the demo
 * organizer, and only what is missing is created.
 *
 * `npm run db:seed` seeds DATABASE_URL (through NEON_WS_PROXY when set), or
 * starts the local stack, seeds it and stops it again.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import { and, asc, eq } from "drizzle-orm";
import { WebSocket } from "ws";
import { createDb, type Db } from "../core/db/client.ts";
import { events, organizers, venues } from "../core/db/schema.ts";
import { createEvent } from "../workers/events/events.ts";
import { addApiKey, createOrganizer, organizerForApiKey } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema, type SeatingChart } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import { isMain, runMain } from "./cli.ts";
import { startNeonRelay } from "./neon-relay.ts";

/** The demo organizer's name: the seed finds everything else under it. */
export const DEMO_ORGANIZER = "Demo Promotions";

const DAY_MS = 24 * 60 * 60 * 1000;

/** What `createEvent` is given, as the admin API's body is. */
type EventInput = Parameters<typeof createEvent>[2];

/** What a seed run produced. */
export interface SeedResult {
  organizerId: string;
  /** The demo organizer's API key, in clear (also kept in the key file). */
  apiKey: string;
  /** What this run created, e.g. `venue "Riverside Theatre"`; empty when everything was there. */
  created: string[];
}

/**
 * Makes sure the demo organizer, its two venues and their events exist.
 * `apiKeyFile` keeps the organizer's API key in clear across runs (keys are
 * stored hashed); when it is missing or stale a new key is added.
 */
export async function seedDemoData(db: Db, options: { apiKeyFile: string; now?: Date }): Promise<SeedResult> {
  const created: string[] = [];
  const { organizerId, apiKey } = await ensureOrganizer(db, options.apiKeyFile, created);
  for (const { chart, event } of demoSales(options.now ?? new Date())) {
    const venueId = await ensureVenue(db, organizerId, chart, created);
    await ensureEvent(db, organizerId, created, { venueId, ...event });
  }
  return { organizerId, apiKey, created };
}

/** The demo venues, each with its event: a calm sale, on now, and a hot one, later. */
function demoSales(now: Date): { chart: SeatingChart; event: Omit<EventInput, "venueId"> }[] {
  return [
    {
      chart: theatreChart(),
      event: {
        name: "The Tempest - Riverside Players",
        description: "Shakespeare's last play in a new staging. A calm sale: the seat map is open to everyone.",
        ...schedule(now, { inDays: 45, hours: [19, 22], saleInDays: -1 }),
        expectedDemand: 900,
        status: "published",
        prices: pricesOf({ "Stalls Premium": 8_500, Stalls: 6_500, Circle: 5_000, Balcony: 3_000 }),
      },
    },
    {
      chart: stadiumChart(),
      event: {
        name: "Nova Skyline - World Tour 2027",
        description: "One night only. A hot on-sale: fans queue in the waiting room before the sale opens.",
        ...schedule(now, { inDays: 120, hours: [20, 23], saleInDays: 14 }),
        lobbyOpensMinutes: 60,
        purchaseLimit: 4,
        expectedDemand: 500_000,
        status: "published",
        prices: pricesOf({ Pit: 24_900, Floor: 19_900, Club: 17_500, "Lower Bowl Premium": 14_900, "Lower Bowl": 11_900, "Upper Deck": 6_900 }),
      },
    },
  ];
}

/** An event `inDays` from now, from `hours[0]`:00 to `hours[1]`:00 UTC, on sale at 10:00 UTC `saleInDays` from now. */
function schedule(now: Date, { inDays, hours, saleInDays }: { inDays: number; hours: [number, number]; saleInDays: number }): Pick<EventInput, "startsAt" | "endsAt" | "saleStartsAt"> {
  return { startsAt: at(now, inDays * DAY_MS, hours[0]), endsAt: at(now, inDays * DAY_MS, hours[1]), saleStartsAt: at(now, saleInDays * DAY_MS, 10) };
}

/** Price tier name → price in cents, as an event's price list. */
export function pricesOf(prices: Record<string, number>): EventInput["prices"] {
  return Object.entries(prices).map(([priceTier, priceCents]) => ({ priceTier, priceCents }));
}

async function ensureOrganizer(db: Db, apiKeyFile: string, created: string[]): Promise<{ organizerId: string; apiKey: string }> {
  const [existing] = await db.select({ id: organizers.id }).from(organizers).where(eq(organizers.name, DEMO_ORGANIZER)).orderBy(asc(organizers.createdAt)).limit(1);
  if (!existing) {
    const { organizerId, apiKey } = await createOrganizer(db, DEMO_ORGANIZER);
    await saveApiKey(apiKeyFile, apiKey);
    created.push(`organizer "${DEMO_ORGANIZER}"`);
    return { organizerId, apiKey };
  }
  const saved = (await readFile(apiKeyFile, "utf8").catch(() => "")).trim();
  const owner = saved ? await organizerForApiKey(db, saved) : undefined;
  if (owner?.id === existing.id) return { organizerId: existing.id, apiKey: saved };
  const { apiKey } = await addApiKey(db, existing.id, "demo key (npm run dev)");
  await saveApiKey(apiKeyFile, apiKey);
  created.push(`API key for "${DEMO_ORGANIZER}"`);
  return { organizerId: existing.id, apiKey };
}

async function saveApiKey(file: string, apiKey: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${apiKey}\n`, { mode: 0o600 });
}

async function ensureVenue(db: Db, organizerId: string, chart: SeatingChart, created: string[]): Promise<string> {
  const [existing] = await db.select({ id: venues.id }).from(venues).where(and(eq(venues.organizerId, organizerId), eq(venues.name, chart.name))).limit(1);
  if (existing) return existing.id;
  const venue = await importVenue(db, organizerId, seatingChartSchema.parse(chart));
  created.push(`venue "${venue.name}" (${venue.seatCount.toLocaleString("en-US")} seats)`);
  return venue.id;
}

async function ensureEvent(db: Db, organizerId: string, created: string[], input: EventInput): Promise<void> {
  const [existing] = await db.select({ id: events.id }).from(events).where(and(eq(events.organizerId, organizerId), eq(events.name, input.name))).limit(1);
  if (existing) return;
  const event = await createEvent(db, organizerId, input);
  created.push(`event "${event.name}" (${event.demandClass}, sale ${event.saleState})`);
}

/** An ISO time `offsetMs` from now, at `hour`:00 UTC that day. */
function at(now: Date, offsetMs: number, hour: number): string {
  const day = new Date(now.getTime() + offsetMs);
  day.setUTCHours(hour, 0, 0, 0);
  return day.toISOString();
}

/** Row labels A, B, C, ... */
function letters(count: number): string[] {
  return Array.from({ length: count }, (_, i) => String.fromCharCode(65 + i));
}

/** A 500-seat theatre: Stalls (premium front rows), Circle and Balcony. */
export function theatreChart(): SeatingChart {
  return {
    name: "Riverside Theatre",
    city: "Portland",
    timezone: "America/Los_Angeles",
    sections: [
      {
        label: "Stalls",
        rows: letters(12).map((row, i) => ({ label: row, seats: 20, priceTier: i < 6 ? "Stalls Premium" : "Stalls" })),
      },
      { label: "Circle", priceTier: "Circle", rows: letters(8).map((row) => ({ label: row, seats: 20 })) },
      { label: "Balcony", priceTier: "Balcony", rows: letters(5).map((row) => ({ label: row, seats: 20 })) },
    ],
  };
}

/** How a stadium is laid out: a block of sections per kind, each `sections` sections of `rows` rows of `seats` seats. */
export interface StadiumShape {
  name: string;
  /** Places in the standing pit; none when absent. */
  pit?: number;
  floor: SectionBlock;
  /** The first 10 rows of each section are premium. */
  lowerBowl: SectionBlock;
  club: SectionBlock;
  upperDeck: SectionBlock;
}

interface SectionBlock {
  sections: number;
  rows: number;
  seats: number;
}

/** Harbor Stadium: 70,000 seats in 40 sections, plus a 2,000-place standing pit. */
const HARBOR_STADIUM: StadiumShape = {
  name: "Harbor Stadium",
  pit: 2_000,
  floor: { sections: 4, rows: 20, seats: 50 }, // 4,000
  lowerBowl: { sections: 16, rows: 30, seats: 60 }, // 28,800
  club: { sections: 4, rows: 20, seats: 40 }, // 3,200
  upperDeck: { sections: 16, rows: 25, seats: 85 }, // 34,000
};

/**
 * A stadium in Seattle (by default the demo's Harbor Stadium): a standing pit,
 * seated Floor sections F1..., a Lower Bowl 101... whose front rows cost
 * more, Club boxes C1... and an Upper Deck 301....
 */
export function stadiumChart(shape: StadiumShape = HARBOR_STADIUM): SeatingChart {
  const numbered = (count: number, from = 1) => Array.from({ length: count }, (_, i) => String(from + i));
  const rows = ({ rows: count, seats }: SectionBlock, tierOf: (row: number) => string | undefined = () => undefined) =>
    numbered(count).map((label, i) => {
      const priceTier = tierOf(i);
      return priceTier ? { label, seats, priceTier } : { label, seats };
    });
  return {
    name: shape.name,
    city: "Seattle",
    timezone: "America/Los_Angeles",
    sections: [
      ...(shape.pit === undefined ? [] : [{ label: "PIT", name: "Standing Pit", priceTier: "Pit", generalAdmission: { capacity: shape.pit } }]),
      ...numbered(shape.floor.sections).map((n) => ({ label: `F${n}`, name: `Floor ${n}`, priceTier: "Floor", rows: rows(shape.floor) })),
      ...numbered(shape.lowerBowl.sections, 101).map((label) => ({
        label,
        name: `Lower Bowl ${label}`,
        rows: rows(shape.lowerBowl, (row) => (row < 10 ? "Lower Bowl Premium" : "Lower Bowl")),
      })),
      ...numbered(shape.club.sections).map((n) => ({ label: `C${n}`, name: `Club ${n}`, priceTier: "Club", rows: rows(shape.club) })),
      ...numbered(shape.upperDeck.sections, 301).map((label) => ({ label, name: `Upper Deck ${label}`, priceTier: "Upper Deck", rows: rows(shape.upperDeck) })),
    ],
  };
}

/**
 * A drizzle `Db` for Node, made by the Worker's own factory so it has the same
 * type and driver. Through `neonWsProxy` when given; straight to Neon for
 * `*.neon.tech`; otherwise (a plain Postgres) through a relay started for the
 * lifetime of the handle.
 */
export async function openDb(databaseUrl: string, neonWsProxy?: string): Promise<{ db: Db; close(): Promise<void> }> {
  neonConfig.webSocketConstructor = WebSocket;
  if (neonWsProxy || new URL(databaseUrl).hostname.endsWith(".neon.tech")) {
    const { db, close } = createDb({ databaseUrl, neonWsProxy });
    return { db, close };
  }
  const host = new URL(databaseUrl).hostname.replace(/^\[(.*)\]$/, "$1");
  const relay = await startNeonRelay({ port: 0, allowedHosts: [host] });
  const { db, close } = createDb({ databaseUrl, neonWsProxy: `127.0.0.1:${relay.port}` });
  return {
    db,
    async close() {
      await close();
      await relay.close();
    },
  };
}

/** Prints what a seed run did. */
export function describeSeed(result: SeedResult): string {
  return result.created.length === 0 ? "demo data already present" : `seeded ${result.created.join(", ")}`;
}

async function main(): Promise<void> {
  // Imported here, not at the top: other scripts import this module and should not start a stack.
  const { DEFAULT_DATA_DIR, startLocalStack } = await import("./stack.ts");
  const apiKeyFile = path.join(DEFAULT_DATA_DIR, "demo-api-key");
  const databaseUrl = process.env.DATABASE_URL;
  const stack = databaseUrl ? undefined : await startLocalStack();
  const target = stack ?? { databaseUrl: databaseUrl ?? "", neonWsProxy: process.env.NEON_WS_PROXY || undefined };
  const handle = await openDb(target.databaseUrl, target.neonWsProxy);
  try {
    const result = await seedDemoData(handle.db, { apiKeyFile });
    process.stdout.write(`${describeSeed(result)}\n${DEMO_ORGANIZER} API key: ${result.apiKey} (kept in ${apiKeyFile})\n`);
  } finally {
    await handle.close();
    await stack?.stop();
  }
}

if (isMain(import.meta.url)) runMain("db:seed", main);
