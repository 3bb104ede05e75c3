// An order's status in words, for the console's orders table: a dispute with Stripe's reason
// and where it stands, and a partial refund made in the Stripe dashboard (its tickets stay valid).
// Plain text in the Status cell, so a screen reader reads it as it is shown.

/** Stripe's dispute statuses, as an organizer says them (an inquiry is a "warning_" dispute, no chargeback yet). */
const DISPUTE_STATUSES = {
  warning_needs_response: "inquiry, needs response",
  warning_under_review: "inquiry, under review",
  warning_closed: "inquiry closed",
  needs_response: "needs response",
  under_review: "under review",
  won: "won",
  lost: "lost",
  prevented: "prevented",
};

/** Stripe's words (`product_not_received`) as words ("product not received"). */
const words = (code) => code.replaceAll("_", " ");

/** "disputed: fraudulent (needs response)": a dispute's reason and status as Stripe reported them. */
export function disputeText(dispute) {
  return `disputed: ${words(dispute.reason)} (${DISPUTE_STATUSES[dispute.status] ?? words(dispute.status)})`;
}

/**
 * The Status cell of an order (`status`, `totalCents`, `refundedCents`, `currency`, `dispute`
 * as GET /admin/events/{id}/orders answers): "confirmed", "disputed: fraudulent (needs response)",
 * "confirmed, $12.00 of $50.00 refunded". `money(cents, currency)` formats an amount.
 */
export function orderStatusText(order, money) {
  let text = order.status;
  if (order.dispute) text = order.status === "disputed" ? disputeText(order.dispute) : `${order.status}; ${disputeText(order.dispute)}`;
  // A refunded or cancelled order was refunded in full: its status says so already.
  if ((order.status === "confirmed" || order.status === "disputed") && order.refundedCents > 0) {
    text +=
      order.refundedCents >= order.totalCents
        ? ", refunded in full"
        : `, ${money(order.refundedCents, order.currency)} of ${money(order.totalCents, order.currency)} refunded`;
  }
  return text;
}
