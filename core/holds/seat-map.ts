/**
 * Best-available assignment over an in-memory seat map: rows ordered by their
 * best seat's rank, each row's seats by position, with free counts per row so
 * full rows are skipped at once. Pure; shared by both inventories.
 */

/** What the seat map needs to know about a seat. */
export interface SeatLayout {
  seatIndex: number;
  sectionId: string;
  rowId: string;
  position: number;
  bestRank: number;
  priceTier: string;
}

/** A row of the chart: never changes. */
interface ChartRow {
  sectionId: string;
  priceTier: string;
  rank: number;
  /** Seat indexes in position order. */
  seats: readonly number[];
  /** Rank of each seat, same order. */
  ranks: readonly number[];
}

interface Row extends ChartRow {
  free: number;
}

/** Which seats a best-available request may use. */
export interface SeatFilter {
  priceTier?: string | undefined;
  sectionId?: string | undefined;
}

/** The outcome of a best-available search. */
export type BestAvailable = { found: true; seats: number[] } | { found: false; freeInScope: number };

/**
 * The fixed part of a seat map: rows ordered by their best seat's rank, each
 * row's seats by position. Built once per chart and shared by the maps made
 * from it (`new SeatMap(chart, ...)`), which then only add free/taken state.
 */
export class SeatChart {
  readonly rows: readonly ChartRow[];
  readonly rowOf: Int32Array;
  readonly exists: Uint8Array;

  constructor(
    layout: Iterable<SeatLayout>,
    readonly seatCount: number,
  ) {
    this.exists = new Uint8Array(seatCount);
    this.rowOf = new Int32Array(seatCount).fill(-1);
    const byRow = new Map<string, SeatLayout[]>();
    for (const seat of layout) {
      const list = byRow.get(seat.rowId);
      if (list) list.push(seat);
      else byRow.set(seat.rowId, [seat]);
    }
    const rows = [...byRow.values()].map((seats): ChartRow => {
      seats.sort((a, b) => a.position - b.position);
      const first = seats[0] as SeatLayout;
      return {
        sectionId: first.sectionId,
        priceTier: first.priceTier,
        rank: Math.min(...seats.map((s) => s.bestRank)),
        seats: seats.map((s) => s.seatIndex),
        ranks: seats.map((s) => s.bestRank),
      };
    });
    rows.sort((a, b) => a.rank - b.rank);
    rows.forEach((row, r) => {
      for (const seatIndex of row.seats) {
        this.rowOf[seatIndex] = r;
        this.exists[seatIndex] = 1;
      }
    });
    this.rows = rows;
  }
}

/** Free/taken state of every seat plus the row index that makes best available fast. */
export class SeatMap {
  private readonly free: Uint8Array;
  private readonly rowOf: Int32Array;
  private readonly rows: Row[];
  private readonly exists: Uint8Array;

  /** A map of `layout` (or of a chart built from it before), each seat free or taken per `isFree`. */
  constructor(layout: Iterable<SeatLayout> | SeatChart, seatCount: number, isFree: (seatIndex: number) => boolean) {
    const chart = layout instanceof SeatChart ? layout : new SeatChart(layout, seatCount);
    this.free = new Uint8Array(chart.seatCount);
    this.exists = chart.exists;
    this.rowOf = chart.rowOf;
    this.rows = chart.rows.map((chartRow) => {
      const row: Row = { ...chartRow, free: 0 };
      for (const seatIndex of row.seats) {
        if (isFree(seatIndex)) {
          this.free[seatIndex] = 1;
          row.free++;
        }
      }
      return row;
    });
  }

  /** True when `seatIndex` is a seat of this map. */
  has(seatIndex: number): boolean {
    return Number.isInteger(seatIndex) && seatIndex >= 0 && seatIndex < this.exists.length && this.exists[seatIndex] === 1;
  }

  /** True when the seat is free. */
  isFree(seatIndex: number): boolean {
    return this.free[seatIndex] === 1;
  }

  /** Marks a seat free or taken. */
  setFree(seatIndex: number, free: boolean): void {
    const was = this.free[seatIndex] === 1;
    if (was === free) return;
    this.free[seatIndex] = free ? 1 : 0;
    const row = this.rows[this.rowOf[seatIndex] ?? -1];
    if (row) row.free += free ? 1 : -1;
  }

  /** Free seats matching a filter. */
  freeCount(filter: SeatFilter = {}): number {
    let count = 0;
    for (const row of this.rows) if (matches(row, filter)) count += row.free;
    return count;
  }

  /** True when some seat matches the filter at all (free or not). */
  hasScope(filter: SeatFilter): boolean {
    return this.rows.some((row) => matches(row, filter));
  }

  /**
   * The best `quantity` free seats in scope: the best-ranked row holding
   * `quantity` adjacent free seats, and within it the block with the lowest
   * total rank (closest to the middle). With `allowSplit`, when no row has
   * such a block, the best-ranked free seats wherever they are.
   */
  findBest(quantity: number, filter: SeatFilter, allowSplit: boolean): BestAvailable {
    for (const row of this.rows) {
      if (row.free < quantity || !matches(row, filter)) continue;
      const block = this.bestBlock(row, quantity);
      if (block) return { found: true, seats: block };
    }
    const freeInScope = this.freeCount(filter);
    if (!allowSplit || freeInScope < quantity) return { found: false, freeInScope };
    const picked: { seat: number; rank: number }[] = [];
    for (const row of this.rows) {
      if (row.free === 0 || !matches(row, filter)) continue;
      row.seats.forEach((seat, i) => {
        if (this.free[seat] === 1) picked.push({ seat, rank: row.ranks[i] ?? 0 });
      });
      if (picked.length >= quantity * 4) break;
    }
    picked.sort((a, b) => a.rank - b.rank);
    return { found: true, seats: picked.slice(0, quantity).map((p) => p.seat) };
  }

  private bestBlock(row: Row, quantity: number): number[] | undefined {
    let bestStart = -1;
    let bestScore = Infinity;
    let run = 0;
    let score = 0;
    for (let i = 0; i < row.seats.length; i++) {
      const seat = row.seats[i] as number;
      if (this.free[seat] !== 1) {
        run = 0;
        score = 0;
        continue;
      }
      run++;
      score += row.ranks[i] ?? 0;
      if (run > quantity) score -= row.ranks[i - quantity] ?? 0;
      if (run >= quantity && score < bestScore) {
        bestScore = score;
        bestStart = i - quantity + 1;
      }
    }
    return bestStart < 0 ? undefined : row.seats.slice(bestStart, bestStart + quantity);
  }
}

function matches(row: Row, filter: SeatFilter): boolean {
  return (filter.priceTier === undefined || row.priceTier === filter.priceTier) && (filter.sectionId === undefined || row.sectionId === filter.sectionId);
}
