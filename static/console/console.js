// The organizer console: one page over the admin API (/admin, its OpenAPI document at
// /admin/openapi.json). The API key is kept in this module's memory only, never in
// localStorage or a cookie: reloading the page signs the organizer out. Views are
// switched by the address's fragment (#/events, #/events/<id>, #/new-venue, #/new-event, #/keys, #/audit, #/webhooks)
// so moving between them never reloads the page and never loses the key.
import { dateTime, el, money } from "/js/api.js";
import { chartSummary, fromUtcInput, toUtcInput } from "/console/chart.js";
import { historyChart } from "/console/history-chart.js";
import { botFlagsPanel } from "/console/bot-flags.js";
import { keysAndAudit } from "/console/keys.js";
import { orderStatusText } from "/console/order-status.js";
import { pagedTable } from "/console/paged-table.js";
import { confirmFirst, rowButton } from "/console/row-buttons.js";
import { webhooksView } from "/console/webhooks.js";

/** How often the live sale panel refreshes. */
const LIVE_INTERVAL_MS = 2_000;

const $ = (id) => document.getElementById(id);

let apiKey = null;
const NAV_LINKS = ["nav-events", "nav-venue", "nav-event", "nav-keys", "nav-audit", "nav-webhooks"];
let liveTimer = 0;
let openEvent = null;
/** The chart the preview last accepted (what "Save venue" sends). */
let previewedChart = null;

/** An answer of the admin API that is not a success: its `{ error: { code, message } }`, or a network failure. */
class AdminError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Calls the admin API with the key; returns the JSON body of a 2xx answer, throws AdminError otherwise. */
async function admin(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${apiKey}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/admin${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new AdminError(0, "network", "The admin API could not be reached. Check your connection and try again.");
  }
  const data = await response.json().catch(() => undefined);
  if (response.ok) return data;
  if (response.status === 401) signOut("Your API key was refused (unknown, revoked or expired). Sign in again.");
  const error = data?.error;
  throw new AdminError(response.status, String(error?.code ?? "http_error"), String(error?.message ?? `HTTP ${response.status}`), error?.details);
}

function say(text) {
  $("status").textContent = text;
}

/** Shows an error (with the API's validation details, when any) in the alert region; null clears it. */
function showError(error) {
  const region = $("error");
  region.replaceChildren();
  region.hidden = error === null;
  if (error === null) return;
  region.append(error instanceof AdminError || error instanceof Error ? error.message : String(error));
  if (error instanceof AdminError && error.details !== undefined) {
    const issues = Array.isArray(error.details) ? error.details : Array.isArray(error.details?.issues) ? error.details.issues : [];
    if (issues.length > 0) {
      region.append(el("ul", {}, ...issues.slice(0, 8).map((issue) => el("li", {}, `${issue.path || "body"}: ${issue.message ?? ""}`))));
    }
  }
}

/** Runs an action, showing its failure instead of throwing. */
async function attempt(action) {
  showError(null);
  try {
    await action();
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- signing in and out

function signOut(message) {
  apiKey = null;
  stopLive();
  $("account").replaceChildren();
  for (const id of NAV_LINKS) $(id).hidden = true;
  showOnly("signin");
  say(message ?? "Signed out.");
}

$("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(async () => {
    apiKey = $("api-key").value.trim();
    $("api-key").value = "";
    const me = await admin("GET", "/me");
    const button = el("button", { type: "button", className: "link-button" }, "Sign out");
    button.addEventListener("click", () => signOut());
    $("account").replaceChildren(el("span", { className: "muted" }, `Signed in as ${me.name}`), " ", button);
    for (const id of NAV_LINKS) $(id).hidden = false;
    say(`Signed in as ${me.name}.`);
    if (!location.hash || location.hash === "#") location.hash = "#/events";
    else await route();
  });
});

// ---------------------------------------------------------------- views

const VIEWS = ["signin", "events-view", "venue-view", "new-event-view", "event-view", "keys-view", "audit-view", "webhooks-view"];
const keyViews = keysAndAudit({ admin, attempt, say });
const webhooks = webhooksView({ admin, attempt, say });
const botFlags = botFlagsPanel({ admin, attempt, say });

function showOnly(id) {
  for (const view of VIEWS) $(view).hidden = view !== id;
}

async function route() {
  stopLive();
  if (apiKey === null) {
    showOnly("signin");
    return;
  }
  const hash = location.hash.replace(/^#\/?/, "");
  const [view, id] = hash.split("/");
  if (view === "events" && id) await showEvent(id);
  else if (view === "new-venue") showVenueForm();
  else if (view === "keys") {
    showOnly("keys-view");
    await keyViews.showKeys();
  } else if (view === "audit") {
    showOnly("audit-view");
    await keyViews.showAudit();
  } else if (view === "webhooks") {
    showOnly("webhooks-view");
    await webhooks.show();
  }
  else if (view === "new-event") await showEventForm(id);
  else if (view === "edit-event" && id) await showEditForm(id);
  else await showEvents();
}

window.addEventListener("hashchange", () => attempt(route));

async function showEvents() {
  showOnly("events-view");
  const { events } = await admin("GET", "/events");
  const rows = events.map((event) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: `#/events/${event.id}` }, event.name)),
      el("td", {}, event.venueName),
      el("td", {}, dateTime(event.startsAt)),
      el("td", {}, event.demandClass),
      el("td", {}, event.status),
    ),
  );
  $("events-list").replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colSpan: 5 }, "No events yet: create a venue, then an event."))]));
}

// ---------------------------------------------------------------- venues

function showVenueForm() {
  showOnly("venue-view");
}

$("chart-file").addEventListener("change", async () => {
  const file = $("chart-file").files?.[0];
  if (!file) return;
  $("chart-text").value = await file.text();
  preview();
});
$("chart-text").addEventListener("input", () => {
  previewedChart = null;
  $("venue-save").disabled = true;
});
$("chart-preview-button").addEventListener("click", () => preview());

/** Shows the chart's sections, rows and counts; enables saving when it reads as a chart. */
function preview() {
  showError(null);
  previewedChart = null;
  $("venue-save").disabled = true;
  let chart;
  try {
    chart = JSON.parse($("chart-text").value);
  } catch {
    showError(new Error("The chart is not valid JSON."));
    $("chart-preview").replaceChildren();
    return;
  }
  const summary = chartSummary(chart);
  if (summary.problem) {
    showError(new Error(summary.problem));
    $("chart-preview").replaceChildren();
    return;
  }
  const rows = summary.sections.map((s) => el("tr", {}, el("td", {}, s.label), el("td", {}, s.priceTier), el("td", {}, s.rows === 0 ? "standing" : String(s.rows)), el("td", {}, String(s.places))));
  $("chart-preview").replaceChildren(
    el(
      "table",
      {},
      el("caption", {}, `${summary.name}: ${summary.sections.length} sections, ${summary.capacity} places, tiers ${summary.priceTiers.join(", ")}`),
      el("thead", {}, el("tr", {}, ...["Section", "Tier", "Rows", "Places"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows),
    ),
  );
  previewedChart = chart;
  $("venue-save").disabled = false;
  say(`Preview of ${summary.name}: ${summary.capacity} places.`);
}

$("venue-form").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(async () => {
    if (previewedChart === null) throw new Error("Preview the chart before saving it.");
    const venue = await admin("POST", "/venues", previewedChart);
    previewedChart = null;
    $("venue-save").disabled = true;
    $("chart-text").value = "";
    $("chart-preview").replaceChildren();
    say(`Venue ${venue.name} saved (${venue.capacity} places).`);
    location.hash = `#/new-event/${venue.id}`;
  });
});

// ---------------------------------------------------------------- events

/** The event being edited (and the form's body as prefilled from it), or null when the form creates one. */
let editing = null;

/** Sets the one event form up for creating (`event` null) or editing `event`. */
function eventFormMode(event) {
  $("event-form").reset();
  $("new-event-heading").textContent = event ? "Edit event" : "New event";
  $("event-submit").textContent = event ? "Save changes" : "Create event";
  $("event-venue").disabled = event !== null;
  $("event-publish-field").hidden = event !== null && event.status === "published";
  editing = null;
}

async function showEventForm(venueId) {
  showOnly("new-event-view");
  eventFormMode(null);
  const { venues } = await admin("GET", "/venues");
  const select = $("event-venue");
  select.replaceChildren(el("option", { value: "" }, venues.length > 0 ? "Choose a venue" : "No venues yet"), ...venues.map((v) => el("option", { value: v.id }, `${v.name} (${v.capacity} places)`)));
  if (venueId && venues.some((v) => v.id === venueId)) select.value = venueId;
  const now = Date.now();
  if (!$("event-starts").value) $("event-starts").value = toUtcInput(now + 30 * 86_400_000);
  if (!$("event-sale-starts").value) $("event-sale-starts").value = toUtcInput(now);
  await showPriceFields();
}

$("event-venue").addEventListener("change", () => attempt(showPriceFields));

/** The edit form of an event, prefilled from the API; saving sends only the fields changed. */
async function showEditForm(id) {
  showOnly("new-event-view");
  const event = await admin("GET", `/events/${id}`);
  eventFormMode(event);
  $("event-venue").replaceChildren(el("option", { value: event.venueId }, event.venueName));
  await showPriceFields();
  for (const input of $("event-prices").querySelectorAll("input[data-tier]")) {
    const price = event.prices.find((p) => p.priceTier === input.dataset.tier);
    if (price) input.value = (price.priceCents / 100).toFixed(2);
  }
  $("event-name").value = event.name;
  $("event-description").value = event.description;
  $("event-starts").value = toUtcInput(Date.parse(event.startsAt));
  $("event-sale-starts").value = toUtcInput(Date.parse(event.saleStartsAt));
  $("event-ends").value = event.endsAt ? toUtcInput(Date.parse(event.endsAt)) : "";
  $("event-sale-ends").value = event.saleEndsAt ? toUtcInput(Date.parse(event.saleEndsAt)) : "";
  $("event-lobby-opens").value = String(event.lobbyOpensMinutes);
  $("event-decline-retry").value = String(event.declineRetrySeconds);
  $("event-per-device").value = String(event.maxAccountsPerDevice);
  $("event-per-ip").value = String(event.maxAccountsPerIp);
  $("event-currency").value = event.currency;
  $("event-hold-ttl").value = String(event.holdTtlSeconds);
  $("event-limit").value = String(event.purchaseLimit);
  $("event-demand").value = String(event.expectedDemand);
  $("event-class").value = event.demandClass;
  $("event-rate").value = String(event.admissionRatePerSecond);
  $("event-bot-policy").value = event.botPolicy;
  $("event-publish").checked = event.status === "published";
  editing = { event, original: eventFormBody() };
  $("new-event-heading").textContent = `Edit ${event.name}`;
}

async function showPriceFields() {
  const venueId = $("event-venue").value;
  const fieldset = $("event-prices");
  const legend = el("legend", {}, "Prices per tier");
  if (!venueId) {
    fieldset.replaceChildren(legend, el("p", { className: "muted" }, "Pick a venue to price its tiers."));
    return;
  }
  const venue = await admin("GET", `/venues/${venueId}`);
  fieldset.replaceChildren(
    legend,
    ...venue.priceTiers.map((tier, i) =>
      el(
        "div",
        { className: "field" },
        el("label", { htmlFor: `price-${i}` }, `${tier} price`),
        el("input", { id: `price-${i}`, type: "number", min: "0", step: "0.01", required: true, "data-tier": tier }),
      ),
    ),
  );
}

/** The event form's fields as the API's event body. */
function eventFormBody() {
  const prices = [...$("event-prices").querySelectorAll("input[data-tier]")].map((input) => ({
    priceTier: input.dataset.tier,
    priceCents: Math.round(Number(input.value) * 100),
  }));
  const body = {
    venueId: $("event-venue").value,
    name: $("event-name").value,
    description: $("event-description").value,
    startsAt: fromUtcInput($("event-starts").value),
    saleStartsAt: fromUtcInput($("event-sale-starts").value),
    endsAt: $("event-ends").value ? fromUtcInput($("event-ends").value) : null,
    saleEndsAt: $("event-sale-ends").value ? fromUtcInput($("event-sale-ends").value) : null,
    lobbyOpensMinutes: Number($("event-lobby-opens").value),
    declineRetrySeconds: Number($("event-decline-retry").value),
    maxAccountsPerDevice: Number($("event-per-device").value),
    maxAccountsPerIp: Number($("event-per-ip").value),
    currency: $("event-currency").value,
    holdTtlSeconds: Number($("event-hold-ttl").value),
    purchaseLimit: Number($("event-limit").value),
    expectedDemand: Number($("event-demand").value),
    admissionRatePerSecond: Number($("event-rate").value),
    botPolicy: $("event-bot-policy").value,
    status: $("event-publish").checked ? "published" : "draft",
    prices,
  };
  if ($("event-class").value) body.demandClass = $("event-class").value;
  return body;
}

$("event-form").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(async () => {
    const body = eventFormBody();
    if (editing) {
      // Only what changed: once a sale has started the API refuses changes to anything but wording, end times and admission.
      const { original, event: before } = editing;
      const changes = Object.fromEntries(Object.entries(body).filter(([key, value]) => key !== "venueId" && JSON.stringify(value) !== JSON.stringify(original[key])));
      if (Object.keys(changes).length === 0) {
        say("Nothing changed.");
        return;
      }
      const updated = await admin("PATCH", `/events/${before.id}`, changes);
      say(`Event ${updated.name} updated.`);
      location.hash = `#/events/${updated.id}`;
      return;
    }
    const created = await admin("POST", "/events", body);
    $("event-form").reset();
    say(`Event ${created.name} created.`);
    location.hash = `#/events/${created.id}`;
  });
});

// ---------------------------------------------------------------- one event: live sale, admission, orders

async function showEvent(id) {
  showOnly("event-view");
  if (openEvent?.id !== id) {
    $("orders-q").value = "";
    $("orders-status").value = "";
  }
  openEvent = await admin("GET", `/events/${id}`);
  $("event-heading").textContent = openEvent.name;
  $("event-summary").textContent =
    `${openEvent.venueName} · starts ${dateTime(openEvent.startsAt)} · sale opens ${dateTime(openEvent.saleStartsAt)} · ` +
    `${openEvent.demandClass} · ${openEvent.status} · ${openEvent.saleState.replace("_", " ")}`;
  $("admission-panel").hidden = openEvent.demandClass !== "hot";
  $("flags-panel").hidden = openEvent.demandClass !== "hot";
  $("event-actions").replaceChildren(el("a", { href: `#/edit-event/${id}`, className: "button secondary" }, "Edit event"), $("cancel-button"));
  $("cancel-button").hidden = openEvent.status === "cancelled";
  $("rate").value = String(openEvent.admissionRatePerSecond);
  await Promise.all([refreshLive(), refreshOrders(), ...(openEvent.demandClass === "hot" ? [botFlags.show(id)] : [])]);
  startLive();
}

function startLive() {
  stopLive();
  liveTimer = setInterval(() => {
    refreshLive().catch((error) => showError(error));
  }, LIVE_INTERVAL_MS);
}

function stopLive() {
  clearInterval(liveTimer);
  liveTimer = 0;
}

function stats(list, pairs) {
  list.replaceChildren(...pairs.map(([term, value, key]) => el("div", {}, el("dt", {}, term), el("dd", { "data-stat": key }, String(value)))));
}

/** Counts live reads: an answer to a read older than the newest one shown is stale (a change may have come between). */
let liveReads = 0;
let liveShown = 0;

async function refreshLive() {
  if (openEvent === null) return;
  const eventId = openEvent.id;
  const read = ++liveReads;
  const live = await admin("GET", `/events/${eventId}/live`);
  if (openEvent?.id !== eventId || read < liveShown) return;
  liveShown = read;
  stats($("live-totals"), [
    ["Capacity", live.totals.capacity, "capacity"],
    ["Sold", live.totals.sold, "sold"],
    ["Held", live.totals.held, "held"],
    ["Available", live.totals.available, "available"],
    ["Sold out", live.soldOut ? "Yes" : "No", "sold-out"],
    ["Places returned", live.returned, "returned"],
    ["Flagged accounts", live.flaggedAccounts, "flagged"],
  ]);
  $("live-sections").replaceChildren(
    ...live.sections.map((s) =>
      el(
        "tr",
        { "data-section": s.label },
        el("th", { scope: "row" }, s.label),
        el("td", { "data-label": "Tier" }, s.priceTier ?? "—"),
        el("td", { "data-label": "Capacity" }, String(s.capacity)),
        el("td", { "data-label": "Sold" }, String(s.sold)),
        el("td", { "data-label": "Held" }, String(s.held)),
        el("td", { "data-label": "Available" }, String(s.available)),
      ),
    ),
  );
  const minutes = live.history.minutes;
  $("live-charts").replaceChildren(
    ...(live.demandClass === "hot" ? [historyChart("Fans admitted per minute", minutes.map((m) => m.admitted))] : []),
    historyChart("Places sold per minute", minutes.map((m) => m.sold)),
  );
  const queue = live.queue;
  if (queue) {
    stats($("admission-stats"), [
      ["Admission", queue.paused ? "Paused" : "Running", "admission"],
      ["Rate (fans per second)", queue.ratePerSecond, "rate"],
      ["Lobby size", queue.entrants.lobby + queue.entrants.late + queue.entrants.flagged, "lobby-size"],
      ["In the lobby", queue.entrants.lobby, "lobby"],
      ["Joined late", queue.entrants.late, "late"],
      ["Threshold", queue.threshold, "threshold"],
      ["Admitted", queue.admitted, "admitted"],
      ["Queue sold out", queue.soldOut ? "Yes" : "No", "queue-sold-out"],
    ]);
    $("pause-button").textContent = queue.paused ? "Resume admission" : "Pause admission";
    $("pause-button").dataset.paused = String(queue.paused);
  } else {
    // A hot event whose waiting room has not been set up yet: the first admission change sets it up.
    stats($("admission-stats"), [["Admission", "Not open yet", "admission"]]);
  }
  $("live-updated").textContent = `Last update ${new Date().toLocaleTimeString()}.`;
}

$("rate-form").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(async () => {
    const state = await admin("PATCH", `/events/${openEvent.id}/admission`, { ratePerSecond: Number($("rate").value) });
    say(`Admission rate set to ${state.ratePerSecond} fans per second.`);
    await refreshLive();
  });
});

$("pause-button").addEventListener("click", () =>
  attempt(async () => {
    const paused = $("pause-button").dataset.paused !== "true";
    await admin("PATCH", `/events/${openEvent.id}/admission`, { paused });
    say(paused ? "Admission paused." : "Admission resumed.");
    await refreshLive();
  }),
);

$("cancel-button").addEventListener("click", () => {
  // A second, explicit click: every order is refunded and the waitlist closed.
  const event = openEvent;
  const confirmButton = el("button", { type: "button" }, `Confirm: cancel ${event.name} and refund every order`);
  confirmButton.addEventListener("click", () =>
    attempt(async () => {
      confirmButton.disabled = true;
      let report = await admin("POST", `/events/${event.id}/cancel`);
      let cancelled = report.ordersCancelled;
      while (report.ordersRemaining > 0 && report.ordersCancelled > 0) {
        report = await admin("POST", `/events/${event.id}/cancel`);
        cancelled += report.ordersCancelled;
      }
      const left = report.ordersRemaining > 0 ? `; ${report.ordersRemaining} orders left for the next run` : "";
      say(`Event cancelled: ${cancelled} orders refunded, ${report.waitlistClosed} waitlist entries closed${left}.`);
      await showEvent(event.id);
    }),
  );
  $("event-actions").replaceChildren($("cancel-button"), confirmButton);
  $("cancel-button").hidden = true;
  confirmButton.focus();
});

/** The orders filters in the form: the search box (a buyer's email or the start of an order id) and the status chosen. */
function ordersFilters() {
  return { q: $("orders-q").value.trim(), status: $("orders-status").value };
}

/** What the orders table says when no order is listed, naming the filters it was listed with. */
function noOrdersText({ q, status }) {
  const which = status === "" ? "orders" : `${status} orders`;
  if (q !== "") return `No ${which} match ${q}.`;
  return status === "" ? "No orders yet." : `No ${which}.`;
}

/** An order's row: a Refund button (two clicks) while it is confirmed; a refund puts the refunded order's row in its place. */
function orderRow(order) {
  const actions = el("td", {});
  if (order.status === "confirmed") {
    // What is left to refund: a partial refund made in the Stripe dashboard came first.
    const left = order.totalCents - order.refundedCents;
    const refund = rowButton("Refund", `Refund order of ${order.email}`, () =>
      // A second, explicit click: money leaves on this one.
      confirmFirst(actions, `Confirm refund of ${money(left, order.currency)}`, attempt, async () => {
        const result = await admin("POST", `/orders/${order.orderId}/refund`);
        say(`Order of ${order.email} refunded${result.waitlistOffers > 0 ? `; ${result.waitlistOffers} waitlist offers made` : ""}.`);
        // In place, so the pages loaded with "More orders" stay; off the table if the status filter no longer lets it through.
        const status = ordersTable.applied()?.status ?? "";
        if (status === "" || result.order.status === status) row.replaceWith(orderRow(result.order));
        else ordersTable.remove(row);
        await refreshLive();
      }),
    );
    actions.append(refund);
  }
  const row = el(
    "tr",
    { "data-order": order.orderId },
    el("td", { "data-label": "Buyer" }, order.email),
    el("td", { "data-label": "Tickets" }, String(order.liveTickets)),
    el("td", { "data-label": "Total" }, money(order.totalCents, order.currency)),
    el("td", { "data-label": "Status" }, orderStatusText(order, money)),
    el("td", { "data-label": "Placed" }, dateTime(order.createdAt)),
    actions,
  );
  return row;
}

/** The orders table: the newest 50 the filters let through, 50 more a click on "More orders". */
const ordersTable = pagedTable({ admin, attempt }, { ids: "orders", columns: 6, empty: noOrdersText }, {
  filters: ordersFilters,
  path: ({ q, status }) => {
    const query = new URLSearchParams({ limit: "50" });
    if (status !== "") query.set("status", status);
    if (q !== "") query.set("q", q);
    return `/events/${openEvent.id}/orders?${query}`;
  },
  items: (page) => page.orders,
  row: orderRow,
});

function refreshOrders() {
  return ordersTable.load(false);
}

$("orders-search").addEventListener("submit", (event) => {
  event.preventDefault();
  attempt(refreshOrders);
});

$("orders-status").addEventListener("change", () => attempt(refreshOrders));

showOnly("signin");
