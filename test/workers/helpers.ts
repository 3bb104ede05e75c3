/** Shared helpers for the Worker's tests: a db handle, organizers with keys, admin requests and seating charts. */
import { env, SELF } from "cloudflare:test";
import { count, eq } from "drizzle-orm";
import { expect } from "vitest";
import { z } from "zod";
import { loadConfig } from "../../core/config";
import { createDb, type Db } from "../../core/db/client";
import { seatRows, seats, sections, venues } from "../../core/db/schema";
import { createOrganizer } from "../../workers/organizers/api-keys";
import type { SeatingChart } from "../../workers/venues/seating-chart";

/** Where the Worker under test answers. */
export const ORIGIN = "https://tickets.test";

/** Opens a db handle on the test Postgres (through the Neon driver and relay); close it when done. */
export function openDb(): { db: Db; close: () => Promise<void> } {
  return createDb(loadConfig(env));
}

/** Runs `work` with a fresh db handle and always closes it. */
export async function withDb<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const { db, close } = openDb();
  try {
    return await work(db);
  } finally {
    await close();
  }
}

/** A unique name, so tests sharing one database never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix} ${crypto.randomUUID().slice(0, 8)}`;
}

/** A new organizer with its first API key. */
export async function newOrganizer(prefix = "Organizer"): Promise<{ organizerId: string; apiKey: string; name: string }> {
  const name = uniqueName(prefix);
  const { organizerId, apiKey } = await withDb((db) => createOrganizer(db, name));
  return { organizerId, apiKey, name };
}

/** A response read in full: status, headers, raw text and the parsed JSON (undefined if not JSON). */
export interface ReadResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

async function read(response: Response): Promise<ReadResponse> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A raw request to the Worker, for bodies and headers the JSON helper would not send. */
export async function rawRequest(path: string, init: RequestInit = {}): Promise<ReadResponse> {
  return read(await SELF.fetch(`${ORIGIN}${path}`, init));
}

/** An admin API call with a bearer key and an optional JSON body. */
export async function adminRequest(apiKey: string, method: string, path: string, body?: unknown): Promise<ReadResponse> {
  const headers: Record<string, string> = { Authorization: `Bearer ${apiKey}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return rawRequest(`/admin${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** The documented error body (`errorSchema` in workers/routes/openapi.ts), strict at every level so nothing extra leaks. */
export const errorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.string(),
    message: z.string(),
    details: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
  }),
});

/** An error response body. */
export type ErrorBody = z.infer<typeof errorBodySchema>;

/**
 * Asserts an error response: the status, our `{ error: { code, message } }`
 * shape, and no stack trace or internals leaking into the body.
 */
export function expectApiError(response: ReadResponse, status: number, code: string): ErrorBody {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  const body = errorBodySchema.parse(response.json);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(response.text).not.toMatch(/\n\s+at |"stack"|node_modules|\.ts:\d+/);
  return body;
}

/** Asserts a 400 from validation, with per-field details naming `path` (when given). */
export function expectInvalid(response: ReadResponse, path?: string): ErrorBody {
  const body = expectApiError(response, 400, "invalid_request");
  expect(body.error.details, response.text).toBeDefined();
  if (path !== undefined) expect(body.error.details?.map((d) => d.path), response.text).toContain(path);
  return body;
}

/** What `GET /admin/venues/:id` returns, checked strictly so a changed shape fails the tests. */
export const venueViewSchema = z.strictObject({
  id: z.uuid(),
  name: z.string(),
  city: z.string().nullable(),
  timezone: z.string(),
  capacity: z.number().int(),
  seatCount: z.number().int(),
  createdAt: z.iso.datetime(),
  priceTiers: z.array(z.string()),
  sections: z.array(
    z.strictObject({
      id: z.uuid(),
      label: z.string(),
      name: z.string(),
      kind: z.enum(["seated", "general_admission"]),
      priceTier: z.string().nullable(),
      capacity: z.number().int(),
      rows: z.array(z.strictObject({ label: z.string(), priceTier: z.string(), seats: z.number().int() })),
    }),
  ),
});

/** A venue as the admin API shows it. */
export type VenueView = z.infer<typeof venueViewSchema>;

/** Creates a venue through the admin API and returns it; fails the test unless it is a 201. */
export async function createVenue(apiKey: string, chart: unknown): Promise<VenueView> {
  const response = await adminRequest(apiKey, "POST", "/venues", chart);
  expect(response.status, response.text).toBe(201);
  return venueViewSchema.parse(response.json);
}

/** How many venues, sections, rows and seats an organizer has in Postgres. */
export async function countVenueRows(db: Db, organizerId: string): Promise<{ venues: number; sections: number; rows: number; seats: number }> {
  const [venueCount, sectionCount, rowCount, seatCount] = await Promise.all([
    db.$count(venues, eq(venues.organizerId, organizerId)),
    db
      .select({ n: count() })
      .from(sections)
      .innerJoin(venues, eq(venues.id, sections.venueId))
      .where(eq(venues.organizerId, organizerId)),
    db
      .select({ n: count() })
      .from(seatRows)
      .innerJoin(sections, eq(sections.id, seatRows.sectionId))
      .innerJoin(venues, eq(venues.id, sections.venueId))
      .where(eq(venues.organizerId, organizerId)),
    db
      .select({ n: count() })
      .from(seats)
      .innerJoin(venues, eq(venues.id, seats.venueId))
      .where(eq(venues.organizerId, organizerId)),
  ]);
  return { venues: venueCount, sections: sectionCount[0]?.n ?? 0, rows: rowCount[0]?.n ?? 0, seats: seatCount[0]?.n ?? 0 };
}

/** Seats and general-admission places a chart describes. */
export function chartTotals(chart: SeatingChart): { seatCount: number; capacity: number; rowCount: number } {
  let seatCount = 0;
  let gaPlaces = 0;
  let rowCount = 0;
  for (const section of chart.sections) {
    gaPlaces += section.generalAdmission?.capacity ?? 0;
    for (const row of section.rows ?? []) {
      rowCount += 1;
      seatCount += Array.isArray(row.seats) ? row.seats.length : row.seats;
    }
  }
  return { seatCount, capacity: seatCount + gaPlaces, rowCount };
}

/**
 * A stadium: `sections` seated sections of `rows` rows with `seatsPerRow`
 * seats each, alternating "lower" and "upper" price tiers.
 */
export function stadiumChart(options: { sections: number; rows: number; seatsPerRow: number; name?: string }): SeatingChart {
  return {
    name: options.name ?? uniqueName("Stadium"),
    city: "Springfield",
    timezone: "America/Chicago",
    sections: Array.from({ length: options.sections }, (_, s) => ({
      label: `S${s + 1}`,
      priceTier: s % 2 === 0 ? "lower" : "upper",
      rows: Array.from({ length: options.rows }, (_, r) => ({ label: `R${r + 1}`, seats: options.seatsPerRow })),
    })),
  };
}

/**
 * A small theatre with every chart feature: an orchestra whose front row is
 * priced "premium" over the section's "orchestra", a balcony with explicit
 * seat labels, and a general-admission standing area: 19 + 5 seats and 20 standing places.
 */
export function theatreChart(name = uniqueName("Theatre")): SeatingChart {
  return {
    name,
    city: "Lyon",
    timezone: "Europe/Paris",
    sections: [
      {
        label: "ORCH",
        name: "Orchestra",
        priceTier: "orchestra",
        rows: [
          { label: "A", priceTier: "premium", seats: 4 },
          { label: "B", seats: 6 },
          { label: "C", seats: ["101", "102", "103", "104", "105", "106", "107", "108", "109"] },
        ],
      },
      { label: "BALC", name: "Balcony", rows: [{ label: "1", priceTier: "balcony", seats: ["1A", "1B", "2", "3", "4"] }] },
      { label: "PIT", name: "Standing pit", priceTier: "standing", generalAdmission: { capacity: 20 } },
    ],
  };
}
