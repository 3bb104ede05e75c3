// The waiting room of a hot event (/queue?event=<id>): sign in, join the lobby
// (after Turnstile), then poll the published queue document every 2 s and work
// out the place in line and the wait from the lobby ticket's order key, here in
// the browser: no request per fan reaches the room while waiting. Once admitted,
// exchange the ticket for an admission token and hold the best available
// places with it. Sold out is "for now" until the sale ends: the page says so,
// offers the waitlist, and keeps polling (more slowly), since the line moves
// again when places come back; only the end of the sale stops it.
import { announce, api, ApiError, clockTime, currentAdmission, currentSession, dateTime, el, minutesSeconds, money, newRequestId, param, renderAccount, request, saveAdmission, showError, signInHref } from "./api.js";
import { describeSoldOut, describeWait, fansAhead, progress, queuePhase, secondsToWait } from "./queue-math.js";

const POLL_MS = 2_000;
/** While sold out the room re-checks every 15 s; polling the cached document a little more often is enough. */
const SOLD_OUT_POLL_MS = 5_000;
const MAX_BACKOFF_MS = 15_000;
/** What Cloudflare's test site keys give; used when the site publishes no Turnstile key (local runs). */
const DUMMY_TURNSTILE_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";
const TURNSTILE_SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";
/** The API's caps: places per best-available request, per waitlist entry. */
const MAX_BEST_AVAILABLE = 8;
const MAX_WAITLIST_QUANTITY = 4;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECTIONS = ["signed-out", "join", "waiting", "admitted", "sold-out", "ended"];

const $ = (id) => document.getElementById(id);
const status = $("status");
const errorRegion = $("error");
const eventId = param("event") ?? "";
const ticketKey = `edge-tickets.lobby.${eventId}`;
const deviceKey = "edge-tickets.device";

let event = null;
let session = null;
/** `{ ticket, orderKey, accountId }` from the lobby. */
let ticket = null;
let pollTimer = 0;
let failures = 0;
let lastWait = "";
/** The hold attempt in flight: retried after a network failure with the same request id. */
let attempt = null;
/** True while the sold-out panel is up (the polls that keep it current do not announce it again). */
let soldOutShown = false;

function show(section) {
  for (const id of SECTIONS) $(id).hidden = id !== section;
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------- the lobby ticket and device id, kept per browser

function savedTicket() {
  try {
    const saved = JSON.parse(localStorage.getItem(ticketKey) ?? "null");
    if (saved && typeof saved.ticket === "string" && typeof saved.orderKey === "number" && saved.accountId === session?.accountId) return saved;
  } catch {
    // unreadable: join again (the room returns the same place)
  }
  return null;
}

function forgetTicket() {
  localStorage.removeItem(ticketKey);
  ticket = null;
}

/** A random id for this browser (not a fingerprint): many accounts on one device is a bot signal. */
function deviceId() {
  let id = localStorage.getItem(deviceKey);
  if (!id || !/^[A-Za-z0-9_-]{8,128}$/.test(id)) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(deviceKey, id);
  }
  return id;
}

// ---------------------------------------------------------------- Turnstile

/** The human check: the widget when the site publishes its key (GET /api/config), else the test token. */
async function humanCheck(onReady) {
  let siteKey = null;
  try {
    const { data } = await request("/api/config");
    siteKey = data?.turnstileSiteKey ?? data?.turnstile?.siteKey ?? null;
  } catch {
    siteKey = null;
  }
  if (!siteKey) {
    onReady(true);
    return { token: () => DUMMY_TURNSTILE_TOKEN, reset() {} };
  }
  let token = null;
  let widget = null;
  onReady(false);
  await new Promise((resolve, reject) => {
    const script = el("script", { src: TURNSTILE_SCRIPT, async: true });
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new ApiError(0, "network", "The human check could not load; please reload the page.")));
    document.head.append(script);
  });
  widget = window.turnstile.render($("turnstile"), {
    sitekey: siteKey,
    action: "lobby",
    callback: (value) => {
      token = value;
      onReady(true);
    },
    "expired-callback": () => {
      token = null;
      onReady(false);
    },
    "error-callback": () => {
      token = null;
      onReady(false);
    },
  });
  return {
    token: () => token,
    reset() {
      token = null;
      onReady(false);
      window.turnstile.reset(widget);
    },
  };
}

// ---------------------------------------------------------------- joining

async function showJoin() {
  show("join");
  const button = $("join-button");
  const opensAt = Date.parse(event.saleStartsAt) - event.lobbyOpensMinutes * 60_000;
  $("join-when").textContent =
    Date.now() < opensAt ? `The line opens ${dateTime(new Date(opensAt).toISOString())}; the sale ${dateTime(event.saleStartsAt)}.` : `The sale opens ${dateTime(event.saleStartsAt)}.`;
  let human;
  try {
    human = await humanCheck((ready) => (button.disabled = !ready));
  } catch (error) {
    showError(errorRegion, error);
    return;
  }
  button.onclick = async () => {
    const turnstileToken = human.token();
    if (!turnstileToken) {
      announce(status, "Please complete the check above first.");
      return;
    }
    button.disabled = true;
    showError(errorRegion, null);
    announce(status, "Joining the line…");
    try {
      const joined = await api(`/api/events/${eventId}/lobby`, { method: "POST", body: { turnstileToken, deviceId: deviceId() }, auth: true });
      ticket = { ticket: joined.ticket, orderKey: joined.orderKey, accountId: session.accountId };
      localStorage.setItem(ticketKey, JSON.stringify(ticket));
      announce(status, joined.rejoined ? "Welcome back: your place in line is kept." : "You are in line.");
      startWaiting();
    } catch (error) {
      human.reset();
      button.disabled = false;
      announce(status, "");
      if (error instanceof ApiError && error.signInAgain) return showSignedOut();
      showError(errorRegion, error);
    }
  };
}

function showSignedOut() {
  $("signin-link").href = signInHref();
  show("signed-out");
}

// ---------------------------------------------------------------- waiting

function startWaiting() {
  show("waiting");
  $("position").textContent = "Finding your place…";
  schedule(0);
}

function schedule(ms) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(() => void poll(), ms);
}

async function poll() {
  let state;
  try {
    state = (await request(`/api/events/${eventId}/queue`)).data;
    failures = 0;
  } catch (error) {
    if (error instanceof ApiError && error.code === "queue_not_open") {
      $("position").textContent = "You are in line; the queue is being set up.";
      $("wait").textContent = `The sale opens ${dateTime(event.saleStartsAt)}.`;
      schedule(POLL_MS);
      return;
    }
    failures += 1;
    $("updated").textContent = "Connection lost; trying again…";
    schedule(Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS));
    return;
  }
  const phase = queuePhase(state, ticket.orderKey);
  if (phase === "ended") return showEnded();
  if (phase === "admitted") return exchange();
  if (phase === "sold-out") {
    showSoldOut(state);
    schedule(SOLD_OUT_POLL_MS);
    return;
  }
  if (soldOutShown) backInLine();
  renderWait(state);
  schedule(POLL_MS);
}

function renderWait(state) {
  const now = Date.now();
  const ahead = fansAhead(state, ticket.orderKey);
  const before = now < state.saleStartsAt;
  $("position").textContent = ahead === 0 ? "You are next in line." : `About ${plural(ahead, "fan")} ahead of you.`;
  const wait = describeWait(secondsToWait(state, ahead, now)) ?? "unknown";
  const text = state.paused
    ? "Admission is paused for a moment; your place is kept."
    : before
      ? `The sale opens at ${clockTime(state.saleStartsAt)}; your place was drawn at random. Estimated wait: ${wait}.`
      : `Estimated wait: ${wait}.`;
  $("wait").textContent = text;
  $("progress").value = progress(state, ahead);
  $("progress").setAttribute("aria-valuetext", `${Math.round(progress(state, ahead) * 100)}% of the line ahead of you is through`);
  $("updated").textContent = `Updated ${clockTime(state.updatedAt)}.`;
  // Screen readers hear the wait when it changes, not every two seconds.
  if (wait !== lastWait) {
    lastWait = wait;
    announce(status, `${$("position").textContent} ${text}`);
  }
}

// ---------------------------------------------------------------- admitted

async function exchange() {
  const saved = currentAdmission(eventId);
  if (saved) return showAdmitted(saved);
  try {
    const admission = await api(`/api/events/${eventId}/admission`, { method: "POST", body: { ticket: ticket.ticket }, auth: true });
    saveAdmission(eventId, admission);
    showAdmitted(admission);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "not_admitted_yet") return schedule(POLL_MS); // the copy of the queue the exchange read is a moment behind
    if (error.code === "sold_out") {
      showSoldOut(null);
      return schedule(SOLD_OUT_POLL_MS);
    }
    if (error.signInAgain) return showSignedOut();
    if (error.code === "invalid_ticket" || error.code === "not_in_lobby") {
      forgetTicket();
      showError(errorRegion, error);
      return showJoin();
    }
    showError(errorRegion, error);
    schedule(MAX_BACKOFF_MS);
  }
}

/** Drops a lapsed admission (saveAdmission with a past expiry), so the next exchange asks the room again. */
function forgetAdmission() {
  saveAdmission(eventId, { token: "", expiresAt: new Date(0).toISOString() });
}

function options(select, values) {
  select.replaceChildren(...values.map(([value, label]) => el("option", { value }, label)));
}

function tierOptions(select) {
  options(select, [["", "Best in any tier"], ...event.prices.map((p) => [p.priceTier, `${p.priceTier} (${money(p.priceCents, event.currency)})`])]);
}

let admissionTimer = 0;

function showAdmitted(admission) {
  clearTimeout(pollTimer);
  show("admitted");
  const count = Math.min(event.purchaseLimit, MAX_BEST_AVAILABLE);
  options($("best-quantity"), Array.from({ length: count }, (_, i) => [String(i + 1), String(i + 1)]));
  $("best-quantity").value = String(Math.min(2, count));
  tierOptions($("best-tier"));
  const expiresAt = Date.parse(admission.expiresAt);
  const tick = () => {
    const left = expiresAt - Date.now();
    $("admission-left").textContent = left > 0 ? `You have ${minutesSeconds(left)} to hold your seats.` : "Your turn has timed out.";
  };
  tick();
  clearInterval(admissionTimer);
  admissionTimer = setInterval(tick, 1_000);
  announce(status, "It is your turn. Choose your tickets and hold the best available seats.");
  $("admitted-heading").focus();

  const form = $("best-form");
  form.onsubmit = async (submit) => {
    submit.preventDefault();
    const button = $("best-submit");
    button.disabled = true;
    showError(errorRegion, null);
    announce(status, "Finding the best seats…");
    const tier = $("best-tier").value;
    const body = { quantity: Number($("best-quantity").value), allowSplit: $("best-split").checked, ...(tier ? { priceTier: tier } : {}) };
    const key = JSON.stringify(body);
    if (attempt?.key !== key) attempt = { key, requestId: newRequestId() };
    try {
      const { hold } = await api(`/api/events/${eventId}/holds/best`, { method: "POST", body: { requestId: attempt.requestId, ...body }, auth: admission.token });
      attempt = null;
      announce(status, "Seats held. Taking you to checkout…");
      location.assign(`/checkout?event=${encodeURIComponent(eventId)}&hold=${encodeURIComponent(hold.holdId)}`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 0) attempt = null;
      button.disabled = false;
      announce(status, "");
      if (error instanceof ApiError && error.status === 401) {
        // The admission lapsed: ask the room for it again.
        forgetAdmission();
        return exchange();
      }
      showError(errorRegion, error);
    }
  };
}

// ---------------------------------------------------------------- sold out (for now) and ended

/**
 * Nothing is free right now. The fan keeps their place (the page keeps
 * polling), and may join the waitlist too: it is offered returned places first.
 */
function showSoldOut(state) {
  if (state) $("sold-out-detail").textContent = describeSoldOut(state);
  if (soldOutShown) return;
  soldOutShown = true;
  show("sold-out");
  $("sold-out-heading").focus();
  announce(status, "Sold out right now. Seats may come back: your place in line is kept, and you may join the waitlist too.");
  void offerWaitlist();
}

/** Places came back and the line moves again. */
function backInLine() {
  soldOutShown = false;
  show("waiting");
  announce(status, "Places have come back: the line is moving again.");
}

function showEnded() {
  clearTimeout(pollTimer);
  soldOutShown = false;
  show("ended");
  $("ended-heading").focus();
  announce(status, "The sale has ended.");
}

async function offerWaitlist() {
  const form = $("waitlist-form");
  const result = $("waitlist-result");
  const count = Math.min(event.purchaseLimit, MAX_WAITLIST_QUANTITY);
  options($("waitlist-quantity"), Array.from({ length: count }, (_, i) => [String(i + 1), String(i + 1)]));
  tierOptions($("waitlist-tier"));
  const waiting = (entry) => {
    form.hidden = true;
    const where = entry.position ? `You are number ${entry.position} on the waitlist.` : "You are on the waitlist.";
    result.textContent = `${where} We will email you if places come back for you; your place in line is kept as well.`;
  };
  try {
    const { entry } = await api(`/api/events/${eventId}/waitlist`, { auth: true });
    if (entry.status === "waiting" || entry.status === "offered") return waiting(entry);
  } catch {
    // not on it yet (or no waitlist): the form stays
  }
  form.onsubmit = async (submit) => {
    submit.preventDefault();
    $("waitlist-submit").disabled = true;
    showError(errorRegion, null);
    const tier = $("waitlist-tier").value;
    try {
      const { entry } = await api(`/api/events/${eventId}/waitlist`, { method: "POST", body: { quantity: Number($("waitlist-quantity").value), ...(tier ? { priceTier: tier } : {}) }, auth: true });
      waiting(entry);
    } catch (error) {
      $("waitlist-submit").disabled = false;
      if (error instanceof ApiError && error.code === "not_found") {
        form.hidden = true;
        result.textContent = "The waitlist is not open for this event yet. Please check back later.";
      } else if (error instanceof ApiError && error.code === "not_sold_out") {
        // Places are free this moment: they go to the waitlist's fans first, then to the line.
        result.textContent = "Some places have just come back. They go to fans already on the waitlist first, then to the line in order: keep this page open.";
      } else showError(errorRegion, error);
    }
  };
}

// ---------------------------------------------------------------- start

async function main() {
  renderAccount($("account"));
  if (!UUID.test(eventId)) {
    $("event-name").textContent = "Waiting room not found";
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This link does not name an event. ", el("a", { href: "/" }, "See all events"));
    return;
  }
  try {
    event = await api(`/api/events/${eventId}`);
  } catch (error) {
    $("event-name").textContent = "Event unavailable";
    showError(errorRegion, error);
    return;
  }
  document.title = `Waiting room: ${event.name} · Edge Tickets`;
  $("event-name").textContent = event.name;
  $("event-meta").textContent = `${event.venueName} · ${dateTime(event.startsAt)}`;
  if (event.demandClass !== "hot") {
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This event has no waiting room. ", el("a", { href: `/event?id=${encodeURIComponent(eventId)}` }, "Choose your seats"));
    return;
  }
  if (event.saleState === "ended" || event.saleState === "cancelled") {
    announce(status, event.saleState === "ended" ? "The sale has ended." : "This event was cancelled.");
    return;
  }
  session = currentSession();
  if (!session) return showSignedOut();
  ticket = savedTicket();
  if (!ticket) return showJoin();
  const admission = currentAdmission(eventId);
  if (admission) return showAdmitted(admission);
  startWaiting();
}

void main();
