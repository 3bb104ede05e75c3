/** The Worker's side of a hot event's inventory: RPC to its `EventInventory` object, with holds coalesced. */
import type { Availability, ConfirmRequest, HoldChangeResult, HoldRequest, HoldResult, HoldView, Inventory, ReleaseRequest } from "./contract";
import { Coalescer } from "./hold-coalescer";

/** One coalescer per isolate: concurrent fans of one event share object calls. */
const holds = new Coalescer<HoldRequest, HoldResult>();

/** `Inventory` backed by the event's Durable Object. */
export class DurableInventory implements Inventory {
  constructor(
    private readonly namespace: DurableObjectNamespace<import("../index").EventInventory>,
    private readonly eventId: string,
    private readonly keepAlive: (promise: Promise<unknown>) => void,
  ) {}

  private stub() {
    return this.namespace.getByName(this.eventId);
  }

  hold(request: HoldRequest): Promise<HoldResult> {
    return holds.submit(this.eventId, request, (batch) => this.stub().applyHolds(batch), this.keepAlive);
  }

  release(request: ReleaseRequest): Promise<HoldChangeResult> {
    return this.stub().release(request);
  }

  confirm(request: ConfirmRequest): Promise<HoldChangeResult> {
    return this.stub().confirm(request);
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
