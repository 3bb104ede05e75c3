// My tickets: every ticket of the signed-in fan with its QR code, by event.
// Coming from checkout (?event=), it waits a little for the new tickets: they
// are written by the sales queue a moment after payment.
import { announce, api, dateTime, el, param, renderAccount, requireSession, showError } from "./api.js";

const WAIT_FOR_NEW_TICKETS_MS = 60_000;
const POLL_INTERVAL_MS = 2_000;
const STATUS_TEXT = { valid: "Valid", checked_in: "Checked in", void: "Void" };
// Why a ticket is void, in plain words, from its order's status.
const VOID_BECAUSE = {
  refunded: "Your order was refunded, so this ticket no longer gets you in.",
  cancelled: "The event was cancelled and your order refunded, so this ticket no longer gets you in.",
  disputed: "Your bank disputed this payment, so this ticket no longer gets you in.",
};
const VOID_BADGE = { refunded: "Void · refunded", cancelled: "Void · event cancelled", disputed: "Void · payment disputed" };

const $ = (id) => document.getElementById(id);
const status = $("status");
const errorRegion = $("error");
const justBoughtFor = param("event");

function ticketCard(ticket) {
  const place = ticket.label;
  const qr = ticket.qrSvg
    ? el("img", { className: "qr", src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(ticket.qrSvg)}`, alt: `QR code for ${place}`, width: 180, height: 180 })
    : el("p", { className: "qr-missing" }, "No QR code: this ticket is void.");
  return el(
    "li",
    { className: `ticket ${ticket.status}` },
    qr,
    el(
      "div",
      { className: "ticket-body" },
      el("p", { className: "ticket-place" }, place),
      el("p", {}, el("span", { className: `badge ticket-status ${ticket.status}` }, statusText(ticket))),
      ticket.status === "void" && VOID_BECAUSE[ticket.orderStatus] ? el("p", { className: "void-reason" }, VOID_BECAUSE[ticket.orderStatus]) : null,
      ticket.checkedInAt ? el("p", { className: "muted" }, `Checked in ${dateTime(ticket.checkedInAt)}`) : null,
      el("p", { className: "muted ticket-id" }, `Ticket ${ticket.id.slice(0, 8)}`),
    ),
  );
}

function statusText(ticket) {
  return (ticket.status === "void" && VOID_BADGE[ticket.orderStatus]) || STATUS_TEXT[ticket.status] || ticket.status;
}

function render(tickets) {
  const byEvent = new Map();
  for (const ticket of tickets) {
    const group = byEvent.get(ticket.event.id) ?? { event: ticket.event, tickets: [] };
    group.tickets.push(ticket);
    byEvent.set(ticket.event.id, group);
  }
  if (byEvent.size === 0) {
    $("tickets").replaceChildren(el("p", {}, "No tickets yet. ", el("a", { href: "/" }, "Find an event")));
    return;
  }
  $("tickets").replaceChildren(
    ...[...byEvent.values()].map(({ event, tickets: list }) =>
      el(
        "section",
        { className: "panel", "aria-labelledby": `event-${event.id}` },
        el("h2", { id: `event-${event.id}` }, event.name),
        el("p", { className: "muted" }, `${event.venue} · ${dateTime(event.startsAt)} · ${list.length} ticket${list.length === 1 ? "" : "s"}`),
        el("ul", { className: "ticket-list" }, ...list.map(ticketCard)),
      ),
    ),
  );
}

async function main() {
  renderAccount($("account"));
  if (!requireSession()) return;
  const started = Date.now();
  for (;;) {
    let tickets;
    try {
      ({ tickets } = await api("/api/me/tickets", { auth: true }));
    } catch (error) {
      announce(status, "");
      showError(errorRegion, error);
      return;
    }
    const waiting = justBoughtFor && !tickets.some((t) => t.event.id === justBoughtFor) && Date.now() - started < WAIT_FOR_NEW_TICKETS_MS;
    render(tickets);
    if (!waiting) {
      const late = justBoughtFor && !tickets.some((t) => t.event.id === justBoughtFor);
      const count = tickets.length === 0 ? "You have no tickets yet." : `${tickets.length} ticket${tickets.length === 1 ? "" : "s"}.`;
      announce(status, late ? `${count} Your new tickets are taking longer than usual; they will be emailed to you, and appear here shortly.` : count);
      return;
    }
    announce(status, "Issuing your new tickets…");
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

void main();
