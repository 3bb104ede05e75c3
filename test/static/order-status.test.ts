/** The orders table's Status cell (static/console/order-status.js, imported as the browser imports it): disputes and partial refunds in words. */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

interface Order {
  status: "confirmed" | "refunded" | "cancelled" | "disputed";
  totalCents: number;
  refundedCents: number;
  currency: string;
  dispute: { reason: string; status: string } | null;
}
interface OrderStatusModule {
  orderStatusText(order: Order, money: (cents: number, currency: string) => string): string;
}

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../static/console/order-status.js");
const { orderStatusText } = (await import(pathToFileURL(file).href)) as OrderStatusModule;
const money = (cents: number, currency: string) => new Intl.NumberFormat("en-US", { style: "currency", currency }).format(cents / 100);
const order = (changes: Partial<Order>): Order => ({ status: "confirmed", totalCents: 5_000, refundedCents: 0, currency: "USD", dispute: null, ...changes });

describe("an order's status in the console", () => {
  it("is the status alone for an order with no dispute and no partial refund", () => {
    expect(orderStatusText(order({}), money)).toBe("confirmed");
    expect(orderStatusText(order({ status: "refunded", refundedCents: 5_000 }), money)).toBe("refunded");
    expect(orderStatusText(order({ status: "cancelled", refundedCents: 5_000 }), money)).toBe("cancelled");
  });

  it("names a dispute's reason and where it stands, in words", () => {
    expect(orderStatusText(order({ status: "disputed", dispute: { reason: "fraudulent", status: "needs_response" } }), money)).toBe("disputed: fraudulent (needs response)");
    expect(orderStatusText(order({ status: "disputed", dispute: { reason: "product_not_received", status: "under_review" } }), money)).toBe("disputed: product not received (under review)");
    expect(orderStatusText(order({ status: "disputed", dispute: { reason: "fraudulent", status: "won" } }), money)).toBe("disputed: fraudulent (won)");
    expect(orderStatusText(order({ status: "disputed", dispute: { reason: "duplicate", status: "lost" } }), money)).toBe("disputed: duplicate (lost)");
    expect(orderStatusText(order({ status: "disputed", dispute: { reason: "general", status: "warning_needs_response" } }), money)).toBe("disputed: general (inquiry, needs response)");
    expect(orderStatusText(order({ status: "disputed", dispute: { reason: "general", status: "some_new_status" } }), money)).toBe("disputed: general (some new status)");
  });

  it("says how much of the total a partial refund returned, and a dispute after a refund", () => {
    expect(orderStatusText(order({ refundedCents: 1_200 }), money)).toBe("confirmed, $12.00 of $50.00 refunded");
    expect(orderStatusText(order({ status: "disputed", refundedCents: 5_000, dispute: { reason: "duplicate", status: "needs_response" } }), money)).toBe("disputed: duplicate (needs response), refunded in full");
    expect(orderStatusText(order({ status: "refunded", refundedCents: 5_000, dispute: { reason: "fraudulent", status: "needs_response" } }), money)).toBe("refunded; disputed: fraudulent (needs response)");
  });
});
