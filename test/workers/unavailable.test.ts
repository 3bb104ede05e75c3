/**
 * What fans are told when a dependency, not their request and not our code,
 * fails (workers/app.ts): a 503 with Retry-After, never a 500.
 *
 * - The database middleware's bounded waits: a Postgres that stalls or
 *   refuses answers `database_unavailable`, not a request held open for as
 *   long as the database is gone (a stopped Postgres held every request that
 *   needed it for the whole stop).
 * - A Durable Object reset under the call (restarted, moved, its code
 *   updated) answers `temporarily_unavailable`; the fan's retry of the same
 *   request finds what the first one did.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { POSTGRES_UNREACHABLE } from "../../core/errors";
import { KeptDbTimeout } from "../../durable-objects/lib/kept-db";
import { forgetIsolateRouting } from "../../workers/events/routing";
import { DurableInventory } from "../../workers/holds/object-holds";
import { unavailable } from "../../workers/platform/unavailable";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { blockedBy, lockAccountRow, withDb } from "../fixtures/db";
import { eventBody, organizerWithTheatre, postEvent, strictEvent } from "../fixtures/events";
import { adminRequest, appRequest, callWorker, expectApiError } from "../fixtures/http";
import { inventoryOf, restartObject } from "../fixtures/objects";
import { openEvent } from "../fixtures/seeding";
import { holdToken } from "../fixtures/tokens";

/** The wait under test: short, so that the test waits on the real timer for a moment only. */
const STALL_WAIT_MS = 400;

function patchName(apiKey: string, eventId: string, name: string, testEnv: Env) {
  return appRequest(
    `/admin/events/${eventId}`,
    { method: "PATCH", headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" }, body: JSON.stringify({ name }) },
    testEnv,
  );
}

/** Waits, a query at a time (up to 15 s), until a statement waits on a lock `lockPid` holds. */
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
    const { loadConfig } = await import("../../core/config");
    for (const value of ["0", "99", "60001", "1.5", "ten"]) expect(() => loadConfig({ ...env, DATABASE_WAIT_MS: value }), value).toThrow(/DATABASE_WAIT_MS/);
    expect(loadConfig({ ...env, DATABASE_WAIT_MS: "" }).databaseWaitMs).toBe(10_000);
    expect(loadConfig({ ...env, DATABASE_WAIT_MS: "2500" }).databaseWaitMs).toBe(2_500);
  });
});

describe("a hot event's holds while Postgres refuses", () => {
  const refused = { ...env, DATABASE_URL: "postgres://tickets:nothing@127.0.0.1:1/tickets" };

  async function hotEventRoutedOnce() {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 2 });
    await inventoryOf(event.id).prepare(event.id);
    // One fan request routes the event while Postgres answers: the isolate and the data centre keep a copy.
    const warm = await appRequest(`/api/events/${event.id}/availability`);
    expect(warm.status, warm.text).toBe(200);
    return { eventId: event.id, accounts };
  }

  function holdBestThrough(testEnv: Env, eventId: string, token: string) {
    return appRequest(
      `/api/events/${eventId}/holds/best`,
      { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify({ requestId: crypto.randomUUID(), quantity: 2 }) },
      testEnv,
    );
  }

  it("are made in an isolate started during the outage, routed from the data centre's copy", async () => {
    const { eventId, accounts } = await hotEventRoutedOnce();
    forgetIsolateRouting(eventId);
    const answer = await holdBestThrough(refused, eventId, await holdToken("hot", accounts[0] ?? "", eventId));
    expect(answer.status, answer.text).toBe(201);
  });

  it("are made after the isolate's copy went stale, routed from it while Postgres does not answer", async () => {
    const { eventId, accounts } = await hotEventRoutedOnce();
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 10 * 60_000);
      const answer = await holdBestThrough(refused, eventId, await holdToken("hot", accounts[1] ?? "", eventId));
      expect(answer.status, answer.text).toBe(201);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("an inventory object reset under a fan's call", () => {
  it("answers 503 temporarily_unavailable with Retry-After: 1, and the retry of the same hold gets the one hold, not two", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 1 });
    const [accountId = ""] = accounts;
    await inventoryOf(event.id).prepare(event.id);
    const token = await holdToken("hot", accountId, event.id);
    const body = { requestId: crypto.randomUUID(), seats: [0, 1] };
    // The object answers a hold once Postgres has it: the send waits on this account's row (the hold's foreign key), and
    // the object is restarted meanwhile, as the platform restarts one.
    const first = await withDb((db) =>
      db.transaction(async (tx) => {
        const lockPid = await lockAccountRow(tx, accountId);
        const answer = callWorker("POST", `/api/events/${event.id}/holds`, { bearer: token, body });
        await blockedBy(tx, lockPid);
        await restartObject(inventoryOf(event.id));
        return answer;
      }),
    );
    expectApiError(first, 503, "temporarily_unavailable");
    expect(first.headers.get("Retry-After")).toBe("1");
    const again = await callWorker("POST", `/api/events/${event.id}/holds`, { bearer: token, body });
    expect(again.status, again.text).toBe(201);
    expect((await inventoryOf(event.id).accountHolds(accountId)).map((hold) => hold.holdId)).toEqual([z.object({ hold: z.object({ holdId: z.string() }) }).parse(again.json).hold.holdId]);
  });
});

describe("an inventory object the platform reports overloaded", () => {
  it("answers 503 overloaded with Retry-After: 5 (retrying at once adds to the overload), and no hold is made", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 1 });
    const [accountId = ""] = accounts;
    await inventoryOf(event.id).prepare(event.id);
    // workerd has no request limit per object to trip here: the call fails as the platform fails it, with its flags.
    const overloaded = Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true, retryable: false });
    const hold = vi.spyOn(DurableInventory.prototype, "hold").mockRejectedValue(overloaded);
    try {
      const answer = await callWorker("POST", `/api/events/${event.id}/holds`, { bearer: await holdToken("hot", accountId, event.id), body: { requestId: crypto.randomUUID(), seats: [0, 1] } });
      expectApiError(answer, 503, "overloaded");
      expect(answer.headers.get("Retry-After")).toBe("5");
      expect(answer.text).not.toContain("Too many requests queued");
      expect(hold).toHaveBeenCalledOnce();
    } finally {
      hold.mockRestore();
    }
    expect(await inventoryOf(event.id).accountHolds(accountId)).toEqual([]);
  });
});

describe("unavailable(), what the Worker answers 503", () => {
  it("knows an object's failure to reach Postgres by its message, as the Worker receives it from the object", async () => {
    const { event } = await openEvent({ demandClass: "hot", accounts: 1 });
    // A real error thrown in the object: what crosses to the Worker is its message (the inventory's confirm throws this way).
    const remote = await runInDurableObject(inventoryOf(event.id), () => {
      throw new Error(`${POSTGRES_UNREACHABLE}: the sale could not be recorded; confirm it again later`);
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(unavailable(remote)).toMatchObject({ code: "database_unavailable", retryAfterS: 5 });
    expect(unavailable(new KeptDbTimeout(20_000))).toMatchObject({ code: "database_unavailable" });
    expect(unavailable(new Error("wrapped", { cause: Object.assign(new Error("server closed the connection"), { code: "08006" }) }))).toMatchObject({ code: "database_unavailable" });
    expect(unavailable(Object.assign(new Error("too many requests"), { overloaded: true, retryable: true }))).toMatchObject({ code: "overloaded", retryAfterS: 5 });
    // Anything else is ours to fix: a 500.
    for (const error of [new Error("seat claims out of step with the hold"), new TypeError("x is undefined"), Object.assign(new Error("duplicate key"), { code: "23505" }), "a string"]) {
      expect(unavailable(error), String(error)).toBeUndefined();
    }
  });
});
