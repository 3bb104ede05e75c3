/**
 * Waiting fans poll the published queue document through the data centre's
 * cache, never the shards or the inventory: thousands of
 * `GET /api/events/:id/queue` reach the room at most once per second (when
 * the second's copy is first asked for), and change nothing. When the last
 * place sells, the document says sold out after one tick, and the exchange
 * turns the rest away, for now: a refunded sale lets the next fan in.
 */
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WAITLIST_FIRST_MS } from "../../../durable-objects/event-inventory";
import type { QueueState } from "../../../core/waiting-room/queue-state";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { hotSale } from "../../fixtures/hot-sale";
import { expectApiError } from "../../fixtures/http";
import { inventoryOf, publishedState, roomOf, roomStorage, shardsOf } from "../../fixtures/objects";
import { fanSession } from "../../fixtures/tokens";
import { admitted, createdHoldSchema, exchangeTicket, getQueue, holdBest, joined, type LobbyTicket, queueStateSchema } from "../../fixtures/waiting-room";

const SECONDS = 10;
const POLLS_PER_SECOND = 500;
const IN_FLIGHT = 50;

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Spies on every method that gives the Worker a stub of one of a namespace's objects. */
function addressing<T extends Rpc.DurableObjectBranded | undefined>(namespace: DurableObjectNamespace<T>) {
  return [vi.spyOn(namespace, "getByName"), vi.spyOn(namespace, "get"), vi.spyOn(namespace, "idFromName"), vi.spyOn(namespace, "idFromString")];
}

function calls(spies: { mock: { calls: unknown[] } }[]): number {
  return spies.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
}

/** GET /queue as a fan's page reads it. */
async function poll(eventId: string): Promise<QueueState> {
  const response = await getQueue(eventId);
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get("Cache-Control")).toBe("public, max-age=1, s-maxage=1");
  return queueStateSchema.parse(response.json);
}

/** Requests of a kind an object counted (in its own storage, so an eviction loses none). */
function served(counts: { kind: string; n: number }[], kind?: string): number {
  return counts.filter((c) => kind === undefined || c.kind === kind).reduce((sum, c) => sum + c.n, 0);
}

/** A small sale a second into its start, ticked once, and polled once: the isolate has the document's copy. */
async function polledSale() {
  startFakeClock();
  const sale = await hotSale({ accounts: 3 });
  for (const accountId of sale.accounts) await joined(sale.eventId, { token: await fanSession(accountId) });
  setClock(sale.saleStartsAt + 1_000);
  expect(await runDurableObjectAlarm(roomOf(sale.eventId))).toBe(true);
  const published = await publishedState(sale.eventId);
  expect(await poll(sale.eventId)).toEqual(published);
  return { sale, published };
}

describe("queue polls", () => {
  it(`answers ${(SECONDS * POLLS_PER_SECOND).toLocaleString("en")} polls over ${SECONDS} s with one request to the room per second, and none to any other object`, async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 30, admissionRatePerSecond: 5 });
    for (const accountId of sale.accounts) await joined(sale.eventId, { token: await fanSession(accountId) });
    setClock(sale.saleStartsAt + 1_000);
    const room = roomOf(sale.eventId);
    expect(await runDurableObjectAlarm(room)).toBe(true);
    const published = await publishedState(sale.eventId);
    expect(published?.admitted).toBe(5);
    // One poll before the crowd: the isolate has a copy to serve while it fetches the next second's.
    expect(await poll(sale.eventId)).toEqual(published);

    const shards = await shardsOf(sale.eventId);
    const shardCounts = async () => (await Promise.all(shards.map((shard) => shard.requestCounts()))).reduce((sum, counts) => sum + served(counts), 0);
    const roomBefore = served(await room.requestCounts(), "document");
    const shardsBefore = await shardCounts();
    const stored = await roomStorage(sale.eventId);
    // The Worker can reach an object only through these bindings: spy on every way of addressing one.
    const roomStubs = addressing(env.WAITING_ROOM);
    const otherStubs = [...addressing(env.LOBBY_SHARD), ...addressing(env.EVENT_INVENTORY), ...addressing(env.SEAT_MAP_FEED)];

    let polls = 0;
    for (let second = 1; second <= SECONDS; second++) {
      setClock(sale.saleStartsAt + 1_000 + second * 1_000);
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < POLLS_PER_SECOND) {
            next++;
            polls++;
            // The document did not change (no tick ran): the room's copy, or the last second's while it is fetched.
            expect(await poll(sale.eventId)).toEqual(published);
          }
        }),
      );
    }
    expect(polls).toBe(SECONDS * POLLS_PER_SECOND);
    const fromRoom = served(await room.requestCounts(), "document") - roomBefore;
    expect(fromRoom).toBeGreaterThanOrEqual(1);
    expect(fromRoom).toBeLessThanOrEqual(SECONDS);
    expect(calls(roomStubs)).toBe(fromRoom);
    expect(calls(otherStubs)).toBe(0);
    expect(await shardCounts()).toBe(shardsBefore);
    expect(await roomStorage(sale.eventId)).toEqual(stored);
  }, 300_000);

  it("asks a room that is slow to answer once, however many seconds its answer spans: later polls get the isolate's last copy", async () => {
    const { sale, published } = await polledSale();

    // From now on the room takes 300 ms to answer (real time), while the polls below move the clock on by seconds.
    const room = env.WAITING_ROOM;
    const real = room.getByName.bind(room);
    let asked = 0;
    vi.spyOn(room, "getByName").mockImplementation((name) => {
      const stub = real(name);
      return new Proxy(stub, {
        get(target, property) {
          if (property !== "published") return Reflect.get(target, property);
          return async () => {
            asked++;
            await new Promise((resolve) => setTimeout(resolve, 300));
            return target.published();
          };
        },
      });
    });
    setClock(sale.saleStartsAt + 2_000);
    const first = poll(sale.eventId);
    await vi.waitFor(() => expect(asked).toBe(1));
    // Its answer spans the next two seconds: their polls take the copy the isolate has, and ask nobody.
    setClock(sale.saleStartsAt + 3_000);
    expect(await poll(sale.eventId)).toEqual(published);
    setClock(sale.saleStartsAt + 4_000);
    expect(await poll(sale.eventId)).toEqual(published);
    expect(await first).toEqual(published);
    expect(asked).toBe(1);
  });

  it("leaves the room to the new second's first poll when a cache lookup outlives its second", async () => {
    const { sale, published } = await polledSale();

    const room = env.WAITING_ROOM;
    const asking = vi.spyOn(room, "getByName");
    // A poll in the next second whose lookup in the cache takes until the second after: by then that second is over.
    const cache = caches.default;
    const match = cache.match.bind(cache);
    vi.spyOn(cache, "match").mockImplementationOnce(async (request) => {
      const found = await match(request);
      setClock(sale.saleStartsAt + 3_000);
      return found;
    });
    setClock(sale.saleStartsAt + 2_000);
    expect(await poll(sale.eventId)).toEqual(published);
    expect(asking).not.toHaveBeenCalled();
    // The new second's first poll asks the room, once.
    expect(await poll(sale.eventId)).toEqual(published);
    expect(asking).toHaveBeenCalledTimes(1);
  });

  it("says sold out one tick after the last place sells, the exchange then answers 409 sold_out, and a refund lets the next fan in", async () => {
    startFakeClock();
    // 2 x 2 x 4 seats and 6 standing places: 22 places, 2 per fan, so 11 fans are admitted at most.
    const sale = await hotSale({ chart: smallChart(2, 4, 6), accounts: 14, purchaseLimit: 2, admissionRatePerSecond: 100 });
    const fans: { token: string; ticket: LobbyTicket }[] = [];
    for (const accountId of sale.accounts) {
      const token = await fanSession(accountId);
      fans.push({ token, ticket: await joined(sale.eventId, { token }) });
    }
    setClock(sale.saleStartsAt + 1_000);
    const room = roomOf(sale.eventId);
    expect(await runDurableObjectAlarm(room)).toBe(true);
    const first = await poll(sale.eventId);
    expect(first).toMatchObject({ admitted: 11, soldOut: false, available: 22 });

    const inQueueOrder = [...fans].sort((a, b) => a.ticket.orderKey - b.ticket.orderKey);
    const inventory = inventoryOf(sale.eventId);
    const sold: string[] = [];
    for (const fan of inQueueOrder.slice(0, 11)) {
      expect(fan.ticket.orderKey).toBeLessThanOrEqual(first.threshold);
      const admission = await admitted(sale.eventId, { token: fan.token }, fan.ticket.ticket);
      const held = await holdBest(sale.eventId, { token: admission.token }, { quantity: 2 });
      expect(held.status, held.text).toBe(201);
      const holdId = createdHoldSchema.parse(held.json).hold.holdId;
      const confirmed = await inventory.confirm({ requestId: crypto.randomUUID(), holdId, allowLapsed: false });
      expect(confirmed.ok).toBe(true);
      sold.push(holdId);
    }
    // Sold, but no tick yet: the document is a tick behind.
    expect(await poll(sale.eventId)).toMatchObject({ soldOut: false });
    setClock(sale.saleStartsAt + 2_000);
    expect(await runDurableObjectAlarm(room)).toBe(true);
    const after = await poll(sale.eventId);
    expect(after).toMatchObject({ soldOut: true, available: 0, held: 0, admitted: 11, threshold: first.threshold });

    const waiting = inQueueOrder[11];
    if (!waiting) throw new Error("no fan left waiting");
    expectApiError(await exchangeTicket(sale.eventId, { token: waiting.token }, waiting.ticket.ticket), 409, "sold_out");
    // More ticks admit nobody.
    setClock(sale.saleStartsAt + 60_000);
    expect(await runDurableObjectAlarm(room)).toBe(true);
    expect(await poll(sale.eventId)).toMatchObject({ soldOut: true, admitted: 11, threshold: first.threshold });

    // A sale is refunded. Nobody is on the waitlist, so once its turn is over the next fan in line, and only they, get in.
    const refundedAt = sale.saleStartsAt + 61_000;
    setClock(refundedAt);
    expect((await inventory.unsell({ requestId: crypto.randomUUID(), holdId: sold[0] ?? "" })).ok).toBe(true);
    setClock(refundedAt + WAITLIST_FIRST_MS + 1);
    expect(await runDurableObjectAlarm(room)).toBe(true);
    expect(await poll(sale.eventId)).toMatchObject({ soldOut: false, available: 2, admitted: 12, threshold: waiting.ticket.orderKey });
    await admitted(sale.eventId, { token: waiting.token }, waiting.ticket.ticket);
    const next = inQueueOrder[12];
    if (!next) throw new Error("no fan behind");
    expectApiError(await exchangeTicket(sale.eventId, { token: next.token }, next.ticket.ticket), 409, "not_admitted_yet");
  }, 60_000);
});
