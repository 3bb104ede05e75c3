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
import type { WaitingRoom } from "../../durable-objects/waiting-room";
import { createEvent } from "../../workers/events/events";
import { createOrganizer } from "../../workers/organizers/api-keys";
import { queueStateKey, type QueueState } from "../../core/waiting-room/queue-state";
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

/** One entrant row of the room, as stored. */
export interface EntrantRow extends Record<string, SqlStorageValue> {
  account_id: string;
  order_key: number;
  joined_at: number;
  flagged: string | null;
  admission_id: string | null;
  admission_expires_at: number | null;
}

/** Everything the room stores (entrants by account, its state row and alarm), for before/after comparisons. */
export async function roomStorage(eventId: string): Promise<{ entrants: EntrantRow[]; state: Record<string, SqlStorageValue>[]; alarm: number | null }> {
  return runInDurableObject(roomOf(eventId), async (_room: WaitingRoom, state) => ({
    entrants: state.storage.sql.exec<EntrantRow>("SELECT * FROM entrants ORDER BY account_id").toArray(),
    state: state.storage.sql.exec("SELECT * FROM state").toArray(),
    alarm: await state.storage.getAlarm(),
  }));
}

/** Places promised to admitted fans who hold nothing yet (live promises only). */
export async function promisedPlaces(eventId: string): Promise<number> {
  return runInDurableObject(inventoryOf(eventId), (_inventory: EventInventory, state) => {
    const row = state.storage.sql.exec<{ n: number }>("SELECT coalesce(sum(places), 0) AS n FROM promises WHERE expires_at > ?", Date.now()).one();
    return row.n;
  });
}

/** The published queue document, read from KV as the Worker reads it. */
export async function publishedState(eventId: string): Promise<QueueState | null> {
  return env.QUEUE_STATE.get<QueueState>(queueStateKey(eventId), { type: "json" });
}
