/**
 * The places an event sells, as its inventory keeps them: the sale settings,
 * the seating chart with its prices, and the general-admission counters
 * (tables `config`, `prices`, `sections`, `seats`). In memory it also keeps
 * which seats are free (the seat map for best-available search), rebuilt
 * from the seat claims that holds.ts keeps in SQLite.
 *
 * Counters change in SQLite inside the caller's transaction (`claimGa`,
 * `unclaimGa`); memory changes only after that transaction commits
 * (`taken`, `freed`).
 */
import { setBit, type Availability, type GaRef, type SeatRef } from "../../core/holds/contract";
import { SeatMap } from "../../core/holds/seat-map";
import type { Sql, SqlRow } from "../lib/sql";
import type { InventoryConfig, InventorySnapshot } from "./postgres";

/** General-admission places in one section. */
export interface GaItem {
  sectionId: string;
  quantity: number;
}

interface ConfigRow extends SqlRow {
  event_id: string;
  status: InventoryConfig["status"];
  sale_starts_at: number;
  sale_ends_at: number;
  hold_ttl_ms: number;
  purchase_limit: number;
  seat_count: number;
}

interface SectionRow extends SqlRow {
  section_id: string;
  label: string;
  kind: "seated" | "general_admission";
  price_tier: string | null;
  sort_order: number;
  capacity: number;
  ga_available: number;
}

interface SeatRow extends SqlRow {
  seat_index: number;
  section_id: string;
  row_id: string;
  row_label: string;
  label: string;
  position: number;
  best_rank: number;
  price_tier: string;
}

/** A seat's labels, for hold views. */
interface SeatLabel {
  sectionId: string;
  rowLabel: string;
  label: string;
  priceTier: string;
}

/** What is kept in memory, derived from SQLite. */
interface Memory {
  settings: InventoryConfig;
  seatCount: number;
  seatMap: SeatMap;
  labels: (SeatLabel | undefined)[];
  prices: Map<string, number>;
  sections: Map<string, SectionRow>;
}

/** Which places a best-available request may take. */
export interface PlaceFilter {
  priceTier?: string | undefined;
  sectionId?: string | undefined;
}

/** The event's places: settings, chart, prices, free seats and general-admission counters. */
export class Places {
  private memory: Memory | undefined;

  /** `claimedSeats` lists the seats live or confirmed holds claim (from holds.ts). */
  constructor(
    private readonly sql: Sql,
    private readonly claimedSeats: () => Iterable<number>,
  ) {}

  /** True once the event has been loaded. */
  isPrepared(): boolean {
    return this.memory !== undefined || this.configRow() !== undefined;
  }

  /** The stored event id (undefined until prepared). */
  storedEventId(): string | undefined {
    return this.configRow()?.event_id;
  }

  /** The settings, or undefined until prepared (memory rebuilt from SQLite when missing). */
  settings(): InventoryConfig | undefined {
    return this.loaded()?.settings;
  }

  /** Drops the memory; the next call rebuilds it from SQLite. */
  forget(): void {
    this.memory = undefined;
  }

  /** Refreshes the settings of a prepared event (after an organizer edit); the chart stays as loaded. */
  updateSettings(config: InventoryConfig): void {
    this.sql`UPDATE config SET status = ${config.status}, sale_starts_at = ${config.saleStartsAt}, sale_ends_at = ${config.saleEndsAt},
       hold_ttl_ms = ${config.holdTtlMs}, purchase_limit = ${config.purchaseLimit} WHERE id = 1`;
    this.forget();
  }

  /** Writes a snapshot's settings, prices, sections and seats into an unprepared object (counters full; holds take theirs with `restoreGa`). */
  writeChart(snapshot: InventorySnapshot): void {
    const seatCount = snapshot.seats.length === 0 ? 0 : Math.max(...snapshot.seats.map((s) => s.seatIndex)) + 1;
    const { config } = snapshot;
    this.sql`INSERT INTO config (id, event_id, status, sale_starts_at, sale_ends_at, hold_ttl_ms, purchase_limit, seat_count, prepared_at)
       VALUES (1, ${config.eventId}, ${config.status}, ${config.saleStartsAt}, ${config.saleEndsAt}, ${config.holdTtlMs}, ${config.purchaseLimit}, ${seatCount}, ${Date.now()})`;
    for (const price of snapshot.prices) this.sql`INSERT OR REPLACE INTO prices (price_tier, price_cents) VALUES (${price.priceTier}, ${price.priceCents})`;
    for (const s of snapshot.sections) {
      const capacity = s.kind === "seated" ? snapshot.seats.filter((seat) => seat.sectionId === s.sectionId).length : s.capacity;
      this.sql`INSERT OR REPLACE INTO sections (section_id, label, kind, price_tier, sort_order, capacity, ga_available)
         VALUES (${s.sectionId}, ${s.label}, ${s.kind}, ${s.priceTier}, ${s.sortOrder}, ${capacity}, ${s.capacity})`;
    }
    for (const seat of snapshot.seats) {
      this.sql`INSERT OR REPLACE INTO seats (seat_index, section_id, row_id, row_label, label, position, best_rank, price_tier)
         VALUES (${seat.seatIndex}, ${seat.sectionId}, ${seat.rowId}, ${seat.rowLabel}, ${seat.label}, ${seat.position}, ${seat.bestRank}, ${seat.priceTier})`;
    }
  }

  // ------------------------------------------------------------ reading places

  /** Seats in the chart (seat indexes run from 0 to this, exclusive). */
  seatCount(): number {
    return this.required().seatCount;
  }

  /** Places neither held nor sold. */
  available(): number {
    const memory = this.required();
    let ga = 0;
    for (const s of memory.sections.values()) if (s.kind === "general_admission") ga += s.ga_available;
    return memory.seatMap.freeCount() + ga;
  }

  /** True when `seatIndex` is a seat of the chart. */
  hasSeat(seatIndex: number): boolean {
    return this.required().seatMap.has(seatIndex);
  }

  /** True when the seat is neither held nor sold. */
  isSeatFree(seatIndex: number): boolean {
    return this.required().seatMap.isFree(seatIndex);
  }

  /** True when every one of these places is free. */
  stillFree(seats: number[], ga: GaItem[]): boolean {
    const memory = this.required();
    return seats.every((seat) => memory.seatMap.isFree(seat)) && ga.every((item) => (memory.sections.get(item.sectionId)?.ga_available ?? 0) >= item.quantity);
  }

  /** True when some seated section matches the filter. */
  hasSeatedScope(filter: PlaceFilter): boolean {
    return this.required().seatMap.hasScope(filter);
  }

  /** The best free seats for a request (see SeatMap.findBest). */
  findBestSeats(quantity: number, filter: PlaceFilter, allowSplit: boolean): ReturnType<SeatMap["findBest"]> {
    return this.required().seatMap.findBest(quantity, filter, allowSplit);
  }

  /** General-admission sections matching the filter, with their free places. */
  gaSections(filter: PlaceFilter): { sectionId: string; available: number }[] {
    return [...this.required().sections.values()]
      .filter(
        (s) =>
          s.kind === "general_admission" &&
          (filter.sectionId === undefined || s.section_id === filter.sectionId) &&
          (filter.priceTier === undefined || s.price_tier === filter.priceTier),
      )
      .map((s) => ({ sectionId: s.section_id, available: s.ga_available }));
  }

  /** Seats with their labels and prices, for hold views. */
  seatRefs(seats: number[]): SeatRef[] {
    const memory = this.required();
    return seats.map((seatIndex) => {
      const seat = memory.labels[seatIndex];
      const tier = seat?.priceTier ?? "";
      return {
        seatIndex,
        section: memory.sections.get(seat?.sectionId ?? "")?.label ?? "",
        row: seat?.rowLabel ?? "",
        seat: seat?.label ?? "",
        priceTier: tier,
        priceCents: memory.prices.get(tier) ?? 0,
      };
    });
  }

  /** General-admission places with their section labels and prices, for hold views. */
  gaRefs(items: GaItem[]): GaRef[] {
    const memory = this.required();
    return items.map((item) => {
      const section = memory.sections.get(item.sectionId);
      const tier = section?.price_tier ?? "";
      return { sectionId: item.sectionId, section: section?.label ?? "", quantity: item.quantity, priceTier: tier, priceCents: memory.prices.get(tier) ?? 0 };
    });
  }

  /** A seat's section and price, as Postgres keeps a hold's items. */
  seatItem(seatIndex: number): { sectionId: string; priceCents: number } {
    const memory = this.required();
    const seat = memory.labels[seatIndex];
    return { sectionId: seat?.sectionId ?? "", priceCents: memory.prices.get(seat?.priceTier ?? "") ?? 0 };
  }

  /** Per-section counts and the seat bitmap. */
  availability(): Availability {
    const memory = this.required();
    const bitmap = new Uint8Array(Math.ceil(memory.seatCount / 8));
    for (let seat = 0; seat < memory.seatCount; seat++) if (memory.seatMap.isFree(seat)) setBit(bitmap, seat);
    const sections = [...memory.sections.values()]
      .sort((a, b) => a.sort_order - b.sort_order)
      .map((s) => ({
        sectionId: s.section_id,
        label: s.label,
        kind: s.kind,
        priceTier: s.price_tier,
        capacity: s.capacity,
        available: s.kind === "seated" ? memory.seatMap.freeCount({ sectionId: s.section_id }) : s.ga_available,
      }));
    return { eventId: memory.settings.eventId, seatCount: memory.seatCount, generatedAt: Date.now(), sections, bitmap };
  }

  // ------------------------------------------------------------ changing places

  /** Takes general-admission places in SQLite, refusing to go below zero (inside the caller's transaction). */
  claimGa(items: GaItem[]): void {
    for (const item of items) {
      const claimed = this.sql`UPDATE sections SET ga_available = ga_available - ${item.quantity} WHERE section_id = ${item.sectionId} AND ga_available >= ${item.quantity} RETURNING section_id`;
      if (claimed.toArray().length !== 1) throw new Error("general-admission counter out of step");
    }
  }

  /** Gives general-admission places back in SQLite (inside the caller's transaction). */
  unclaimGa(items: GaItem[]): void {
    for (const item of items) this.sql`UPDATE sections SET ga_available = ga_available + ${item.quantity} WHERE section_id = ${item.sectionId}`;
  }

  /** Takes a recovered hold's general-admission places while loading a snapshot (never below zero). */
  restoreGa(items: GaItem[]): void {
    for (const item of items) this.sql`UPDATE sections SET ga_available = max(ga_available - ${item.quantity}, 0) WHERE section_id = ${item.sectionId}`;
  }

  /** Memory after places were taken (their transaction committed). */
  taken(seats: number[], ga: GaItem[]): void {
    this.adjust(seats, ga, false);
  }

  /** Memory after places came back (their transaction committed). */
  freed(seats: number[], ga: GaItem[]): void {
    this.adjust(seats, ga, true);
  }

  private adjust(seats: number[], ga: GaItem[], free: boolean): void {
    const memory = this.memory;
    if (!memory) return; // rebuilt from SQLite when next needed
    for (const seat of seats) memory.seatMap.setFree(seat, free);
    for (const item of ga) {
      const section = memory.sections.get(item.sectionId);
      if (section) section.ga_available += free ? item.quantity : -item.quantity;
    }
  }

  // ------------------------------------------------------------ memory

  private configRow(): ConfigRow | undefined {
    return this.sql<ConfigRow>`SELECT * FROM config WHERE id = 1`.toArray()[0];
  }

  private required(): Memory {
    const memory = this.loaded();
    if (!memory) throw new Error("inventory not prepared");
    return memory;
  }

  private loaded(): Memory | undefined {
    if (this.memory) return this.memory;
    const row = this.configRow();
    if (!row) return undefined;
    const claimed = new Uint8Array(row.seat_count);
    for (const seat of this.claimedSeats()) claimed[seat] = 1;
    const labels = new Array<SeatLabel | undefined>(row.seat_count);
    const layout = this.sql<SeatRow>`SELECT seat_index, section_id, row_id, row_label, label, position, best_rank, price_tier FROM seats`
      .toArray()
      .map((s) => {
        labels[s.seat_index] = { sectionId: s.section_id, rowLabel: s.row_label, label: s.label, priceTier: s.price_tier };
        return { seatIndex: s.seat_index, sectionId: s.section_id, rowId: s.row_id, position: s.position, bestRank: s.best_rank, priceTier: s.price_tier };
      });
    this.memory = {
      settings: {
        eventId: row.event_id,
        status: row.status,
        saleStartsAt: row.sale_starts_at,
        saleEndsAt: row.sale_ends_at,
        holdTtlMs: row.hold_ttl_ms,
        purchaseLimit: row.purchase_limit,
      },
      seatCount: row.seat_count,
      seatMap: new SeatMap(layout, row.seat_count, (seat) => claimed[seat] !== 1),
      labels,
      prices: new Map(this.sql<{ price_tier: string; price_cents: number }>`SELECT * FROM prices`.toArray().map((p) => [p.price_tier, p.price_cents])),
      sections: new Map(this.sql<SectionRow>`SELECT * FROM sections`.toArray().map((s) => [s.section_id, s])),
    };
    return this.memory;
  }
}
