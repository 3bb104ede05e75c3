/**
 * `npm run event:prepare` as operators run it (README): the real command, a
 * child process with `EDGE_TICKETS_API_KEY` and `--url`, against the running
 * Worker. On a hot event it exits 0 after printing every item of its
 * checklist; the sale then opens, admitted fans hold and buy through the API
 * from the event's object, and the object's inventory (each hold's seats and
 * status as the API reads them from the object, and its availability bitmap)
 * is Postgres's place by place. With a key the Worker refuses it exits 1 at
 * the first item.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { admin, appUrl, fanEmail, hotEvent, openSaleNow, signInByApi, waitFor, type FanSession } from "./harness/fixtures";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The command loads wrangler's config reader and tsx: allow for a loaded machine. */
const COMMAND_TIMEOUT_MS = 90_000;

/** Runs `npm run -s event:prepare -- <args>` with `apiKey`; resolves with its exit code and output. */
function eventPrepare(args: string[], apiKey: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "npm",
      ["run", "-s", "event:prepare", "--", ...args],
      { cwd: REPO_ROOT, timeout: COMMAND_TIMEOUT_MS, env: { ...process.env, EDGE_TICKETS_API_KEY: apiKey } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr }),
    );
  });
}

const json = async <T>(response: Response, schema: z.ZodType<T>, what: string): Promise<T> => {
  const text = await response.text();
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return schema.parse(JSON.parse(text));
};

/** A fan in the event's lobby, then, once the room admits them, holding its admission token as their bearer token. */
async function admittedFan(eventId: string, name: string): Promise<{ join: () => Promise<void>; admitted: () => Promise<FanSession> }> {
  const session = await signInByApi(fanEmail(name));
  const headers = { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" };
  let ticket = "";
  let orderKey = Number.POSITIVE_INFINITY;
  return {
    join: async () => {
      const response = await fetch(`${appUrl()}/api/events/${eventId}/lobby`, {
        method: "POST",
        headers,
        body: JSON.stringify({ turnstileToken: "XXXX.DUMMY.TOKEN.XXXX", deviceId: `device-${crypto.randomUUID()}` }),
      });
      ({ ticket, orderKey } = await json(response, z.object({ ticket: z.string(), orderKey: z.number() }), "POST lobby"));
    },
    admitted: async () => {
      // As the queue page does: watch the published queue until the threshold passes the order key, then exchange the ticket once.
      await waitFor(`${name}'s turn`, async () => {
        const response = await fetch(`${appUrl()}/api/events/${eventId}/queue`);
        if (response.status === 404) return undefined;
        return (await json(response, z.object({ threshold: z.number() }), "GET queue")).threshold >= orderKey ? true : undefined;
      }, 30_000);
      const response = await fetch(`${appUrl()}/api/events/${eventId}/admission`, { method: "POST", headers, body: JSON.stringify({ ticket }) });
      return { ...session, token: (await json(response, z.object({ token: z.string() }), "POST admission")).token };
    },
  };
}

const holdView = z.object({ hold: z.object({ holdId: z.uuid(), status: z.string(), seats: z.array(z.object({ seatIndex: z.number() })) }) });

/** Holds `seats` through the API with the fan's admission token; returns the hold's id. */
async function holdSeats(eventId: string, fan: FanSession, seats: number[]): Promise<string> {
  const response = await fetch(`${appUrl()}/api/events/${eventId}/holds`, {
    method: "POST",
    headers: { Authorization: `Bearer ${fan.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ requestId: crypto.randomUUID(), seats }),
  });
  return (await json(response, holdView, "POST hold")).hold.holdId;
}

/** Every seat claimed, as `seat <index>` -> `<hold>:<status>` (test/workers/events/event-prepare.test.ts's shape). */
type Places = Record<string, string[]>;

function addPlace(places: Places, place: string, claim: string): void {
  (places[place] ??= []).push(claim);
  places[place].sort();
}

/** One text per inventory, whatever order its places were found in. */
const canonical = (inventory: { places: Places; taken: number[] }): string => JSON.stringify([Object.entries(inventory.places).sort(), inventory.taken]);

/** The object's view: each hold as the API reads it from the object, and the seats its availability bitmap shows taken. */
async function objectPlaces(eventId: string, holds: { holdId: string; fan: FanSession }[]): Promise<{ places: Places; taken: number[] }> {
  const places: Places = {};
  for (const { holdId, fan } of holds) {
    const response = await fetch(`${appUrl()}/api/events/${eventId}/holds/${holdId}`, { headers: { Authorization: `Bearer ${fan.token}` } });
    const { hold } = await json(response, holdView, "GET hold");
    if (hold.status === "live" || hold.status === "confirmed") for (const seat of hold.seats) addPlace(places, `seat ${seat.seatIndex}`, `${hold.holdId}:${hold.status}`);
  }
  const availability = await json(await fetch(`${appUrl()}/api/events/${eventId}/availability`), z.object({ seatCount: z.number(), bitmap: z.string() }), "GET availability");
  const bits = Buffer.from(availability.bitmap, "base64");
  const taken = Array.from({ length: availability.seatCount }, (_, i) => i).filter((i) => ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) === 0);
  return { places, taken };
}

/** Postgres's view: the seats of the event's live and confirmed holds. */
async function postgresPlaces(eventId: string): Promise<{ places: Places; taken: number[] }> {
  const client = new pg.Client({ connectionString: inject("browserPostgresUrl") });
  await client.connect();
  try {
    const { rows } = await client.query<{ hold_id: string; status: string; seat_index: number }>(
      `select h.id as hold_id, h.status, hi.seat_index from holds h join hold_items hi on hi.hold_id = h.id
       where h.event_id = $1 and h.status in ('live', 'confirmed') and hi.seat_index is not null`,
      [eventId],
    );
    const places: Places = {};
    for (const row of rows) addPlace(places, `seat ${row.seat_index}`, `${row.hold_id}:${row.status}`);
    return { places, taken: rows.map((row) => row.seat_index).sort((a, b) => a - b) };
  } finally {
    await client.end();
  }
}

const CHECKLIST = ["event", "venue", "class", "prices", "times", "admission rate", "inventory loaded", "waiting room", "published queue state", "live view"];

describe("npm run event:prepare, as operators run it", () => {
  it("prepares a hot event, whose object then sells with its inventory identical to Postgres", async () => {
    const event = await hotEvent({ prepared: false, admissionRatePerSecond: 20 });
    const run = await eventPrepare([event.id, "--url", appUrl()], inject("organizerApiKey"));
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]).toBe(`Preparing event ${event.id} at ${appUrl()}`);
    expect(lines.slice(1, -1).map((line) => /^\[x\] ([^:]+): /.exec(line)?.[1])).toEqual(CHECKLIST);
    expect(lines.find((line) => line.startsWith("[x] inventory loaded:"))).toMatch(/^\[x\] inventory loaded: 120 seats in the object, 160 places available/);
    expect(lines.at(-1)).toBe("Every item checked: the sale is ready to open.");

    // The sale opens: two fans in the lobby are admitted, one buys two seats, the other holds three.
    const [buyer, holder] = await Promise.all([admittedFan(event.id, "prepare-buyer"), admittedFan(event.id, "prepare-holder")]);
    await buyer.join();
    await holder.join();
    await openSaleNow(event.id, { ratePerSecond: 20 });
    const [a, b] = [await buyer.admitted(), await holder.admitted()];
    const sold = await holdSeats(event.id, a, [0, 1]);
    const paid = await fetch(`${appUrl()}/api/events/${event.id}/holds/${sold}/payment`, {
      method: "POST",
      headers: { Authorization: `Bearer ${a.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ paymentMethod: "pm_card_visa" }),
    });
    expect((await json(paid, z.object({ payment: z.object({ status: z.string() }) }), "POST payment")).payment.status).toBe("succeeded");
    const held = await holdSeats(event.id, b, [60, 61, 62]);
    const holds = [
      { holdId: sold, fan: a },
      { holdId: held, fan: b },
    ];

    // The object mirrors its holds to Postgres a second after a change (its alarm, a real one here); the availability is cached 1-2 s.
    const agree = async () => {
      const [object, stored] = [await objectPlaces(event.id, holds), await postgresPlaces(event.id)];
      return canonical(object) === canonical(stored) ? true : undefined;
    };
    // Until they agree (or the wait ends: then the comparison below shows the difference).
    await waitFor("Postgres and the object to agree", agree, 20_000).catch(() => undefined);
    const inPostgres = await postgresPlaces(event.id);
    expect(await objectPlaces(event.id, holds)).toEqual(inPostgres);
    expect(inPostgres.taken).toEqual([0, 1, 60, 61, 62]);
    expect(Object.values(inPostgres.places).flat().sort()).toEqual([`${held}:live`, `${held}:live`, `${held}:live`, `${sold}:confirmed`, `${sold}:confirmed`].sort());
    const live = await admin("GET", `/events/${event.id}/live`, undefined, z.object({ totals: z.object({ held: z.number(), sold: z.number() }) }));
    expect(live.totals).toEqual({ ...live.totals, held: 3, sold: 2 });
  });

  it("exits 1 at the first item when the Worker refuses the key", async () => {
    const event = await hotEvent({ prepared: false });
    const run = await eventPrepare([event.id, "--url", appUrl()], "etk_not-a-real-key");
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`[ ] FAILED GET /admin/events/${event.id}: answered 401`);
    expect(run.stdout).not.toContain("[x]");
  });
});
