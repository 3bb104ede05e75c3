/**
 * Hot sales for the waiting-room tests: an event whose sale starts in the
 * future of a fake clock that runs a day ahead of real time, so every alarm
 * the room or the inventory sets lies in workerd's future and runs only when a
 * test runs it.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { vi } from "vitest";
import type { EventInventory } from "../../durable-objects/event-inventory";
import type { ExchangeResult, JoinResult, WaitingRoom } from "../../durable-objects/waiting-room";
import type { EntrantRow, LobbyShard } from "../../durable-objects/waiting-room/lobby-shard";
import type { LobbyEvidence } from "../../core/waiting-room/bot-evidence";
import { shardName, shardOf } from "../../core/waiting-room/lobby-shards";
import { createEvent } from "../../workers/events/events";
import { createOrganizer } from "../../workers/organizers/api-keys";
import type { QueueState } from "../../core/waiting-room/queue-state";
import type { SeatingChart } from "../../workers/venues/seating-chart";
import { importVenue } from "../../workers/venues/venues";
import { smallChart, withDb } from "./fixtures";

/** How far ahead of real time the fake clock runs. */
export const CLOCK_AHEAD_MS = 86_400_000;

/** Freezes Date (only Date) a day ahead of real time, on a whole second. */
export function startFakeClock(): number {
  vi.useFakeTimers({ toFake: ["Date"] });
  const at = Math.floor(Date.now() / 1000) * 1000 + CLOCK_AHEAD_MS;
  vi.setSystemTime(at);
  return at;
}

/** Feeds crypto.getRandomValues (where the shards draw order keys) from `random` instead, until the mocks are restored. */
export function useSeededCrypto(random: () => number): void {
  vi.spyOn(crypto, "getRandomValues").mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
    if (array instanceof Uint32Array) for (let i = 0; i < array.length; i++) array[i] = Math.floor(random() * 2 ** 32);
    else if (array instanceof Uint8Array) for (let i = 0; i < array.length; i++) array[i] = Math.floor(random() * 256);
    else throw new Error("unexpected array type");
    return array;
  });
}

/** Moves the fake clock (Workers and Durable Objects in this isolate see it too). */
export function setClock(at: number): void {
  vi.setSystemTime(at);
}

/** Settings of a hot sale; times are relative to the fake clock's now. */
export interface HotSaleOptions {
  /** The sale starts this long after now (default 1 hour). */
  saleStartsInMs?: number;
  /** The sale lasts this long (default 6 hours). */
  saleLastsMs?: number;
  lobbyOpensMinutes?: number;
  admissionRatePerSecond?: number;
  purchaseLimit?: number;
  holdTtlSeconds?: number;
  botPolicy?: "deprioritize" | "refuse";
  maxAccountsPerDevice?: number;
  maxAccountsPerIp?: number;
  /** Expected demand: sets how many lobby shards the room gets (at least 2). */
  expectedDemand?: number;
  chart?: SeatingChart;
  /** Fan accounts to create in Postgres (default 4). */
  accounts?: number;
}

/** A published hot event at a fresh venue of a fresh organizer. */
export interface HotSale {
  eventId: string;
  organizerId: string;
  apiKey: string;
  accounts: string[];
  lobbyOpensAt: number;
  saleStartsAt: number;
  saleEndsAt: number;
  capacity: number;
  priceTiers: string[];
}

/** Creates a hot sale in Postgres (nothing in the Durable Objects yet). */
export async function hotSale(options: HotSaleOptions = {}): Promise<HotSale> {
  return withDb(async (db) => {
    const { organizerId, apiKey } = await createOrganizer(db, `Org ${crypto.randomUUID()}`);
    const venue = await importVenue(db, organizerId, options.chart ?? smallChart());
    const now = Date.now();
    const saleStartsAt = now + (options.saleStartsInMs ?? 3_600_000);
    const saleEndsAt = saleStartsAt + (options.saleLastsMs ?? 6 * 3_600_000);
    const lobbyOpensMinutes = options.lobbyOpensMinutes ?? 90;
    const event = await createEvent(db, organizerId, {
      venueId: venue.id,
      name: "Hot show",
      startsAt: new Date(saleEndsAt + 86_400_000).toISOString(),
      saleStartsAt: new Date(saleStartsAt).toISOString(),
      saleEndsAt: new Date(saleEndsAt).toISOString(),
      lobbyOpensMinutes,
      demandClass: "hot",
      status: "published",
      purchaseLimit: options.purchaseLimit ?? 4,
      holdTtlSeconds: options.holdTtlSeconds ?? 600,
      admissionRatePerSecond: options.admissionRatePerSecond ?? 500,
      botPolicy: options.botPolicy,
      maxAccountsPerDevice: options.maxAccountsPerDevice,
      maxAccountsPerIp: options.maxAccountsPerIp,
      expectedDemand: options.expectedDemand,
      prices: venue.priceTiers.map((priceTier, i) => ({ priceTier, priceCents: 1000 * (i + 1) })),
    });
    const count = options.accounts ?? 4;
    const rows =
      count > 0
        ? await db.execute<{ id: string }>(sql`
            insert into accounts (email) select 'fan-' || gen_random_uuid() || '@example.test' from generate_series(1, ${count}) returning id`)
        : { rows: [] };
    return {
      eventId: event.id,
      organizerId,
      apiKey,
      accounts: rows.rows.map((r) => r.id),
      lobbyOpensAt: saleStartsAt - lobbyOpensMinutes * 60_000,
      saleStartsAt,
      saleEndsAt,
      capacity: event.capacity,
      priceTiers: venue.priceTiers,
    };
  });
}

/** The i-th account of a sale, or a failed test. */
export function accountOf(sale: HotSale, i: number): string {
  const id = sale.accounts[i];
  if (id === undefined) throw new Error(`the sale has no account ${i}`);
  return id;
}

/** The room of an event. */
export function roomOf(eventId: string): DurableObjectStub<WaitingRoom> {
  return env.WAITING_ROOM.getByName(eventId);
}

/** The inventory of an event. */
export function inventoryOf(eventId: string): DurableObjectStub<EventInventory> {
  return env.EVENT_INVENTORY.getByName(eventId);
}

/** Each event's number of shards (fixed once its room chose it), as the Worker keeps it per isolate. */
const shardCounts = new Map<string, number>();

/** The lobby shard an account of this event is in: its index and stub. */
export async function lobbyShardIndex(eventId: string, accountId: string): Promise<{ index: number; stub: DurableObjectStub<LobbyShard> }> {
  let shards = shardCounts.get(eventId);
  if (shards === undefined) {
    shards = await roomOf(eventId).lobbyShards(eventId);
    shardCounts.set(eventId, shards);
  }
  const index = shardOf(accountId, shards);
  return { index, stub: env.LOBBY_SHARD.getByName(shardName(eventId, index)) };
}

/** The lobby shard an account of this event is in. */
export async function shardOfAccount(eventId: string, accountId: string): Promise<DurableObjectStub<LobbyShard>> {
  return (await lobbyShardIndex(eventId, accountId)).stub;
}

/** Joins the lobby at the account's shard, as the Worker does after its checks (`evidence` null: none to weigh). */
export async function lobbyJoin(eventId: string, accountId: string, evidence: LobbyEvidence | null = null): Promise<JoinResult> {
  const { index, stub } = await lobbyShardIndex(eventId, accountId);
  return stub.join({ eventId, shard: index, accountId, evidence });
}

/** Exchanges a lobby ticket at the account's shard, as the Worker does once the ticket checks out. */
export async function lobbyExchange(eventId: string, accountId: string, orderKey: number): Promise<ExchangeResult> {
  return (await shardOfAccount(eventId, accountId)).exchange(accountId, orderKey);
}

export type { EntrantRow };

/** The room's lobby shards (those that exist). */
export async function shardsOf(eventId: string): Promise<DurableObjectStub<LobbyShard>[]> {
  const indexes = await runInDurableObject(roomOf(eventId), (_room: WaitingRoom, state) => state.storage.sql.exec<{ shard: number }>("SELECT shard FROM shards ORDER BY shard").toArray());
  return indexes.map(({ shard }) => env.LOBBY_SHARD.getByName(shardName(eventId, shard)));
}

/** Every entrant of the event, over all its shards, by account. */
export async function entrantsOf(eventId: string): Promise<EntrantRow[]> {
  const rows: EntrantRow[] = [];
  for (const shard of await shardsOf(eventId)) {
    rows.push(...(await runInDurableObject(shard, (_shard: LobbyShard, state) => state.storage.sql.exec<EntrantRow>("SELECT * FROM entrants").toArray())));
  }
  return rows.sort((a, b) => (a.account_id < b.account_id ? -1 : 1));
}

/** Everything the room and its shards store about the line (entrants by account, the room's state row and alarm), for before/after comparisons. */
export async function roomStorage(eventId: string): Promise<{ entrants: EntrantRow[]; state: Record<string, SqlStorageValue>[]; alarm: number | null }> {
  const room = await runInDurableObject(roomOf(eventId), async (_room: WaitingRoom, state) => ({
    state: state.storage.sql.exec("SELECT * FROM state").toArray(),
    alarm: await state.storage.getAlarm(),
  }));
  return { entrants: await entrantsOf(eventId), ...room };
}

/** Places promised to admitted fans who hold nothing yet (live promises only). */
export async function promisedPlaces(eventId: string): Promise<number> {
  return runInDurableObject(inventoryOf(eventId), (_inventory: EventInventory, state) => {
    const row = state.storage.sql.exec<{ n: number }>("SELECT coalesce(sum(places), 0) AS n FROM promises WHERE expires_at > ?", Date.now()).one();
    return row.n;
  });
}

/** The published queue document, as the room hands it to the edge cache. */
export async function publishedState(eventId: string): Promise<QueueState | null> {
  return roomOf(eventId).published();
}
