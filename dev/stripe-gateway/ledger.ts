/**
 * The ledger: every resource's objects, and the API routes that reach them.
 * A new resource is a file of its own (a class holding its objects, with
 * `routes()`), added here.
 */
import { Charges } from "./charges.ts";
import { Disputes } from "./disputes.ts";
import type { EmitEvent } from "./exchange.ts";
import type { FaultBook } from "./faults.ts";
import { PaymentIntents } from "./payment-intents.ts";
import { PaymentMethods } from "./payment-methods.ts";
import { Refunds } from "./refunds.ts";
import type { Route } from "./routes.ts";

export class Ledger {
  readonly paymentMethods = new PaymentMethods();
  readonly charges = new Charges();
  readonly paymentIntents: PaymentIntents;
  readonly refunds: Refunds;
  readonly disputes: Disputes;
  private readonly routes: Route[];

  constructor(faults: FaultBook, emit: EmitEvent) {
    // A dispute test card's charge is disputed once captured (this.disputes exists by then).
    this.paymentIntents = new PaymentIntents(this.paymentMethods, this.charges, faults, emit, (charge, kind, exchange) => this.disputes.openOnCharge(charge, kind, exchange));
    this.disputes = new Disputes(this.paymentIntents, this.charges, emit);
    this.refunds = new Refunds(this.paymentIntents, this.charges, this.disputes, emit);
    this.routes = [...this.paymentIntents.routes(), ...this.paymentMethods.routes(), ...this.refunds.routes(), ...this.disputes.routes(), ...this.charges.routes()];
  }

  /** The route for an API request, with the id its path names; undefined when there is none. */
  findRoute(method: string, path: string): { route: Route; id: string | undefined } | undefined {
    for (const route of this.routes) {
      const match = route.method === method ? route.pattern.exec(path) : null;
      if (match) return { route, id: match[1] === undefined ? undefined : decodeURIComponent(match[1]) };
    }
    return undefined;
  }
}
