/**
 * Invariant 6 for the waiting-room routes: malformed, unauthenticated,
 * misaddressed or ill-timed requests get a JSON 400/401/404/409/415 with a
 * machine-readable code and no internals, and the room stores exactly what it
 * stored before.
 */
import { sql } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { TURNSTILE_DUMMY_TOKEN } from "../../../dev/turnstile";
import { shardOf } from "../../../core/waiting-room/lobby-shards";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { withDb } from "../../fixtures/db";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { adminRequest, expectApiError, expectInvalid, rawRequest, type ReadResponse, uniqueIp } from "../../fixtures/http";
import { roomOf, roomStorage, shardOfAccount } from "../../fixtures/objects";
import { openEvent } from "../../fixtures/seeding";
import { fanSession } from "../../fixtures/tokens";
import { exchangeTicket, getQueue, holdBest, joined, joinLobby, type LobbyTicket, postJson } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

/** Runs `request` and checks the room of `eventId` did not change. */
async function unchanged(eventId: string, request: () => Promise<ReadResponse>): Promise<ReadResponse> {
  const before = await roomStorage(eventId);
  const response = await request();
  expect(await roomStorage(eventId)).toEqual(before);
  return response;
}

function setStatus(eventId: string, status: "draft" | "cancelled"): Promise<unknown> {
  return withDb((db) => db.execute(sql`update events set status = ${status} where id = ${eventId}`));
}

let sale: HotSale;
let token: string;
let ticket: LobbyTicket;

beforeAll(async () => {
  startFakeClock();
  sale = await hotSale({ accounts: 12 });
  await roomOf(sale.eventId).configure(sale.eventId);
  token = await fanSession(accountOf(sale, 0));
  ticket = await joined(sale.eventId, { token });
  vi.useRealTimers();
});

/** A fan of the shared sale with nothing used up yet (rate limits are per account). */
async function freshFan(i: number): Promise<string> {
  return fanSession(accountOf(sale, i));
}

describe("POST /api/events/:id/lobby", () => {
  const lobby = (eventId: string) => `/api/events/${eventId}/lobby`;

  it("answers 400 to malformed input", async () => {
    const fan = { token: await freshFan(1) };
    const bodies: [unknown, string | undefined][] = [
      [{}, "turnstileToken"],
      [{ turnstileToken: "" }, "turnstileToken"],
      [{ turnstileToken: "x".repeat(2049) }, "turnstileToken"],
      [{ turnstileToken: 42 }, "turnstileToken"],
      [{ turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: "short" }, "deviceId"],
      [{ turnstileToken: TURNSTILE_DUMMY_TOKEN, deviceId: "../../../etc/passwd" }, "deviceId"],
      [{ turnstileToken: TURNSTILE_DUMMY_TOKEN, priority: "front" }, undefined],
      [[TURNSTILE_DUMMY_TOKEN], undefined],
    ];
    for (const [body, path] of bodies) expectInvalid(await unchanged(sale.eventId, () => postJson(lobby(sale.eventId), fan, body)), path);
    expectApiError(await unchanged(sale.eventId, () => postJson(lobby(sale.eventId), fan, "{not json")), 400, "invalid_request");
    expectInvalid(await postJson(lobby("not-a-uuid"), fan, { turnstileToken: TURNSTILE_DUMMY_TOKEN }), "id");
  });

  it("refuses the event's id spelled in capitals (400), so one account cannot open a second lobby entry under another spelling", async () => {
    // Postgres reads a uuid in any case as the same event, but objects and limits are named by the id as written.
    const spelled = sale.eventId.toUpperCase();
    expect(spelled).not.toBe(sale.eventId);
    const fan = { token };
    expectInvalid(await unchanged(sale.eventId, () => joinLobby(spelled, fan)), "id");
    expectInvalid(await unchanged(sale.eventId, () => exchangeTicket(spelled, fan, ticket.ticket)), "id");
    expectInvalid(await unchanged(sale.eventId, () => getQueue(spelled)), "id");
    expectInvalid(await unchanged(sale.eventId, () => holdBest(spelled, fan, { quantity: 1 })), "id");
    // No room answers to the second spelling: it was never asked to exist.
    expect((await roomStorage(spelled)).state).toEqual([]);
  });

  it("answers 415 to a body that is not JSON", async () => {
    const response = await unchanged(sale.eventId, () =>
      rawRequest(lobby(sale.eventId), { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "text/plain" }, body: "turnstileToken=x" }),
    );
    expectApiError(response, 415, "unsupported_media_type");
  });

  it("answers 401 without a session", async () => {
    expectApiError(await unchanged(sale.eventId, () => joinLobby(sale.eventId, {})), 401, "unauthorized");
    expectApiError(await unchanged(sale.eventId, () => joinLobby(sale.eventId, { token: "garbage" })), 401, "invalid_token");
  });

  it("answers 404 for an unknown or draft event, 409 for a calm, cancelled, not yet open or ended one", async () => {
    startFakeClock();
    expectApiError(await joinLobby(crypto.randomUUID(), { token: await freshFan(2) }), 404, "not_found");

    const draft = await hotSale({ accounts: 0 });
    await setStatus(draft.eventId, "draft");
    expectApiError(await joinLobby(draft.eventId, { token: await freshFan(2) }), 404, "not_found");

    const calm = await openEvent({ demandClass: "calm", accounts: 0 });
    expectApiError(await joinLobby(calm.event.id, { token: await freshFan(2) }), 409, "no_waiting_room");

    const cancelled = await hotSale({ accounts: 0 });
    await roomOf(cancelled.eventId).configure(cancelled.eventId);
    await setStatus(cancelled.eventId, "cancelled");
    expectApiError(await unchanged(cancelled.eventId, async () => joinLobby(cancelled.eventId, { token: await freshFan(3) })), 409, "event_cancelled");

    const early = await hotSale({ accounts: 0, saleStartsInMs: 3 * 3_600_000, lobbyOpensMinutes: 60 });
    await roomOf(early.eventId).configure(early.eventId);
    expectApiError(await unchanged(early.eventId, async () => joinLobby(early.eventId, { token: await freshFan(4) })), 409, "lobby_closed");

    const ended = await hotSale({ accounts: 0, saleStartsInMs: -2 * 3_600_000, saleLastsMs: 3_600_000 });
    await roomOf(ended.eventId).configure(ended.eventId);
    expectApiError(await unchanged(ended.eventId, async () => joinLobby(ended.eventId, { token: await freshFan(5) })), 409, "sale_ended");
  });
});

describe("GET /api/events/:id/queue", () => {
  it("answers 400 to a malformed id and 404 while no document is published", async () => {
    expectInvalid(await rawRequest("/api/events/not-a-uuid/queue", { headers: { "CF-Connecting-IP": uniqueIp() } }), "id");
    expectApiError(await getQueue(crypto.randomUUID()), 404, "queue_not_open");
    // The shared sale's room has not ticked yet, so nothing is published.
    expectApiError(await unchanged(sale.eventId, () => getQueue(sale.eventId)), 404, "queue_not_open");
  });
});

describe("POST /api/events/:id/admission", () => {
  const admission = (eventId: string) => `/api/events/${eventId}/admission`;

  it("answers 400 to malformed input and 401 without a session or with a bad ticket", async () => {
    const fan = { token };
    const bodies: [unknown, string | undefined][] = [
      [{}, "ticket"],
      [{ ticket: "" }, "ticket"],
      [{ ticket: "x".repeat(4097) }, "ticket"],
      [{ ticket: ticket.ticket, orderKey: 0 }, undefined],
      [{ ticket: 7 }, "ticket"],
    ];
    for (const [body, path] of bodies) expectInvalid(await unchanged(sale.eventId, () => postJson(admission(sale.eventId), fan, body)), path);
    expectApiError(await unchanged(sale.eventId, () => postJson(admission(sale.eventId), fan, "[")), 400, "invalid_request");
    expectInvalid(await postJson(admission("not-a-uuid"), fan, { ticket: ticket.ticket }), "id");

    expectApiError(await unchanged(sale.eventId, () => exchangeTicket(sale.eventId, {}, ticket.ticket)), 401, "unauthorized");
    expectApiError(await unchanged(sale.eventId, () => exchangeTicket(sale.eventId, fan, "a.b.c")), 401, "invalid_ticket");
    // A ticket is for its own event only, even one that does not exist.
    expectApiError(await exchangeTicket(crypto.randomUUID(), fan, ticket.ticket), 401, "invalid_ticket");
  });

  it("answers 409 before the fan's turn, and for a ticket whose place in line changed", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    setClock(sale.saleStartsAt - 60_000);
    expectApiError(await unchanged(sale.eventId, () => exchangeTicket(sale.eventId, { token }, ticket.ticket)), 409, "not_admitted_yet");

    // Evidence arrives after the fan joined (a device it shares went over the limit): its place moves, and the old ticket is void.
    const movedToken = await freshFan(6);
    const moved = await joined(sale.eventId, { token: movedToken });
    const accountId = accountOf(sale, 6);
    const shard = shardOf(accountId, await roomOf(sale.eventId).lobbyShards(sale.eventId));
    const evidence = { ip: "10.0.0.1", device: "shared", deviceReported: true, ephemeralId: null, accountCreatedAt: 0, accountsOnDevice: 50, accountsOnEphemeralId: 0, accountsOnIp: 1, accountsInCreationBurst: 0 };
    const [outcome] = await (await shardOfAccount(sale.eventId, accountId)).penalize(sale.eventId, shard, [{ accountId, evidence }]);
    expect(outcome?.outcome).toBe("moved");
    expectApiError(await unchanged(sale.eventId, () => exchangeTicket(sale.eventId, { token: movedToken }, moved.ticket)), 409, "not_in_lobby");
  });
});

describe("PATCH /admin/events/:id/admission", () => {
  it("answers 400 to malformed input, 401 without a key, 404 for another organizer's event, 409 for a calm event", async () => {
    startFakeClock();
    const path = `/events/${sale.eventId}/admission`;
    for (const body of [{ ratePerSecond: 0 }, { ratePerSecond: 1.5 }, { ratePerSecond: 100_001 }, { paused: "yes" }, { rate: 5 }]) {
      expectApiError(await unchanged(sale.eventId, () => adminRequest(sale.apiKey, "PATCH", path, body)), 400, "invalid_request");
    }
    expectApiError(await unchanged(sale.eventId, () => adminRequest("etk_wrong", "PATCH", path, { paused: true })), 401, "unauthorized");
    // The event's id in capitals names no second room for the organizer either (nor a second inventory to prepare).
    const spelled = sale.eventId.toUpperCase();
    expectInvalid(await unchanged(sale.eventId, () => adminRequest(sale.apiKey, "PATCH", `/events/${spelled}/admission`, { paused: true })), "id");
    expectInvalid(await adminRequest(sale.apiKey, "POST", `/events/${spelled}/prepare`, {}), "id");
    expect((await roomStorage(spelled)).state).toEqual([]);
    const other = await hotSale({ accounts: 0 });
    expectApiError(await unchanged(sale.eventId, () => adminRequest(other.apiKey, "PATCH", path, { paused: true })), 404, "not_found");
    await withDb((db) => db.execute(sql`update events set demand_class = 'calm' where id = ${other.eventId}`));
    expectApiError(await adminRequest(other.apiKey, "PATCH", `/events/${other.eventId}/admission`, { paused: true }), 409, "no_waiting_room");
  });
});
