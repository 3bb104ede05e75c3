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
import { fileURLToPath } from "node:url";
import { neonConfig } from "@neondatabase/serverless";
import { and, asc, eq } from "drizzle-orm";
import { WebSocket } from "ws";
import { createDb, type Db } from "../core/db/client.ts";
import { events, organizers, venues } from "../core/db/schema.ts";
import { createEvent } from "../workers/events/events.ts";
import { addApiKey, createOrganizer, organizerForApiKey } from "../workers/organizers/api-keys.ts";
import { seatingChartSchema, type SeatingChart } from "../workers/venues/seating-chart.ts";
import { importVenue } from "../workers/venues/venues.ts";
import { startNeonRelay } from "./neon-relay.ts";

/** The demo organizer's name: the seed finds everything else under it. */
export const DEMO_ORGANIZER = "Demo Promotions";

const DAY_MS = 24 * 60 * 60 * 1000;

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
  const now = options.now ?? new Date();
  const created: string[] = [];
  const { organizerId, apiKey } = await ensureOrganizer(db, options.apiKeyFile, created);

  const theatre = await ensureVenue(db, organizerId, theatreChart(), created);
  await ensureEvent(db, organizerId, created, {
    venueId: theatre,
    name: "The Tempest - Riverside Players",
    description: "Shakespeare's last play in a new staging. A calm sale: the seat map is open to everyone.",
    startsAt: at(now, 45 * DAY_MS, 19),
    endsAt: at(now, 45 * DAY_MS, 22),
    saleStartsAt: at(now, -DAY_MS, 10),
    expectedDemand: 900,
    status: "published",
    prices: [
      { priceTier: "Stalls Premium", priceCents: 8_500 },
      { priceTier: "Stalls", priceCents: 6_500 },
      { priceTier: "Circle", priceCents: 5_000 },
      { priceTier: "Balcony", priceCents: 3_000 },
    ],
  });

  const stadium = await ensureVenue(db, organizerId, stadiumChart(), created);
  await ensureEvent(db, organizerId, created, {
    venueId: stadium,
    name: "Nova Skyline - World Tour 2027",
    description: "One night only. A hot on-sale: fans queue in the waiting room before the sale opens.",
    startsAt: at(now, 120 * DAY_MS, 20),
    endsAt: at(now, 120 * DAY_MS, 23),
    saleStartsAt: at(now, 14 * DAY_MS, 10),
    lobbyOpensMinutes: 60,
    purchaseLimit: 4,
    expectedDemand: 500_000,
    status: "published",
    prices: [
      { priceTier: "Pit", priceCents: 24_900 },
      { priceTier: "Floor", priceCents: 19_900 },
      { priceTier: "Club", priceCents: 17_500 },
      { priceTier: "Lower Bowl Premium", priceCents: 14_900 },
      { priceTier: "Lower Bowl", priceCents: 11_900 },
      { priceTier: "Upper Deck", priceCents: 6_900 },
    ],
  });

  return { organizerId, apiKey, created };
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

async function ensureEvent(db: Db, organizerId: string, created: string[], input: Parameters<typeof createEvent>[2]): Promise<void> {
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

/**
 * A 70,000-seat stadium in 40 seated sections, plus a 2,000-place standing pit:
 * seated Floor, a Lower Bowl whose front rows cost more, Club boxes and an Upper Deck.
 */
export function stadiumChart(): SeatingChart {
  const numberedRows = (count: number, seats: number, tierOf: (row: number) => string | undefined = () => undefined) =>
    Array.from({ length: count }, (_, i) => {
      const priceTier = tierOf(i);
      return priceTier ? { label: String(i + 1), seats, priceTier } : { label: String(i + 1), seats };
    });
  const sectionsNumbered = (from: number, count: number) => Array.from({ length: count }, (_, i) => String(from + i));
  return {
    name: "Harbor Stadium",
    city: "Seattle",
    timezone: "America/Los_Angeles",
    sections: [
      { label: "PIT", name: "Standing Pit", priceTier: "Pit", generalAdmission: { capacity: 2_000 } },
      // 4 x 20 rows x 50 = 4,000
      ...["F1", "F2", "F3", "F4"].map((label) => ({ label, name: `Floor ${label.slice(1)}`, priceTier: "Floor", rows: numberedRows(20, 50) })),
      // 16 x 30 rows x 60 = 28,800; the first 10 rows are premium
      ...sectionsNumbered(101, 16).map((label) => ({
        label,
        name: `Lower Bowl ${label}`,
        rows: numberedRows(30, 60, (row) => (row < 10 ? "Lower Bowl Premium" : "Lower Bowl")),
      })),
      // 4 x 20 rows x 40 = 3,200
      ...["C1", "C2", "C3", "C4"].map((label) => ({ label, name: `Club ${label.slice(1)}`, priceTier: "Club", rows: numberedRows(20, 40) })),
      // 16 x 25 rows x 85 = 34,000
      ...sectionsNumbered(301, 16).map((label) => ({ label, name: `Upper Deck ${label}`, priceTier: "Upper Deck", rows: numberedRows(25, 85) })),
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`db:seed failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
