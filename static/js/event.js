// The event page: details and prices; for calm events the interactive seat map
// (live availability) and best available; for hot events the lobby: when the
// line and the sale open (a live countdown), prices, and the way into the
// waiting room (and best available once the queue has admitted the fan).
import {
  announce,
  api,
  ApiError,
  clockTime,
  currentAdmission,
  currentSession,
  dateTime,
  durationText,
  el,
  holdPlacer,
  liveCountdown,
  money,
  param,
  renderAccount,
  serverNow,
  showError,
  signInHref,
  tierColours,
} from "./api.js";
import { lobbyOpensAt, salePhase } from "./queue-math.js";
import { fillChoiceFields, readChoice } from "./ticket-choice.js";

/** The API's caps (core/holds/contract.ts): seats per best-available request, seats per named hold. */
const MAX_BEST_AVAILABLE = 8;
const MAX_SEATS_PER_HOLD = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const $ = (id) => document.getElementById(id);
const status = $("status");
const errorRegion = $("error");
const eventId = param("id") ?? "";
const picksKey = `edge-tickets.picks.${eventId}`;

/** Holds the seat map and best available ask for: retried after a network failure with the same request id, so they cannot hold twice. */
const postHold = holdPlacer();

/** Places a hold and goes to checkout; returns the error when refused (shown next to the button that asked). */
async function placeHold(path, body, auth, { statusRegion, errorRegion }) {
  showError(errorRegion, null);
  try {
    const hold = await postHold(path, body, auth);
    sessionStorage.removeItem(picksKey);
    announce(statusRegion, "Seats held. Taking you to checkout…");
    location.assign(`/checkout?event=${encodeURIComponent(eventId)}&hold=${encodeURIComponent(hold.holdId)}`);
    return null;
  } catch (error) {
    announce(statusRegion, "");
    showError(errorRegion, error);
    return error;
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function priceRange(event) {
  const cents = event.prices.map((p) => p.priceCents);
  const low = Math.min(...cents);
  const high = Math.max(...cents);
  return low === high ? money(low, event.currency) : `${money(low, event.currency)} to ${money(high, event.currency)}`;
}

function renderDetails(event, hot) {
  document.title = `${event.name} · Edge Tickets`;
  $("event-name").textContent = event.name;
  $("event-meta").textContent = `${event.venueName} · ${dateTime(event.startsAt)}`;
  $("description").textContent = event.description;
  const notes = {
    on_sale: `On sale now${event.saleEndsAt ? `, until ${dateTime(event.saleEndsAt)}` : ""}.`,
    ended: "The sale has ended.",
    cancelled: "This event was cancelled.",
  };
  // The sale panel above says when a sale opens, and how a hot event's line works.
  $("sale-note").textContent = hot ? "" : (notes[salePhase(event, serverNow())] ?? "");
  $("sale-note").hidden = $("sale-note").textContent === "";
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
  // Holds last the event's time plus up to a minute (the server spreads expiries out).
  $("limits").textContent = `Up to ${plural(event.purchaseLimit, "ticket")} per fan. Seats are held for at least ${plural(Math.round(event.holdTtlSeconds / 60), "minute")} while you pay.`;
  $("details").hidden = false;
}

/**
 * The sale panel: for a hot event the lobby (when the line and the sale open,
 * with a live countdown, and the way in), for a calm event a countdown to its
 * sale. It moves on by itself as the line and the sale open.
 */
function renderSale(event, hot, onSaleOpens) {
  const saleOpensAt = Date.parse(event.saleStartsAt);
  const lineOpensAt = lobbyOpensAt(event);
  const facts = [["Sale opens", dateTime(event.saleStartsAt)]];
  if (hot) facts.push(["Line opens", `${dateTime(new Date(lineOpensAt).toISOString())}, ${plural(event.lobbyOpensMinutes, "minute")} before the sale`]);
  if (event.saleEndsAt) facts.push(["Sale ends", dateTime(event.saleEndsAt)]);
  facts.push(["Prices", priceRange(event)]);
  $("sale-facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  $("queue-link").href = `/queue?event=${encodeURIComponent(event.id)}`;

  let stopCountdown = () => {};
  const show = () => {
    stopCountdown();
    const phase = salePhase(event, serverNow());
    const countdownTo = (label, deadline) => {
      $("sale-countdown-label").textContent = label;
      $("sale-countdown-line").hidden = false;
      stopCountdown = liveCountdown($("sale-countdown"), deadline, durationText, () => {
        if (!hot && deadline === saleOpensAt) onSaleOpens();
        show();
      });
    };
    $("sale-countdown-line").hidden = true;
    $("queue-action").hidden = !hot || (phase !== "lobby" && phase !== "on_sale");
    const texts = {
      before_lobby: [
        `On sale ${dateTime(event.saleStartsAt)}`,
        `The waiting room opens ${plural(event.lobbyOpensMinutes, "minute")} before the sale. Everyone who joins the line before the sale opens gets a random place, so there is no need to rush: joining early gives no head start.`,
      ],
      lobby: ["The line is open", `Join any time before the sale opens at ${clockTime(saleOpensAt, "short")}: everyone in line by then gets a random place, so there is no need to rush.`],
      on_sale: ["On sale now", "Join the line: fans who arrive now are let in after everyone who was in line when the sale opened, in the order they arrive."],
      ended: ["The sale has ended", "No more tickets are sold for this event."],
      cancelled: ["This event was cancelled", "No tickets are sold for this event."],
    };
    if (!hot) {
      texts.before_lobby[1] = texts.lobby[1] = "Seats can be picked on the map below once the sale opens; until then it shows what is free.";
    }
    const [heading, note] = texts[phase];
    $("sale-heading").textContent = heading;
    $("queue-note").textContent = note;
    $("queue-link").textContent = "Join the line";
    if (phase === "before_lobby") countdownTo(hot ? "The line opens in" : "The sale opens in", hot ? lineOpensAt : saleOpensAt);
    else if (phase === "lobby") countdownTo("The sale opens in", saleOpensAt);
    $("sale").hidden = !hot && phase !== "before_lobby" && phase !== "lobby";
  };
  show();
}

/** Live holds the fan already has here, so coming back to the page leads on to checkout. */
async function showMyHolds(event) {
  let holds;
  try {
    ({ holds } = await api(`/api/events/${event.id}/holds`, { auth: true }));
  } catch {
    return; // not essential: the page works without it
  }
  const live = holds.filter((hold) => hold.status === "live" && Date.parse(hold.expiresAt) > serverNow());
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

/** How to use the map, in the words of the device in hand. */
function mapHelp(touch, onSale, limit) {
  if (!onSale) return "Seats can be picked once the sale opens; until then the map shows what is free.";
  const pick = `Pick up to ${plural(limit, "seat")}.`;
  return touch
    ? `Tap a seat to pick it, and tap it again to drop it. Drag the map to move around it; pinch it, or use the + and − buttons, to zoom. ${pick}`
    : `Click a seat to pick it. With a keyboard, Tab moves between sections, the arrow keys between seats, and Space or Enter picks a seat. The + and − buttons zoom. ${pick}`;
}

async function renderSeatMap(event, onSale) {
  let layout;
  let seatMap;
  try {
    [layout, seatMap] = await Promise.all([api(`/api/events/${event.id}/seats`), import("./seat-map.js")]);
  } catch (error) {
    showError(errorRegion, error);
    return;
  }
  const { followAvailability, MapZoom, SeatMap } = seatMap;
  if (layout.rows.length === 0) return; // standing only: best available does it
  $("seat-map-section").hidden = false;
  renderLegend(event, layout);
  const holdButton = $("hold-seats");
  const clearButton = $("clear-seats");
  const limit = Math.min(event.purchaseLimit, MAX_SEATS_PER_HOLD);
  const touch = matchMedia("(pointer: coarse)").matches;
  $("seat-map-help").textContent = mapHelp(touch, onSale, limit);

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
  new MapZoom({
    viewport: $("seat-map"),
    zoomIn: $("zoom-in"),
    zoomOut: $("zoom-out"),
    cue: $("pan-cue"),
    cueText: touch ? "The map is bigger than your screen: drag it to see more seats." : "The map is bigger than its frame: scroll it to see more seats.",
  });

  let restored = false;
  $("feed-state").textContent = "Checking which seats are free…";
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
  const form = $("best-form");
  fillChoiceFields(form, "best", { event, max: MAX_BEST_AVAILABLE, preferred: 2, quantityLabel: "Tickets", split: true });
  $("best").hidden = false;
  form.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    if (auth === true && !currentSession()) {
      location.assign(signInHref());
      return;
    }
    const button = $("best-submit");
    button.disabled = true;
    const regions = { statusRegion: $("best-status"), errorRegion: $("best-error") };
    announce(regions.statusRegion, "Finding the best seats…");
    const error = await placeHold(`/api/events/${event.id}/holds/best`, readChoice(form), auth, regions);
    if (error) button.disabled = false;
  });
}

async function main() {
  renderAccount($("account"));
  if (!UUID.test(eventId)) {
    $("event-name").textContent = "Event not found";
    announce(status, "");
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This link does not name an event. ", el("a", { href: "/" }, "See all events"));
    return;
  }
  let event;
  try {
    event = await api(`/api/events/${eventId}`);
  } catch (error) {
    $("event-name").textContent = "Event unavailable";
    announce(status, "");
    showError(errorRegion, error);
    return;
  }
  announce(status, "");
  const hot = event.demandClass === "hot";
  renderDetails(event, hot);
  const onSale = salePhase(event, serverNow()) === "on_sale";
  renderSale(event, hot, () => location.reload());
  if (currentSession()) void showMyHolds(event);
  if (hot) {
    const admission = currentAdmission(event.id);
    if (admission && onSale) renderBestAvailable(event, admission.token);
    return;
  }
  await renderSeatMap(event, onSale);
  if (onSale) renderBestAvailable(event, true);
}

void main();
