/**
 * The seat-inventory contract. Two implementations keep it, chosen per event by
 * its demand class: the `EventInventory` Durable Object (hot events) and
 * `PostgresInventory` (calm events, optimistic locking). One contract test
 * suite runs against both.
 */

/** Why a hold, release or confirmation was refused. Each maps to its own HTTP status and code. */
export type InventoryFailure =
  /** A requested seat is held or sold by someone else (409). */
  | "seat_taken"
  /** Nothing (or not enough) left in the requested tier/section (409). */
  | "sold_out"
  /** The account's live holds plus purchases would exceed the event's purchase limit (409). */
  | "over_limit"
  /** Another hold attempt with the same attempt key within 5 s (429). */
  | "too_fast"
  /** The hold expired or was released before it could be confirmed (409). */
  | "hold_expired"
  /** No such hold for this account (404). */
  | "hold_not_found"
  /** The hold is already paid for and cannot be released (409). */
  | "hold_confirmed"
  /** A seat index that does not exist, a GA section asked for by seat, or a filter that matches nothing (400). */
  | "invalid_seat"
  /** The event is not on sale (not yet open, ended, cancelled, or not prepared) (409). */
  | "not_on_sale"
  /** The hold was never paid for, so it has no sold places to return (409). */
  | "not_sold";

/** Minimum spacing between two hold attempts with the same attempt key. */
export const ATTEMPT_INTERVAL_MS = 5_000;
/** Random extra TTL per hold (seed "Staggered TTLs"). */
export const HOLD_JITTER_MS = 60_000;
/** Largest best-available request. */
export const MAX_BEST_AVAILABLE = 8;
/** Most seats one request may name. */
export const MAX_SEATS_PER_HOLD = 50;

/** A seat as fans see it. */
export interface SeatRef {
  seatIndex: number;
  section: string;
  row: string;
  seat: string;
  priceTier: string;
  priceCents: number;
}

/** General-admission places in a hold. */
export interface GaRef {
  sectionId: string;
  section: string;
  quantity: number;
  priceTier: string;
  priceCents: number;
}

/** A hold as the inventory reports it. */
export interface HoldView {
  holdId: string;
  eventId: string;
  accountId: string;
  /** `refunded`: it was confirmed, then its places went back to the pool (`unsell`). */
  status: "live" | "confirmed" | "released" | "expired" | "refunded";
  /** Epoch milliseconds. */
  expiresAt: number;
  createdAt: number;
  seats: SeatRef[];
  generalAdmission: GaRef[];
  totalCents: number;
}

/** Who is asking, and the keys that make the call idempotent and rate-limited. */
export interface Caller {
  accountId: string;
  /** Unique per logical request: a retry with the same id gets the first result. */
  requestId: string;
}

/** Hold these exact seats (interactive seat map). */
export interface HoldSeatsRequest extends Caller {
  kind: "seats";
  /** What the one-attempt-per-5-s limit counts: the account for a fan session (all its sessions share it), the admission token's id for an admission. */
  attemptKey: string;
  seatIndexes: number[];
}

/** Hold the best `quantity` places in a price tier or section. */
export interface HoldBestRequest extends Caller {
  kind: "best";
  attemptKey: string;
  quantity: number;
  priceTier?: string | undefined;
  sectionId?: string | undefined;
  /** Accept seats spread over rows when no adjacent block exists. */
  allowSplit: boolean;
  /** A waitlist offer (its pass): it may take places that came back lately, which are kept from every other hold until the pass has offered them. */
  forWaitlist?: boolean | undefined;
}

/** Any hold request. */
export type HoldRequest = HoldSeatsRequest | HoldBestRequest;

/** The outcome of a hold. */
export type HoldResult = { ok: true; hold: HoldView } | { ok: false; reason: InventoryFailure; message: string };

/** Release a live hold (its owner only). */
export interface ReleaseRequest extends Caller {
  holdId: string;
}

/** Mark a hold's places sold (after payment). */
export interface ConfirmRequest {
  requestId: string;
  holdId: string;
  /**
   * Confirm even if the hold lapsed, as long as the same places are still free (paid after expiry). A late
   * confirm refused is refused again under the same requestId, whatever frees up later: its payment is refunded.
   */
  allowLapsed: boolean;
}

/**
 * Return a confirmed hold's places to the pool (the organizer refunded or
 * cancelled it): the hold becomes `refunded`, its seats free, its
 * general-admission places back in their counters, and its places no longer
 * count towards the account's purchase limit. Unselling a refunded hold
 * returns it unchanged.
 */
export interface UnsellRequest {
  requestId: string;
  holdId: string;
}

/** The outcome of a release, confirmation or unsell. */
export type HoldChangeResult = HoldResult;

/** Per-section availability plus a bitmap of every seat (1 = available). */
export interface Availability {
  eventId: string;
  seatCount: number;
  /** Epoch milliseconds when this was computed. */
  generatedAt: number;
  sections: {
    sectionId: string;
    label: string;
    kind: "seated" | "general_admission";
    priceTier: string | null;
    capacity: number;
    available: number;
  }[];
  /** ceil(seatCount / 8) bytes, seat i at bit (7 - i % 8) of byte floor(i / 8). */
  bitmap: Uint8Array;
}

/**
 * The places open to one account now, as the waitlist asks before letting
 * it join: the availability (for the split by price tier), and how many of
 * those places the account may take, in any scope. At a hot event that
 * leaves out the places kept for the waitlist's pass (returned after a
 * sell-out) and those promised to other admitted fans: 0 whenever the
 * waiting room says sold out. At a calm event it is every free place.
 */
export interface OpenPlaces {
  availability: Availability;
  forAccount: number;
}

/** What both inventory implementations do. */
export interface Inventory {
  hold(request: HoldRequest): Promise<HoldResult>;
  release(request: ReleaseRequest): Promise<HoldChangeResult>;
  confirm(request: ConfirmRequest): Promise<HoldChangeResult>;
  unsell(request: UnsellRequest): Promise<HoldChangeResult>;
  getHold(holdId: string, accountId?: string): Promise<HoldView | null>;
  accountHolds(accountId: string): Promise<HoldView[]>;
  availability(): Promise<Availability>;
  openTo(accountId: string): Promise<OpenPlaces>;
}

/** Human messages for refusals. */
export const FAILURE_MESSAGES: Record<InventoryFailure, string> = {
  seat_taken: "One or more of those seats were just taken. Pick other seats or try best available.",
  sold_out: "Not enough places are left for that request.",
  over_limit: "That would exceed this event's purchase limit for your account.",
  too_fast: "One hold attempt per 5 seconds, please wait a moment.",
  hold_expired: "That hold has expired or was released.",
  hold_not_found: "No such hold.",
  hold_confirmed: "That hold is already paid for; ask the organizer for a refund instead.",
  invalid_seat: "That seat or section does not exist at this event.",
  not_on_sale: "This event is not on sale right now.",
  not_sold: "That hold was never paid for, so there is nothing to return.",
};

/** A refusal with its standard message. */
export function refuse(reason: InventoryFailure, message = FAILURE_MESSAGES[reason]): { ok: false; reason: InventoryFailure; message: string } {
  return { ok: false, reason, message };
}

/**
 * A refusal for bad input (HTTP 400): the request names a seat, section or
 * price tier the event does not have. It changes nothing: no attempt counted
 * against the per-fan interval, no answer kept for its request id.
 */
export function isBadInput(result: HoldResult): boolean {
  return !result.ok && result.reason === "invalid_seat";
}

/** Sets seat `index` in a bitmap. */
export function setBit(bitmap: Uint8Array, index: number): void {
  bitmap[index >> 3] = (bitmap[index >> 3] ?? 0) | (0x80 >> (index & 7));
}
