// Placeholder until PostgresInventory lands (being written now): keeps the Worker building.
import type { Db } from "../db/client";
import type { Availability, ConfirmRequest, HoldChangeResult, HoldRequest, HoldResult, HoldView, Inventory, ReleaseRequest } from "./contract";

export class PostgresInventory implements Inventory {
  constructor(
    readonly db: Db,
    readonly eventId: string,
    readonly clock: () => number = Date.now,
  ) {}
  hold(_request: HoldRequest): Promise<HoldResult> {
    throw new Error("not implemented");
  }
  release(_request: ReleaseRequest): Promise<HoldChangeResult> {
    throw new Error("not implemented");
  }
  confirm(_request: ConfirmRequest): Promise<HoldChangeResult> {
    throw new Error("not implemented");
  }
  getHold(_holdId: string): Promise<HoldView | null> {
    throw new Error("not implemented");
  }
  accountHolds(_accountId: string): Promise<HoldView[]> {
    throw new Error("not implemented");
  }
  availability(): Promise<Availability> {
    throw new Error("not implemented");
  }
}
