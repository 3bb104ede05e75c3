/**
 * The Worker's side of a hot event's inventory: one RPC to its
 * `EventInventory` object per call. (Holds are not coalesced across requests:
 * workerd cancels a request that waits on another request's promise, and the
 * benchmark showed no gain from polling hand-overs locally; see README.)
 */
import type { Availability, ConfirmRequest, HoldChangeResult, HoldRequest, HoldResult, HoldView, Inventory, ReleaseRequest, UnsellRequest } from "./contract";

/** `Inventory` backed by the event's Durable Object. */
export class DurableInventory implements Inventory {
  constructor(
    private readonly namespace: DurableObjectNamespace<import("../index").EventInventory>,
    private readonly eventId: string,
  ) {}

  private stub() {
    return this.namespace.getByName(this.eventId);
  }

  hold(request: HoldRequest): Promise<HoldResult> {
    return this.stub().hold(request);
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
}
