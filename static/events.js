// The lobby's event list: static HTML from the CDN, data from the edge-cached /api/events.
const list = document.getElementById("events");
const money = (cents, currency) => new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

function render(events) {
  list.replaceChildren();
  if (events.length === 0) {
    list.append(Object.assign(document.createElement("li"), { textContent: "No upcoming events yet." }));
    return;
  }
  for (const event of events) {
    const item = document.createElement("li");
    const prices = event.prices.map((p) => p.priceCents);
    const from = prices.length ? money(Math.min(...prices), event.currency) : "";
    item.innerHTML = `<div class="event-name"></div><div class="meta"></div>`;
    // The event page: a calm event's seat map, or a hot event's lobby (sale time, prices, when the line opens).
    const href = `/event?id=${encodeURIComponent(event.id)}`;
    item.querySelector(".event-name").append(Object.assign(document.createElement("a"), { href, textContent: event.name }));
    const state = event.saleState.replace("_", " ");
    const badge = Object.assign(document.createElement("span"), { className: `badge ${event.demandClass}`, textContent: event.demandClass === "hot" ? `${state} · waiting room` : state });
    item.querySelector(".event-name").append(badge);
    item.querySelector(".meta").textContent = `${event.venueName} · ${when(event.startsAt)} · sale ${when(event.saleStartsAt)}${from ? ` · from ${from}` : ""}`;
    list.append(item);
  }
}

fetch("/api/events")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
  .then((body) => render(body.events))
  .catch(() => list.replaceChildren(Object.assign(document.createElement("li"), { textContent: "Events could not be loaded; please retry shortly." })));
