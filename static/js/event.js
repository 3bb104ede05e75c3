// The event page: details and prices; for calm events the interactive seat map
// (live availability) and best available; for hot events the way to the
// waiting room (and best available once the queue has admitted the fan).
import { announce, api, ApiError, clockTime, currentAdmission, currentSession, dateTime, el, money, newRequestId, param, renderAccount, showError, signInHref } from "./api.js";
import { followAvailability, SeatMap, tierColours } from "./seat-map.js";

/** The API's caps (workers/inventory/contract.ts): seats per best-available request, seats per named hold. */
const MAX_BEST_AVAILABLE = 8;
const MAX_SEATS_PER_HOLD = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const $ = (id) => document.getElementById(id);
const errorRegion = $("error");
const eventId = param("id") ?? "";
const picksKey = `edge-tickets.picks.${eventId}`;

/** The hold attempt in flight: retried after a network failure with the same request id, so it cannot hold twice. */
let attempt = null;

function requestIdFor(key) {
  if (attempt?.key !== key) attempt = { key, requestId: newRequestId() };
  return attempt.requestId;
}

/** Places a hold and goes to checkout; returns the error when refused (shown next to the button that asked). */
async function placeHold(path, body, auth, { statusRegion, errorRegion }) {
  showError(errorRegion, null);
  const key = `${path} ${JSON.stringify(body)}`;
  try {
    const { hold } = await api(path, { method: "POST", body: { requestId: requestIdFor(key), ...body }, auth });
    attempt = null;
    sessionStorage.removeItem(picksKey);
    announce(statusRegion, "Seats held. Taking you to checkout…");
    location.assign(`/checkout?event=${encodeURIComponent(eventId)}&hold=${encodeURIComponent(hold.holdId)}`);
    return null;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 0) attempt = null;
    announce(statusRegion, "");
    showError(errorRegion, error);
    return error;
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function renderDetails(event) {
  document.title = `${event.name} · Edge Tickets`;
  $("event-name").textContent = event.name;
  $("event-meta").textContent = `${event.venueName} · ${dateTime(event.startsAt)}`;
  $("description").textContent = event.description;
  const notes = {
    upcoming: `The sale opens ${dateTime(event.saleStartsAt)}.`,
    on_sale: `On sale now${event.saleEndsAt ? `, until ${dateTime(event.saleEndsAt)}` : ""}.`,
    ended: "The sale has ended.",
    cancelled: "This event was cancelled.",
  };
  $("sale-note").textContent = notes[event.saleState] ?? "";
  const colours = tierColours(event.prices);
  $("prices")
    .querySelector("tbody")
    .replaceChildren(
      ...event.prices.map((price) =>
        el(
          "tr",
          {},
          el("td", {}, el("span", { className: "swatch", style: `--tier: ${colours.get(price.priceTier)}`, "aria-hidden": "true" }), price.priceTier),
          el("td", {}, money(price.priceCents, event.currency)),
        ),
      ),
    );
  $("limits").textContent = `Up to ${plural(event.purchaseLimit, "ticket")} per fan. Seats are held for ${Math.round(event.holdTtlSeconds / 60)} minutes while you pay.`;
  $("details").hidden = false;
}

/** Live holds the fan already has here, so coming back to the page leads on to checkout. */
async function showMyHolds(event) {
  let holds;
  try {
    ({ holds } = await api(`/api/events/${event.id}/holds`, { auth: true }));
  } catch {
    return; // not essential: the page works without it
  }
  const live = holds.filter((hold) => hold.status === "live" && Date.parse(hold.expiresAt) > Date.now());
  if (live.length === 0) return;
  $("my-holds-list").replaceChildren(
    ...live.map((hold) => {
      const places = [...hold.seats.map((s) => `${s.section} row ${s.row} seat ${s.seat}`), ...hold.generalAdmission.map((g) => `${g.quantity} × ${g.section}`)];
      return el(
        "li",
        {},
        `${places.join(", ")} · held until ${clockTime(hold.expiresAt)} · `,
        el("a", { href: `/checkout?event=${encodeURIComponent(event.id)}&hold=${encodeURIComponent(hold.holdId)}` }, "Continue to checkout"),
      );
    }),
  );
  $("my-holds").hidden = false;
}

function renderQueue(event) {
  $("queue-link").href = `/queue?event=${encodeURIComponent(event.id)}`;
  $("queue").hidden = false;
}

function renderLegend(event, layout) {
  const colours = tierColours(event.prices);
  const used = new Set(layout.rows.map((row) => row.priceTier));
  $("legend").replaceChildren(
    ...event.prices
      .filter((price) => used.has(price.priceTier))
      .map((price) => el("li", {}, el("span", { className: "seat legend-seat", style: `--tier: ${colours.get(price.priceTier)}`, "aria-hidden": "true" }), `${price.priceTier} ${money(price.priceCents, event.currency)}`)),
    el("li", {}, el("span", { className: "seat legend-seat taken", "aria-hidden": "true" }), "Taken"),
    el("li", {}, el("span", { className: "seat legend-seat picked", "aria-hidden": "true" }), "Your pick"),
  );
}

async function renderSeatMap(event, onSale) {
  let layout;
  try {
    layout = await api(`/api/events/${event.id}/seats`);
  } catch (error) {
    showError(errorRegion, error);
    return;
  }
  if (layout.rows.length === 0) return; // standing only: best available does it
  $("seat-map-section").hidden = false;
  renderLegend(event, layout);
  const holdButton = $("hold-seats");
  const clearButton = $("clear-seats");
  const limit = Math.min(event.purchaseLimit, MAX_SEATS_PER_HOLD);
  if (onSale) $("seat-map-help").textContent += ` Pick up to ${plural(limit, "seat")}.`;
  else $("seat-map-help").textContent = "Seats can be picked once the sale opens; until then the map shows what is free.";

  const renderSelection = (selection) => {
    const total = selection.reduce((sum, seat) => sum + seat.priceCents, 0);
    $("selection").textContent = selection.length === 0 ? "No seats picked yet." : `${plural(selection.length, "seat")} picked · ${money(total, event.currency)}`;
    $("selection-list").replaceChildren(...selection.map((s) => el("li", {}, `${s.section}, row ${s.row}, seat ${s.seat} · ${s.priceTier} · ${money(s.priceCents, event.currency)}`)));
    holdButton.textContent = selection.length === 0 ? "Hold seats" : `Hold ${plural(selection.length, "seat")}`;
    holdButton.disabled = selection.length === 0 || !onSale;
    clearButton.disabled = selection.length === 0;
    sessionStorage.setItem(picksKey, JSON.stringify(selection.map((s) => s.seatIndex)));
  };
  const map = new SeatMap({
    container: $("seat-map"),
    layout,
    prices: event.prices,
    currency: event.currency,
    limit,
    onChange: renderSelection,
    onNotice: (text) => announce($("seat-notice"), text),
  });
  map.render();
  map.setEnabled(onSale);

  let restored = false;
  const feed = followAvailability(event.id, {
    onSnapshot: (availability) => {
      map.setSnapshot(availability);
      if (restored) return;
      restored = true;
      try {
        const saved = JSON.parse(sessionStorage.getItem(picksKey) ?? "[]");
        if (onSale && Array.isArray(saved) && saved.length > 0) map.restore(saved);
      } catch {
        sessionStorage.removeItem(picksKey);
      }
    },
    onChanges: (changes) => map.applyChanges(changes),
    onMode: (mode) => {
      $("feed-state").textContent = mode === "live" ? "Seats update live." : "Live updates are unavailable right now; the map refreshes every 2 seconds.";
    },
    onError: (error) => {
      $("feed-state").textContent = `Availability could not be refreshed: ${error instanceof ApiError ? error.message : "please reload the page."}`;
    },
  });
  // An open socket keeps the page out of the back/forward cache; a page restored from it reloads for fresh seats.
  addEventListener("pagehide", () => feed.stop());
  addEventListener("pageshow", (shown) => shown.persisted && location.reload());

  clearButton.addEventListener("click", () => map.clear());
  holdButton.addEventListener("click", async () => {
    const seats = map.selection().map((seat) => seat.seatIndex);
    if (seats.length === 0) return;
    if (!currentSession()) {
      location.assign(signInHref());
      return;
    }
    holdButton.disabled = true;
    const regions = { statusRegion: $("seat-notice"), errorRegion: $("hold-error") };
    announce(regions.statusRegion, `Holding ${plural(seats.length, "seat")}…`);
    const error = await placeHold(`/api/events/${event.id}/holds`, { seats }, true, regions);
    if (!error) return;
    holdButton.disabled = false;
    if (error instanceof ApiError && error.code === "seat_taken") void feed.refresh();
  });
}

function renderBestAvailable(event, auth) {
  const quantity = $("best-quantity");
  const tier = $("best-tier");
  const count = Math.min(event.purchaseLimit, MAX_BEST_AVAILABLE);
  quantity.replaceChildren(...Array.from({ length: count }, (_, i) => el("option", { value: String(i + 1) }, String(i + 1))));
  quantity.value = String(Math.min(2, count));
  tier.replaceChildren(
    el("option", { value: "" }, "Best in any tier"),
    ...event.prices.map((price) => el("option", { value: price.priceTier }, `${price.priceTier} (${money(price.priceCents, event.currency)})`)),
  );
  $("best").hidden = false;
  $("best-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    if (auth === true && !currentSession()) {
      location.assign(signInHref());
      return;
    }
    const button = $("best-submit");
    button.disabled = true;
    const regions = { statusRegion: $("best-status"), errorRegion: $("best-error") };
    announce(regions.statusRegion, "Finding the best seats…");
    const body = { quantity: Number(quantity.value), allowSplit: $("best-split").checked, ...(tier.value ? { priceTier: tier.value } : {}) };
    const error = await placeHold(`/api/events/${event.id}/holds/best`, body, auth, regions);
    if (error) button.disabled = false;
  });
}

async function main() {
  renderAccount($("account"));
  if (!UUID.test(eventId)) {
    $("event-name").textContent = "Event not found";
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This link does not name an event. ", el("a", { href: "/" }, "See all events"));
    return;
  }
  let event;
  try {
    event = await api(`/api/events/${eventId}`);
  } catch (error) {
    $("event-name").textContent = "Event unavailable";
    showError(errorRegion, error);
    return;
  }
  renderDetails(event);
  const onSale = event.saleState === "on_sale";
  if (currentSession()) void showMyHolds(event);
  if (event.demandClass === "hot") {
    renderQueue(event);
    const admission = currentAdmission(event.id);
    if (admission && onSale) renderBestAvailable(event, admission.token);
    return;
  }
  await renderSeatMap(event, onSale);
  if (onSale) renderBestAvailable(event, true);
}

void main();
