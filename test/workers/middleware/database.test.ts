/**
 * The database middleware's bounded waits: a Postgres that stalls or refuses
 * answers 503 `database_unavailable` with Retry-After, not a request held open
 * for as long as the database is gone (the sellout's chaos run stopped
 * Postgres for 20 s and every request that needed it waited all of it).
 */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { withDb } from "../../fixtures/db";
import { eventBody, organizerWithTheatre, postEvent, strictEvent } from "../../fixtures/events";
import { adminRequest, appRequest, expectApiError } from "../../fixtures/http";

/** The wait under test: short, so that the test waits on the real timer for a moment only. */
const STALL_WAIT_MS = 400;

function patchName(apiKey: string, eventId: string, name: string, testEnv: Env) {
  return appRequest(
    `/admin/events/${eventId}`,
    { method: "PATCH", headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" }, body: JSON.stringify({ name }) },
    testEnv,
  );
}

describe("a stalled or unreachable Postgres", () => {
  it("answers 503 database_unavailable with Retry-After once a query waits longer than DATABASE_WAIT_MS, and the change is not made", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const event = await postEvent(apiKey, eventBody(venue.id));
    const stalled = { ...env, DATABASE_WAIT_MS: String(STALL_WAIT_MS) };
    // Another transaction holds the event's row: the update's query waits, as every query does on a stopped Postgres.
    const answer = await withDb((db) =>
      db.transaction(async (tx) => {
        await tx.execute(sql`SELECT id FROM events WHERE id = ${event.id} FOR UPDATE`);
        const startedAt = Date.now();
        const response = await patchName(apiKey, event.id, "Renamed while stalled", stalled);
        return { response, waitedMs: Date.now() - startedAt };
      }),
    );
    expectApiError(answer.response, 503, "database_unavailable");
    expect(answer.response.headers.get("Retry-After")).toBe("5");
    expect(answer.response.text).not.toMatch(/Query read timeout|at \w+ \(/);
    expect(answer.waitedMs).toBeGreaterThanOrEqual(STALL_WAIT_MS);
    // Its transaction never committed; with the database free again the same request goes through.
    expect(strictEvent.parse((await adminRequest(apiKey, "GET", `/events/${event.id}`)).json).name).toBe(event.name);
    const again = await patchName(apiKey, event.id, "Renamed", stalled);
    expect(again.status, again.text).toBe(200);
    expect(strictEvent.parse(again.json).name).toBe("Renamed");
  });

  it("answers 503 database_unavailable when Postgres refuses the connection", async () => {
    const { apiKey } = await organizerWithTheatre();
    const refused = await appRequest("/admin/events", { headers: { Authorization: `Bearer ${apiKey}` } }, { ...env, DATABASE_URL: "postgres://tickets:nothing@127.0.0.1:1/tickets" });
    expectApiError(refused, 503, "database_unavailable");
    expect(refused.headers.get("Retry-After")).toBe("5");
  });

  it("refuses a DATABASE_WAIT_MS out of range, naming it", async () => {
    const { loadConfig } = await import("../../../core/config");
    for (const value of ["0", "99", "60001", "1.5", "ten"]) expect(() => loadConfig({ ...env, DATABASE_WAIT_MS: value }), value).toThrow(/DATABASE_WAIT_MS/);
    expect(loadConfig({ ...env, DATABASE_WAIT_MS: "" }).databaseWaitMs).toBe(10_000);
    expect(loadConfig({ ...env, DATABASE_WAIT_MS: "2500" }).databaseWaitMs).toBe(2_500);
  });
});
