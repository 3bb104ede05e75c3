import { and, asc, count, countDistinct, eq, isNull, max, min } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { organizerApiKeys, seatRows, seats, sections } from "../../../core/db/schema";
import { stadiumChart, theatreChart } from "../../fixtures/charts";
import { withDb } from "../../fixtures/db";
import { adminRequest, expectApiError, expectInvalid, rawRequest } from "../../fixtures/http";
import { newOrganizer } from "../../fixtures/seeding";
import { countVenueRows, createVenue, venueViewSchema } from "../../fixtures/venues";

const venueListSchema = z.strictObject({ venues: z.array(venueViewSchema.omit({ priceTiers: true, sections: true })) });

describe("POST /admin/venues", () => {
  it("imports a chart with seated rows, explicit seat labels, a row price override and general admission", async () => {
    const { apiKey } = await newOrganizer();
    const chart = theatreChart();
    const venue = await createVenue(apiKey, chart);

    expect(venue).toMatchObject({ name: chart.name, city: "Lyon", timezone: "Europe/Paris", seatCount: 24, capacity: 44 });
    expect(venue.priceTiers).toEqual(["balcony", "orchestra", "premium", "standing"]);
    expect(venue.sections.map(({ id: _id, ...section }) => section)).toEqual([
      {
        label: "ORCH",
        name: "Orchestra",
        kind: "seated",
        priceTier: "orchestra",
        capacity: 19,
        rows: [
          { label: "A", priceTier: "premium", seats: 4 },
          { label: "B", priceTier: "orchestra", seats: 6 },
          { label: "C", priceTier: "orchestra", seats: 9 },
        ],
      },
      { label: "BALC", name: "Balcony", kind: "seated", priceTier: null, capacity: 5, rows: [{ label: "1", priceTier: "balcony", seats: 5 }] },
      { label: "PIT", name: "Standing pit", kind: "general_admission", priceTier: "standing", capacity: 20, rows: [] },
    ]);

    const readBack = await adminRequest(apiKey, "GET", `/venues/${venue.id}`);
    expect(readBack.status).toBe(200);
    expect(readBack.headers.get("Cache-Control")).toBe("no-store");
    expect(venueViewSchema.parse(readBack.json)).toEqual(venue);
  });

  it("writes every seat to Postgres, numbered 0..n-1 in chart order and ranked best-first", async () => {
    const { apiKey } = await newOrganizer();
    const venue = await createVenue(apiKey, theatreChart());

    const stored = await withDb((db) =>
      db
        .select({ seatIndex: seats.seatIndex, label: seats.label, position: seats.position, bestRank: seats.bestRank, priceTier: seats.priceTier, row: seatRows.label, section: sections.label })
        .from(seats)
        .innerJoin(seatRows, eq(seatRows.id, seats.rowId))
        .innerJoin(sections, eq(sections.id, seats.sectionId))
        .where(eq(seats.venueId, venue.id))
        .orderBy(asc(seats.seatIndex)),
    );

    expect(stored.map((s) => s.seatIndex)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect([...stored.map((s) => s.bestRank)].sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(stored.map((s) => `${s.section}/${s.row}/${s.label}`)).toEqual([
      ...["1", "2", "3", "4"].map((l) => `ORCH/A/${l}`),
      ...["1", "2", "3", "4", "5", "6"].map((l) => `ORCH/B/${l}`),
      ...["101", "102", "103", "104", "105", "106", "107", "108", "109"].map((l) => `ORCH/C/${l}`),
      ...["1A", "1B", "2", "3", "4"].map((l) => `BALC/1/${l}`),
    ]);
    // Positions restart at 0 in every row.
    expect(stored.slice(0, 4).map((s) => s.position)).toEqual([0, 1, 2, 3]);
    expect(stored.slice(19).map((s) => s.position)).toEqual([0, 1, 2, 3, 4]);
    // The row override prices row A; the rest of the orchestra takes the section's tier.
    expect(new Set(stored.slice(0, 4).map((s) => s.priceTier))).toEqual(new Set(["premium"]));
    expect(new Set(stored.slice(4, 19).map((s) => s.priceTier))).toEqual(new Set(["orchestra"]));
    expect(new Set(stored.slice(19).map((s) => s.priceTier))).toEqual(new Set(["balcony"]));
    // Best available: front row first, middle seats first, ties broken left to right.
    expect(stored.slice(0, 4).map((s) => s.bestRank)).toEqual([2, 0, 1, 3]);
    // Earlier sections and rows rank ahead of later ones.
    const worstOfRowA = Math.max(...stored.slice(0, 4).map((s) => s.bestRank));
    const bestOfBalcony = Math.min(...stored.slice(19).map((s) => s.bestRank));
    expect(worstOfRowA).toBeLessThan(Math.min(...stored.slice(4, 10).map((s) => s.bestRank)));
    expect(bestOfBalcony).toBe(19);
  });

  it("imports a 70,000-seat stadium with exactly its seats in Postgres", async () => {
    const { apiKey } = await newOrganizer();
    const chart = stadiumChart({ sections: 24, rows: 35, seatsPerRow: 84 });
    const expectedSeats = 24 * 35 * 84;
    const venue = await createVenue(apiKey, chart);
    expect(venue.seatCount).toBe(expectedSeats);
    expect(venue.capacity).toBe(expectedSeats);
    expect(venue.sections).toHaveLength(24);
    expect(venue.sections.every((s) => s.capacity === 35 * 84 && s.rows.length === 35)).toBe(true);

    const [stats] = await withDb((db) =>
      db
        .select({
          seats: count(),
          distinctIndexes: countDistinct(seats.seatIndex),
          minIndex: min(seats.seatIndex),
          maxIndex: max(seats.seatIndex),
          distinctRanks: countDistinct(seats.bestRank),
          minRank: min(seats.bestRank),
          maxRank: max(seats.bestRank),
        })
        .from(seats)
        .where(eq(seats.venueId, venue.id)),
    );
    expect(stats).toEqual({
      seats: expectedSeats,
      distinctIndexes: expectedSeats,
      minIndex: 0,
      maxIndex: expectedSeats - 1,
      distinctRanks: expectedSeats,
      minRank: 0,
      maxRank: expectedSeats - 1,
    });
  });
});

describe("GET /admin/venues", () => {
  it("lists only the caller's venues, newest first", async () => {
    const { apiKey } = await newOrganizer();
    const other = await newOrganizer();
    const first = await createVenue(apiKey, theatreChart());
    const second = await createVenue(apiKey, stadiumChart({ sections: 2, rows: 3, seatsPerRow: 5 }));
    await createVenue(other.apiKey, theatreChart());

    const response = await adminRequest(apiKey, "GET", "/venues");
    expect(response.status).toBe(200);
    const { venues } = venueListSchema.parse(response.json);
    expect(venues.map((v) => v.id)).toEqual([second.id, first.id]);
    expect(venues[0]).toEqual({
      id: second.id,
      name: second.name,
      city: "Springfield",
      timezone: "America/Chicago",
      capacity: 30,
      seatCount: 30,
      createdAt: second.createdAt,
    });
  });
});

describe("bad venue input", () => {
  const withSections = (sectionList: unknown[]) => ({ name: "Bad", sections: sectionList });

  const invalidCharts: { name: string; chart: unknown; path: string }[] = [
    { name: "missing fields", chart: {}, path: "name" },
    { name: "missing sections", chart: { name: "No sections" }, path: "sections" },
    { name: "no sections at all", chart: withSections([]), path: "sections" },
    { name: "an unknown top-level field", chart: { ...theatreChart(), capacity: 10 }, path: "" },
    { name: "an unknown section field", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: 1 }], seats: 3 }]), path: "sections.0" },
    { name: "an unknown row field", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: 1, accessible: true }] }]), path: "sections.0.rows.0" },
    { name: "a duplicate section label", chart: withSections([...theatreChart().sections, { label: "ORCH", priceTier: "x", rows: [{ label: "Z", seats: 1 }] }]), path: "sections.3.label" },
    { name: "a duplicate row label", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: 2 }, { label: "1", seats: 3 }] }]), path: "sections.0.rows.1.label" },
    { name: "a duplicate seat label", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: ["7", "8", "7"] }] }]), path: "sections.0.rows.0.seats.2" },
    {
      name: "a section with both rows and generalAdmission",
      chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: 2 }], generalAdmission: { capacity: 10 } }]),
      path: "sections.0",
    },
    { name: "a section with neither rows nor generalAdmission", chart: withSections([{ label: "A", priceTier: "x" }]), path: "sections.0" },
    { name: "a row without any price tier", chart: withSections([{ label: "A", rows: [{ label: "1", seats: 2 }] }]), path: "sections.0.rows.0.priceTier" },
    { name: "a general-admission section without a price tier", chart: withSections([{ label: "GA", generalAdmission: { capacity: 10 } }]), path: "sections.0.priceTier" },
    { name: "a zero seat count", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: 0 }] }]), path: "sections.0.rows.0.seats" },
    { name: "a fractional seat count", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: 2.5 }] }]), path: "sections.0.rows.0.seats" },
    { name: "a seat count as a string", chart: withSections([{ label: "A", priceTier: "x", rows: [{ label: "1", seats: "12" }] }]), path: "sections.0.rows.0.seats" },
    { name: "a label with a slash", chart: withSections([{ label: "A/B", priceTier: "x", rows: [{ label: "1", seats: 1 }] }]), path: "sections.0.label" },
    {
      name: "more than 200,000 places",
      chart: { ...stadiumChart({ sections: 24, rows: 300, seatsPerRow: 28 }), name: "Too big" },
      path: "sections",
    },
    {
      name: "general admission above 200,000 places in total",
      chart: withSections([
        { label: "GA1", priceTier: "x", generalAdmission: { capacity: 150_000 } },
        { label: "GA2", priceTier: "x", generalAdmission: { capacity: 50_001 } },
      ]),
      path: "sections",
    },
  ];

  it.each(invalidCharts)("rejects $name with a 400 naming $path, writing nothing", async ({ chart, path }) => {
    const { apiKey, organizerId } = await newOrganizer();
    expectInvalid(await adminRequest(apiKey, "POST", "/venues", chart), path);
    expect(await withDb((db) => countVenueRows(db, organizerId))).toEqual({ venues: 0, sections: 0, rows: 0, seats: 0 });
  });

  it("rejects a body that is not JSON", async () => {
    const { apiKey, organizerId } = await newOrganizer();
    const headers = { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" };
    for (const body of ['{"name": "Half', "name=Arena", ""]) {
      expectApiError(await rawRequest("/admin/venues", { method: "POST", headers, body }), 400, "invalid_request");
    }
    expect(await withDb((db) => countVenueRows(db, organizerId))).toEqual({ venues: 0, sections: 0, rows: 0, seats: 0 });
  });

  it("refuses a body that is not declared as JSON with 415", async () => {
    const { apiKey, organizerId } = await newOrganizer();
    const body = JSON.stringify(theatreChart());
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
      const headers = { Authorization: `Bearer ${apiKey}`, "Content-Type": contentType };
      expectApiError(await rawRequest("/admin/venues", { method: "POST", headers, body }), 415, "unsupported_media_type");
    }
    // A body with no Content-Type at all is refused the same way, not guessed at.
    expectApiError(await rawRequest("/admin/venues", { method: "POST", headers: { Authorization: `Bearer ${apiKey}` }, body }), 415, "unsupported_media_type");
    expect(await withDb((db) => countVenueRows(db, organizerId))).toEqual({ venues: 0, sections: 0, rows: 0, seats: 0 });
  });

  it("rejects a malformed venue id with a 400", async () => {
    const { apiKey } = await newOrganizer();
    for (const id of ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", `${crypto.randomUUID()}x`]) {
      expectInvalid(await adminRequest(apiKey, "GET", `/venues/${id}`), "id");
    }
  });
});

describe("admin authentication", () => {
  it("answers 401 without a usable API key", async () => {
    const { apiKey } = await newOrganizer();
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: "" },
      { Authorization: "Bearer" },
      { Authorization: "Bearer garbage" },
      { Authorization: `Basic ${btoa("user:pass")}` },
      { Authorization: apiKey },
      { Authorization: `Bearer ${apiKey}x` },
      { Authorization: `Bearer etk_${"A".repeat(43)}` },
      { Authorization: `Bearer etk_${"A".repeat(200)}` },
      { Authorization: `Bearer ${apiKey.toUpperCase()}` },
    ];
    for (const headers of attempts) {
      expectApiError(await rawRequest("/admin/venues", { headers }), 401, "unauthorized");
      expectApiError(await rawRequest("/admin/venues", { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(theatreChart()) }), 401, "unauthorized");
    }
  });

  it("stops accepting a key once it is revoked", async () => {
    const { apiKey, organizerId } = await newOrganizer();
    const created = await adminRequest(apiKey, "POST", "/api-keys", { name: "ci", scope: "admin" });
    expect(created.status).toBe(201);
    const { id, apiKey: secondKey } = z.object({ id: z.uuid(), apiKey: z.string().startsWith("etk_") }).parse(created.json);

    const me = await adminRequest(secondKey, "GET", "/me");
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ id: organizerId });

    await withDb((db) => db.update(organizerApiKeys).set({ revokedAt: new Date() }).where(and(eq(organizerApiKeys.id, id), isNull(organizerApiKeys.revokedAt))));
    const body = expectApiError(await adminRequest(secondKey, "GET", "/venues"), 401, "unauthorized");
    expect(body.error.message).toMatch(/revoked/);
    // The organizer's first key is untouched.
    expect((await adminRequest(apiKey, "GET", "/venues")).status).toBe(200);
  });
});

describe("venues of another organizer", () => {
  it("are a 404 indistinguishable from a venue that does not exist", async () => {
    const owner = await newOrganizer();
    const stranger = await newOrganizer();
    const venue = await createVenue(owner.apiKey, theatreChart());

    const theirs = await adminRequest(stranger.apiKey, "GET", `/venues/${venue.id}`);
    const nobodys = await adminRequest(stranger.apiKey, "GET", `/venues/${crypto.randomUUID()}`);
    expectApiError(theirs, 404, "not_found");
    expectApiError(nobodys, 404, "not_found");
    expect(theirs.text).toBe(nobodys.text);
    expect(theirs.text).not.toContain(venue.id);

    const list = venueListSchema.parse((await adminRequest(stranger.apiKey, "GET", "/venues")).json);
    expect(list.venues).toEqual([]);
    // The owner still sees it.
    expect((await adminRequest(owner.apiKey, "GET", `/venues/${venue.id}`)).status).toBe(200);
  });
});
