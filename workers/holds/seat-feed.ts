/**
 * Tells a calm event's `SeatMapFeed` about every seat a hold, release,
 * confirmation or unsell changed. Publishing runs after the response
 * (`keepAlive`), so fans never wait for it, and its failures are only logged:
 * viewers who miss an update still poll the availability bitmap.
 */
import type { HoldChangeResult, HoldView, Inventory } from "../../core/holds/contract";
import { log } from "../../core/logger";

/** The `SeatMapFeed` object's RPC stub, typed from the binding (the Worker does not import the object's module). */
type SeatMapFeedStub = ReturnType<Env["SEAT_MAP_FEED"]["getByName"]>;
/** One seat's new state, as the feed takes it. */
type SeatChange = Parameters<SeatMapFeedStub["publish"]>[0][number];
/** When a hold's seats come free unless something else happens first, as the feed takes it. */
type SeatExpiry = NonNullable<Parameters<SeatMapFeedStub["publish"]>[1]>[number];

/** Where seat changes go: the event's `SeatMapFeed` stub. */
export interface SeatFeed {
  publish(changes: SeatChange[], expiries?: SeatExpiry[]): Promise<unknown>;
}

/** `inventory`, publishing its seat changes to `feed`. */
export function withSeatFeed(inventory: Inventory, feed: SeatFeed, keepAlive: (promise: Promise<unknown>) => void): Inventory {
  const publish = (hold: HoldView, available: boolean, expiries: SeatExpiry[] = []) => {
    if (hold.seats.length === 0) return;
    const changes: SeatChange[] = hold.seats.map((seat) => ({ seatIndex: seat.seatIndex, available }));
    keepAlive(
      // A change to a seat also cancels its scheduled expiry, so release and confirm need nothing more.
      Promise.resolve()
        .then(() => feed.publish(changes, expiries))
        .catch((error: unknown) => {
          log.warn("seat_feed_publish_failed", { eventId: hold.eventId, error: String(error) });
        }),
    );
  };
  const after = (result: HoldChangeResult, onHold: (hold: HoldView) => void): HoldChangeResult => {
    if (result.ok) onHold(result.hold);
    return result;
  };

  return {
    async hold(request) {
      return after(await inventory.hold(request), (hold) => {
        // A retried request may replay a hold that has since ended.
        if (hold.status !== "live") return;
        publish(hold, false, [{ holdId: hold.holdId, seatIndexes: hold.seats.map((seat) => seat.seatIndex), at: hold.expiresAt }]);
      });
    },
    async release(request) {
      return after(await inventory.release(request), (hold) => publish(hold, true));
    },
    async confirm(request) {
      // Sold seats stay taken; republishing them also covers a hold paid for after its expiry was announced.
      return after(await inventory.confirm(request), (hold) => publish(hold, false));
    },
    async unsell(request) {
      return after(await inventory.unsell(request), (hold) => publish(hold, true));
    },
    getHold: (holdId, accountId) => inventory.getHold(holdId, accountId),
    accountHolds: (accountId) => inventory.accountHolds(accountId),
    availability: () => inventory.availability(),
    openTo: (accountId) => inventory.openTo(accountId),
  };
}
