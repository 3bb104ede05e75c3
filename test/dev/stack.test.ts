import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { applyMigrations } from "../../dev/migrate.ts";
import { DEMO_ORGANIZER, openDb, seedDemoData } from "../../dev/seed.ts";
import { organizerForApiKey } from "../../workers/organizers/api-keys.ts";
import { useScratchDatabase, withClient } from "./databases.ts";

const databaseUrl = useScratchDatabase("seed");
let keyDir: string;

beforeAll(async () => {
  await applyMigrations(databaseUrl);
  keyDir = await mkdtemp(path.join(tmpdir(), "seed-test-"));
});

afterAll(async () => {
  await rm(keyDir, { recursive: true, force: true });
});

it("seeds the demo data once, however often it runs, and replaces a lost demo key", { timeout: 90_000 }, async () => {
  const apiKeyFile = path.join(keyDir, "demo-api-key");
  const { db, close } = await openDb(databaseUrl, `127.0.0.1:${inject("relayPort")}`);
  try {
    const first = await seedDemoData(db, { apiKeyFile });
    const second = await seedDemoData(db, { apiKeyFile });

    expect(first.created).toHaveLength(5);
    expect(second.created).toEqual([]);
    expect(second.apiKey).toBe(first.apiKey);
    expect((await readFile(apiKeyFile, "utf8")).trim()).toBe(first.apiKey);
    expect(await organizerForApiKey(db, first.apiKey)).toEqual({ id: first.organizerId, name: DEMO_ORGANIZER });

    // The clear key is only in the file: without it, a new key is added and nothing else.
    const lostKeyFile = path.join(keyDir, "elsewhere", "demo-api-key");
    const third = await seedDemoData(db, { apiKeyFile: lostKeyFile });
    expect(third.created).toEqual([`API key for "${DEMO_ORGANIZER}"`]);
    expect((await readFile(lostKeyFile, "utf8")).trim()).toBe(third.apiKey);
    expect(await organizerForApiKey(db, third.apiKey)).toEqual({ id: first.organizerId, name: DEMO_ORGANIZER });
  } finally {
    await close();
  }

  const counts = await withClient(databaseUrl, async (client) => {
    const query = async (sql: string) => (await client.query(sql)).rows;
    return {
      organizers: await query("select name, (select count(*)::int from organizer_api_keys k where k.organizer_id = o.id) as keys from organizers o"),
      venues: await query(
        "select seat_count, (select count(*)::int from seats s where s.venue_id = v.id) as seats, (select count(*)::int from sections s where s.venue_id = v.id) as sections from venues v order by seat_count",
      ),
      events: await query(
        "select e.demand_class, e.status, e.sale_starts_at < now() as sale_open, (select count(*)::int from event_seats s where s.event_id = e.id) as event_seats from events e order by e.expected_demand",
      ),
    };
  });
  expect(counts.organizers).toEqual([{ name: DEMO_ORGANIZER, keys: 2 }]);
  expect(counts.venues).toEqual([
    { seat_count: 500, seats: 500, sections: 3 },
    { seat_count: 70_000, seats: 70_000, sections: expect.any(Number) },
  ]);
  expect(counts.venues[1]?.sections).toBeGreaterThanOrEqual(20);
  expect(counts.events).toEqual([
    { demand_class: "calm", status: "published", sale_open: true, event_seats: 500 },
    { demand_class: "hot", status: "published", sale_open: false, event_seats: 70_000 },
  ]);
});
