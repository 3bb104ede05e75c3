// The interactive seat map of a calm event, and its live availability.
//
// The layout (GET /api/events/:id/seats) gives rows as runs of seat indexes;
// availability is a bitmap (GET /api/events/:id/availability) kept current by
// the seat feed WebSocket, or by polling every 2 s while the socket is down.
// Seats are native buttons (focusable, announced as toggle buttons) in one
// group per section: Tab moves between sections, arrow keys between seats,
// Space or Enter picks a seat. The map pans (it scrolls, or is dragged on a
// touch screen) and zooms (buttons, or a pinch), its seats at least 44 px
// across at the top zoom steps, so a finger can pick one.
import { api, el, money, tierColours } from "./api.js";

/** Polling period while the live feed is down. */
export const POLL_INTERVAL_MS = 2_000;
/** Above this many seats, sections start closed and render when opened. */
const OPEN_SECTIONS_UP_TO = 3_000;
const RECONNECT_MIN_MS = 2_000;
const RECONNECT_MAX_MS = 30_000;
const PING_INTERVAL_MS = 25_000;

/** Seat sizes (CSS px) the zoom buttons step through: the smallest still a 24 px target, the top two at least 44 px for a finger. */
export const ZOOM_STEPS = [24, 32, 44, 56];
/** A pinch may go a little past the top step. */
const MAX_SEAT_SIZE = 64;

/** The zoom button step after `size`, up (+1) or down (-1); the end step when there is none further. */
export function zoomStep(size, direction) {
  const steps = direction > 0 ? ZOOM_STEPS : [...ZOOM_STEPS].reverse();
  return steps.find((step) => (direction > 0 ? step > size + 0.5 : step < size - 0.5)) ?? steps[steps.length - 1];
}

/** The availability bitmap's bytes from its base64. */
export function decodeBitmap(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** 1 when seat `seatIndex` is available: bit (7 - i % 8) of byte i >> 3. */
export function bitAvailable(bytes, seatIndex) {
  return ((bytes[seatIndex >> 3] ?? 0) >> (7 - (seatIndex % 8))) & 1;
}

/** A row's seats left to right: `{ seatIndex, label }`. */
export function rowSeats(row) {
  return Array.from({ length: row.count }, (_, k) => ({ seatIndex: row.firstSeat + k, label: row.seatLabels?.[k] ?? String(k + 1) }));
}

/** The `[seatIndex, 0|1]` pairs of a feed message that are well formed; anything else is dropped. */
export function wireChanges(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((pair) => Array.isArray(pair) && Number.isInteger(pair[0]) && pair[0] >= 0 && (pair[1] === 0 || pair[1] === 1));
}

/** The seat at the same place, seen from the middle, in a row of `toCount` seats (rows are drawn centred). */
export function alignedPosition(position, fromCount, toCount) {
  return Math.min(toCount - 1, Math.max(0, Math.round(position - (fromCount - 1) / 2 + (toCount - 1) / 2)));
}

/**
 * The seat map. `onChange(selection)` after every pick or drop;
 * `onNotice(text)` for things to announce (limit reached, a picked seat taken).
 */
export class SeatMap {
  constructor({ container, layout, prices, currency, limit, onChange, onNotice }) {
    this.container = container;
    this.layout = layout;
    this.currency = currency;
    this.limit = limit;
    this.onChange = onChange;
    this.onNotice = onNotice;
    this.priceOf = new Map(prices.map((p) => [p.priceTier, p.priceCents]));
    this.colours = tierColours(prices);
    this.available = new Uint8Array(layout.seatCount);
    this.picked = new Set();
    this.buttons = new Array(layout.seatCount);
    this.enabled = true;
    this.sections = new Map(layout.sections.map((s) => [s.id, { ...s, rows: [], availableCount: 0, summary: null, grid: null }]));
    for (const row of layout.rows) this.sections.get(row.section)?.rows.push(row);
    this.rowByIndex = layout.rows; // chart order = seat order, so a binary search finds a seat's row
  }

  /** Draws the sections (seated ones; standing areas are booked through best available). */
  render() {
    const open = this.layout.seatCount <= OPEN_SECTIONS_UP_TO;
    const parts = [el("div", { className: "stage", "aria-hidden": "true" }, "Stage")];
    for (const section of this.sections.values()) {
      if (section.kind !== "seated" || section.rows.length === 0) continue;
      section.summary = el("span", { className: "section-count" });
      const details = el("details", { className: "seat-section", open }, el("summary", {}, el("span", { className: "section-name" }, section.name), " ", section.summary));
      details.addEventListener("toggle", () => {
        if (details.open && !section.grid) this.renderSection(section, details);
      });
      if (open) this.renderSection(section, details);
      parts.push(details);
    }
    this.container.replaceChildren(...parts);
    this.updateCounts();
  }

  renderSection(section, details) {
    const grid = el("div", { className: "seat-grid", role: "group", "aria-label": `${section.name}: seats` });
    for (const row of section.rows) {
      const rowLabel = `Row ${row.label}`;
      const line = el("div", { className: "seat-row", role: "group", "aria-label": rowLabel });
      const seats = el("div", { className: "seats" });
      for (const seat of rowSeats(row)) {
        const button = el("button", { type: "button", className: "seat", tabIndex: -1, "data-seat": seat.seatIndex }, seat.label);
        button.style.setProperty("--tier", this.colours.get(row.priceTier) ?? "#37474f");
        this.buttons[seat.seatIndex] = button;
        this.paint(seat.seatIndex);
        seats.append(button);
      }
      line.append(el("span", { className: "row-label", "aria-hidden": "true" }, row.label), seats, el("span", { className: "row-label", "aria-hidden": "true" }, row.label));
      grid.append(line);
    }
    const first = grid.querySelector(".seat");
    if (first) first.tabIndex = 0;
    grid.addEventListener("click", (event) => {
      const button = event.target.closest?.(".seat");
      if (button) this.toggle(Number(button.dataset.seat));
    });
    grid.addEventListener("keydown", (event) => this.onKey(event));
    section.grid = grid;
    details.append(grid);
  }

  /** The row holding `seatIndex`, and the seat's position in it. */
  locate(seatIndex) {
    const rows = this.rowByIndex;
    let low = 0;
    let high = rows.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const row = rows[mid];
      if (seatIndex < row.firstSeat) high = mid - 1;
      else if (seatIndex >= row.firstSeat + row.count) low = mid + 1;
      else return { row, rowIndex: mid, position: seatIndex - row.firstSeat };
    }
    return undefined;
  }

  describe(seatIndex) {
    const found = this.locate(seatIndex);
    if (!found) return undefined;
    const { row, position } = found;
    const section = this.sections.get(row.section);
    const seat = row.seatLabels?.[position] ?? String(position + 1);
    const priceCents = this.priceOf.get(row.priceTier) ?? 0;
    return { seatIndex, sectionId: row.section, section: section?.name ?? "", row: row.label, seat, priceTier: row.priceTier, priceCents };
  }

  paint(seatIndex) {
    const button = this.buttons[seatIndex];
    if (!button) return;
    const info = this.describe(seatIndex);
    const free = this.available[seatIndex] === 1;
    const picked = this.picked.has(seatIndex);
    button.classList.toggle("taken", !free && !picked);
    button.setAttribute("aria-pressed", String(picked));
    const usable = this.enabled && (free || picked);
    if (usable) button.removeAttribute("aria-disabled");
    else button.setAttribute("aria-disabled", "true");
    const state = picked ? "your pick" : free ? money(info.priceCents, this.currency) : "taken";
    const label = `Row ${info.row}, seat ${info.seat}, ${info.priceTier}, ${state}`;
    button.setAttribute("aria-label", label);
    button.title = label;
  }

  toggle(seatIndex) {
    if (!this.enabled) return;
    if (this.picked.has(seatIndex)) {
      this.picked.delete(seatIndex);
    } else {
      if (this.available[seatIndex] !== 1) return;
      if (this.picked.size >= this.limit) {
        this.onNotice(`You can pick up to ${this.limit} seat${this.limit === 1 ? "" : "s"} for this event.`);
        return;
      }
      this.picked.add(seatIndex);
    }
    this.paint(seatIndex);
    this.onChange(this.selection());
  }

  /** Arrow keys move between seats (up/down keep the place from the row's middle); Home/End go to the row's ends. */
  onKey(event) {
    const current = event.target.closest?.(".seat");
    if (!current) return;
    const found = this.locate(Number(current.dataset.seat));
    if (!found) return;
    const { row, rowIndex, position } = found;
    let target;
    const rowInSection = (offset) => {
      const candidate = this.rowByIndex[rowIndex + offset];
      return candidate && candidate.section === row.section ? candidate : undefined;
    };
    switch (event.key) {
      case "ArrowLeft":
        target = position > 0 ? row.firstSeat + position - 1 : undefined;
        break;
      case "ArrowRight":
        target = position < row.count - 1 ? row.firstSeat + position + 1 : undefined;
        break;
      case "ArrowUp":
      case "ArrowDown": {
        const next = rowInSection(event.key === "ArrowUp" ? -1 : 1);
        target = next ? next.firstSeat + alignedPosition(position, row.count, next.count) : undefined;
        break;
      }
      case "Home":
        target = row.firstSeat;
        break;
      case "End":
        target = row.firstSeat + row.count - 1;
        break;
      default:
        return;
    }
    event.preventDefault();
    const button = target === undefined ? undefined : this.buttons[target];
    if (!button) return;
    current.tabIndex = -1;
    button.tabIndex = 0;
    button.focus();
  }

  /** The picked seats, in seat order, with labels and prices. */
  selection() {
    return [...this.picked].sort((a, b) => a - b).map((i) => this.describe(i));
  }

  /** Picks these seats again where still free (e.g. after signing in). */
  restore(seatIndexes) {
    for (const i of seatIndexes) {
      if (Number.isInteger(i) && this.available[i] === 1 && this.picked.size < this.limit) this.picked.add(i);
      this.paint(i);
    }
    this.onChange(this.selection());
  }

  clear() {
    const was = [...this.picked];
    this.picked.clear();
    for (const i of was) this.paint(i);
    this.onChange(this.selection());
  }

  /** Read-only while the sale is closed. */
  setEnabled(enabled) {
    this.enabled = enabled;
    for (let i = 0; i < this.buttons.length; i++) this.paint(i);
  }

  /** A full availability answer: the bitmap replaces what we had. */
  setSnapshot(availability) {
    const bytes = decodeBitmap(availability.bitmap);
    const changes = [];
    for (let i = 0; i < this.available.length; i++) changes.push([i, bitAvailable(bytes, i)]);
    this.applyChanges(changes);
  }

  /** Seat changes `[seatIndex, 0|1]` from the feed or a snapshot. */
  applyChanges(changes) {
    const lost = [];
    for (const [i, state] of wireChanges(changes)) {
      if (i >= this.available.length || this.available[i] === state) continue;
      this.available[i] = state;
      if (state === 0 && this.picked.has(i)) {
        this.picked.delete(i);
        lost.push(this.describe(i));
      }
      this.paint(i);
    }
    this.updateCounts();
    if (lost.length > 0) {
      this.onChange(this.selection());
      this.onNotice(`Sorry, someone else just took ${lost.map((s) => `${s.section} row ${s.row} seat ${s.seat}`).join(", ")}; pick another seat.`);
    }
  }

  updateCounts() {
    for (const section of this.sections.values()) {
      if (!section.summary) continue;
      let free = 0;
      let total = 0;
      for (const row of section.rows) {
        total += row.count;
        for (let i = row.firstSeat; i < row.firstSeat + row.count; i++) free += this.available[i];
      }
      section.summary.textContent = `${free} of ${total} seats free`;
    }
  }
}

/**
 * Keeps a seat map current: the seat feed WebSocket (snapshot, then `recent`,
 * then every change in order), or polling every 2 s while the socket is down,
 * with reconnects backing off to 30 s. `onMode("live" | "polling")` says which.
 * Returns a stop function.
 */
export function followAvailability(eventId, { onSnapshot, onChanges, onMode, onError }) {
  const availabilityPath = `/api/events/${eventId}/availability`;
  let stopped = false;
  let socket;
  let pollTimer;
  let pollGeneration = 0;
  let reconnectTimer;
  let pingTimer;
  let backoff = RECONNECT_MIN_MS;

  async function poll() {
    if (document.hidden) return;
    const generation = pollGeneration;
    try {
      const availability = await api(availabilityPath);
      // A socket that came back meanwhile owns the map now.
      if (!stopped && pollTimer !== undefined && generation === pollGeneration) onSnapshot(availability);
    } catch (error) {
      onError?.(error);
    }
  }

  function startPolling() {
    if (pollTimer !== undefined || stopped) return;
    onMode("polling");
    pollTimer = setInterval(poll, POLL_INTERVAL_MS);
    void poll();
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = undefined;
    pollGeneration++;
  }

  function connect() {
    if (stopped) return;
    if (typeof WebSocket !== "function") return startPolling();
    const url = new URL(`/api/events/${eventId}/seat-feed`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      return lost();
    }
    socket = ws;
    /** Changes that arrive while the snapshot is loading wait here; null once applied. */
    let waiting = [];
    ws.addEventListener("message", async (message) => {
      if (typeof message.data !== "string" || message.data === "pong") return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data?.type === "seats") {
        if (waiting) waiting.push(data.changes);
        else onChanges(wireChanges(data.changes));
      } else if (data?.type === "hello") {
        stopPolling();
        try {
          onSnapshot(await api(availabilityPath));
        } catch (error) {
          onError?.(error);
          ws.close();
          return;
        }
        onChanges(wireChanges(data.recent));
        for (const changes of waiting) onChanges(wireChanges(changes));
        waiting = null;
        backoff = RECONNECT_MIN_MS;
        onMode("live");
      }
    });
    ws.addEventListener("open", () => {
      clearInterval(pingTimer);
      pingTimer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), PING_INTERVAL_MS);
    });
    ws.addEventListener("close", () => {
      if (socket === ws) lost();
    });
  }

  function lost() {
    socket = undefined;
    clearInterval(pingTimer);
    if (stopped) return;
    startPolling();
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
  }

  connect();
  return {
    /** Fetches a fresh snapshot now (after a refused hold, say); the live feed needs none. */
    refresh: async () => {
      if (socket?.readyState === WebSocket.OPEN) return;
      try {
        onSnapshot(await api(availabilityPath));
      } catch (error) {
        onError?.(error);
      }
    },
    stop() {
      stopped = true;
      stopPolling();
      clearTimeout(reconnectTimer);
      clearInterval(pingTimer);
      socket?.close();
    },
  };
}

/**
 * Pan and zoom for the seat map: the map scrolls inside its frame (dragged on
 * a touch screen: `touch-action: pan-x pan-y` leaves pinching to us), the +
 * and − buttons step through ZOOM_STEPS, and a two-finger pinch zooms
 * smoothly between them. Zooming keeps the point under the fingers (or the
 * middle of the frame) in place. `cue` tells the fan there is more map to see
 * whenever the map is bigger than its frame.
 */
export class MapZoom {
  constructor({ viewport, zoomIn, zoomOut, cue, cueText }) {
    this.viewport = viewport;
    this.zoomInButton = zoomIn;
    this.zoomOutButton = zoomOut;
    this.cue = cue;
    this.cueText = cueText;
    this.size = ZOOM_STEPS[0];
    this.pinch = null;
    zoomIn.addEventListener("click", () => this.zoomTo(zoomStep(this.size, 1)));
    zoomOut.addEventListener("click", () => this.zoomTo(zoomStep(this.size, -1)));
    viewport.addEventListener("touchstart", (event) => this.startPinch(event), { passive: true });
    viewport.addEventListener("touchmove", (event) => this.movePinch(event), { passive: false });
    const end = (event) => {
      if (event.touches.length < 2) this.pinch = null;
    };
    viewport.addEventListener("touchend", end);
    viewport.addEventListener("touchcancel", end);
    new ResizeObserver(() => this.updateCue()).observe(viewport);
    viewport.addEventListener("toggle", () => this.updateCue(), true);
    this.apply();
  }

  /** Zooms to seats of `size` px, keeping the map point at `focus` (client coordinates; default: the frame's middle) where it is. */
  zoomTo(size, focus) {
    const next = Math.min(MAX_SEAT_SIZE, Math.max(ZOOM_STEPS[0], size));
    const frame = this.viewport.getBoundingClientRect();
    const fx = (focus?.x ?? frame.left + frame.width / 2) - frame.left;
    const fy = (focus?.y ?? frame.top + frame.height / 2) - frame.top;
    const x = this.viewport.scrollLeft + fx;
    const y = this.viewport.scrollTop + fy;
    const ratio = next / this.size;
    this.size = next;
    this.apply();
    this.viewport.scrollLeft = x * ratio - fx;
    this.viewport.scrollTop = y * ratio - fy;
  }

  apply() {
    this.viewport.style.setProperty("--seat", `${this.size}px`);
    this.zoomOutButton.disabled = this.size <= ZOOM_STEPS[0];
    this.zoomInButton.disabled = this.size >= ZOOM_STEPS[ZOOM_STEPS.length - 1];
    this.updateCue();
  }

  updateCue() {
    const { scrollWidth, clientWidth, scrollHeight, clientHeight } = this.viewport;
    const bigger = scrollWidth > clientWidth + 1 || scrollHeight > clientHeight + 1;
    this.cue.textContent = this.cueText;
    this.cue.hidden = !bigger;
    this.viewport.classList.toggle("pannable", bigger);
  }

  startPinch(event) {
    if (event.touches.length !== 2) return;
    const [a, b] = event.touches;
    this.pinch = { distance: Math.hypot(a.clientX - b.clientX, a.clientY - b.clientY), size: this.size };
  }

  movePinch(event) {
    if (!this.pinch || event.touches.length !== 2) return;
    event.preventDefault();
    const [a, b] = event.touches;
    const distance = Math.hypot(a.clientX - b.clientX, a.clientY - b.clientY);
    if (this.pinch.distance > 0) this.zoomTo((this.pinch.size * distance) / this.pinch.distance, { x: (a.clientX + b.clientX) / 2, y: (a.clientY + b.clientY) / 2 });
  }
}
