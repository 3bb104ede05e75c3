/**
 * Holds in a hot event's `EventInventory` Durable Object, seen from the
 * Worker: one RPC per call, except holds, which concurrent requests in this
 * isolate share (holds/hold-lane.ts).
 */
import type { Availability, ConfirmRequest, HoldChangeResult, HoldRequest, HoldResult, HoldView, Inventory, OpenPlaces, ReleaseRequest, UnsellRequest } from "../../core/holds/contract";
import { IsolateCache } from "../../core/isolate-cache";
import { HoldLane, type KeepAlive } from "./hold-lane";

/** One lane per hot event, per isolate (a lane dropped while busy still serves its waiters; the next hold starts a new one). */
const lanes = new IsolateCache<string, HoldLane>(1_000);

/** `Inventory` backed by the event's Durable Object. */
export class DurableInventory implements Inventory {
  constructor(
    private readonly namespace: Env["EVENT_INVENTORY"],
    private readonly eventId: string,
    /** The request's waitUntil: a request that sent a batch goes on sending the others' holds in it. */
    private readonly keepAlive: KeepAlive,
  ) {}

  private stub() {
    return this.namespace.getByName(this.eventId);
  }

  hold(request: HoldRequest): Promise<HoldResult> {
    let lane = lanes.get(this.eventId);
    if (!lane) {
      lane = new HoldLane();
      lanes.set(this.eventId, lane);
    }
    return lane.hold((requests) => this.stub().applyHolds(requests), this.keepAlive, request);
  }

  release(request: ReleaseRequest): Promise<HoldChangeResult> {
    return this.stub().release(request);
  }

  confirm(request: ConfirmRequest): Promise<HoldChangeResult> {
    return this.stub().confirm(request);
  }

  unsell(request: UnsellRequest): Promise<HoldChangeResult> {
    return this.stub().unsell(request);
  }

  getHold(holdId: string, accountId?: string): Promise<HoldView | null> {
    return this.stub().getHold(holdId, accountId);
  }

  accountHolds(accountId: string): Promise<HoldView[]> {
    return this.stub().accountHolds(accountId);
  }

  availability(): Promise<Availability> {
    return this.stub().availability();
  }

  openTo(accountId: string): Promise<OpenPlaces> {
    return this.stub().openTo(this.eventId, accountId);
  }
}
