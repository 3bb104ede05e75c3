// The waiting room of a hot event (/queue?event=<id>): sign in, join the lobby
// (after Turnstile), then poll the published queue document every 2 s and work
// out the place in line and the wait from the lobby ticket's order key, here in
// the browser: no request per fan reaches the room while waiting. Once admitted,
// exchange the ticket for an admission token and hold the best available
// places with it; a fan who already holds or bought seats is sent on to
// checkout or to their tickets instead. Sold out is "for now" until the sale
// ends: the page says so, offers the waitlist, and keeps polling (more
// slowly), since the line moves again when places come back; only the end of
// the sale stops it.
//
// The bold status line names the stage only ("You are in line.", "It is your
// turn."); every number is in the panel under it, drawn from the same queue
// document, so the two cannot disagree.
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
  minutesSeconds,
  param,
  renderAccount,
  request,
  saveAdmission,
  serverNow,
  showError,
  signInHref,
} from "./api.js";
import { fillChoiceFields, readChoice } from "./ticket-choice.js";
import { describeSoldOut, describeWait, FLAGGED_BLOCK_START, fansAhead, lobbyOpensAt, progress, queuePhase, salePhase, secondsToWait } from "./queue-math.js";

const POLL_MS = 2_000;
/** While sold out the room re-checks every 15 s; polling the cached document a little more often is enough. */
const SOLD_OUT_POLL_MS = 5_000;
const MAX_BACKOFF_MS = 15_000;
/**
 * A ticket from the flagged block may be out of date: the organizer may have
 * cleared the fan since, who then waits (and is let in) under another place
 * that the document cannot show this page. So while the ticket is flagged the
 * page asks for its admission this often (twice a minute: well inside the
 * admission limit of 10 a minute per account).
 */
const FLAGGED_CHECK_MS = 30_000;
/** What Cloudflare's test site keys give; used when the site publishes no Turnstile key (local runs). */
const DUMMY_TURNSTILE_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";
/** Cloudflare's widget script; GET /api/config names the one to load (locally, the stand-in's). */
const TURNSTILE_SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js";
/** The API's caps: places per best-available request, per waitlist entry. */
const MAX_BEST_AVAILABLE = 8;
const MAX_WAITLIST_QUANTITY = 4;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECTIONS = ["signed-out", "join", "waiting", "admitted", "holding", "done", "sold-out", "ended"];

const $ = (id) => document.getElementById(id);
const status = $("status");
const errorRegion = $("error");
const eventId = param("event") ?? "";
const ticketKey = `edge-tickets.lobby.${eventId}`;
const deviceKey = "edge-tickets.device";
/** The admitted fan's best-available holds: retried after a network failure with the same request id. */
const postHold = holdPlacer();

let event = null;
let session = null;
/** `{ ticket, orderKey, accountId, block }` from the lobby. */
let ticket = null;
let pollTimer = 0;
let failures = 0;
/** True while the sold-out panel is up (the polls that keep it current do not announce it again). */
let soldOutShown = false;
let stopJoinCountdown = () => {};
let admissionTimer = 0;
/** When this page last asked whether a flagged ticket's fan was let in (serverNow; 0: not yet). */
let flaggedCheckedAt = 0;

function show(section) {
  for (const id of SECTIONS) $(id).hidden = id !== section;
  if (section !== "join") stopJoinCountdown();
  if (section !== "admitted") clearInterval(admissionTimer);
  if (section !== "waiting" && section !== "sold-out") clearTimeout(pollTimer);
}

/** Sets the status line, announcing it only when it changes. */
function say(text) {
  if (status.textContent !== text) announce(status, text);
}

function plural(n, word) {
  return `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;
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
  let scriptUrl = TURNSTILE_SCRIPT;
  try {
    const { data } = await request("/api/config");
    siteKey = data?.turnstile?.siteKey ?? null;
    scriptUrl = data?.turnstile?.scriptUrl ?? TURNSTILE_SCRIPT;
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
    const script = el("script", { src: `${scriptUrl}?render=explicit`, async: true });
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

/** What joining means at this moment of the sale, and when things open; moves on by itself as the line and the sale open. */
function renderJoinTexts(button, humanReady) {
  stopJoinCountdown();
  const phase = salePhase(event, serverNow());
  if (phase === "ended" || phase === "cancelled") return showEnded();
  const saleOpensAt = Date.parse(event.saleStartsAt);
  const lineOpensAt = lobbyOpensAt(event);
  const facts = phase === "on_sale" ? [] : [["Sale opens", dateTime(event.saleStartsAt)]];
  if (phase === "before_lobby") facts.push(["Line opens", dateTime(new Date(lineOpensAt).toISOString())]);
  $("join-facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  const intro = {
    before_lobby: `The line opens ${plural(event.lobbyOpensMinutes, "minute")} before the sale. Everyone who joins it before the sale opens gets a random place, so there is no need to rush or to open more tabs: your place is the same on every device.`,
    lobby: `Everyone who joins before the sale opens at ${clockTime(saleOpensAt, "short")} gets a random place, so there is no need to rush or to open more tabs: your place is the same on every device.`,
    on_sale: "The sale is open. Fans who join now are let in after everyone who was in line when it opened, in the order they arrive: join now to keep your place.",
  };
  $("join-intro").textContent = intro[phase];
  $("join-countdown-line").hidden = phase === "on_sale";
  button.disabled = phase === "before_lobby" || !humanReady();
  if (phase === "on_sale") return;
  $("join-countdown-label").textContent = phase === "before_lobby" ? "The line opens in" : "The sale opens in";
  stopJoinCountdown = liveCountdown($("join-countdown"), phase === "before_lobby" ? lineOpensAt : saleOpensAt, durationText, () => renderJoinTexts(button, humanReady));
}

async function showJoin() {
  show("join");
  say("Join the line to get your place.");
  const button = $("join-button");
  let ready = false;
  renderJoinTexts(button, () => ready);
  let human;
  try {
    human = await humanCheck((isReady) => {
      ready = isReady;
      button.disabled = !ready || salePhase(event, serverNow()) === "before_lobby";
    });
  } catch (error) {
    showError(errorRegion, error);
    return;
  }
  button.onclick = async () => {
    const turnstileToken = human.token();
    if (!turnstileToken) {
      say("Please complete the check above first.");
      return;
    }
    button.disabled = true;
    showError(errorRegion, null);
    say("Joining the line…");
    try {
      const joined = await api(`/api/events/${eventId}/lobby`, { method: "POST", body: { turnstileToken, deviceId: deviceId() }, auth: true });
      ticket = { ticket: joined.ticket, orderKey: joined.orderKey, accountId: session.accountId, block: joined.block };
      localStorage.setItem(ticketKey, JSON.stringify(ticket));
      startWaiting(joined.rejoined ? "Welcome back: your place in line is kept." : "You are in line.", joined.rejoined ? 0 : POLL_MS);
    } catch (error) {
      human.reset();
      button.disabled = false;
      say("");
      if (error instanceof ApiError && error.signInAgain) return showSignedOut();
      showError(errorRegion, error);
    }
  };
}

function showSignedOut() {
  $("signin-link").href = signInHref();
  show("signed-out");
  say("Sign in to join the line.");
}

// ---------------------------------------------------------------- waiting

/** Shows the line and starts polling it (`firstPollMs` after joining: the room publishes its first document on its next tick). */
function startWaiting(line = "You are in line.", firstPollMs = 0) {
  show("waiting");
  say(line);
  $("position").textContent = "Finding your place…";
  schedule(firstPollMs);
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
      $("position").textContent = "You have a place in line; the line is being set up.";
      $("wait-note").textContent = salePhase(event, serverNow()) === "on_sale" ? "" : `The sale opens ${dateTime(event.saleStartsAt)}.`;
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
  if (ticket.orderKey >= FLAGGED_BLOCK_START && serverNow() - flaggedCheckedAt >= FLAGGED_CHECK_MS) {
    flaggedCheckedAt = serverNow();
    if (await admittedThoughFlagged()) return;
  }
  schedule(POLL_MS);
}

/**
 * Asks for the admission of a fan whose ticket is in the flagged block (see
 * FLAGGED_CHECK_MS), quietly: true once it is theirs and the page has moved
 * on; any refusal leaves the fan waiting, as the document says.
 */
async function admittedThoughFlagged() {
  const token = currentSession()?.token;
  if (!token) return false;
  try {
    // The session's token given as such: a refusal here (401 invalid_ticket, say) does not sign the fan out unasked.
    const admission = await api(`/api/events/${eventId}/admission`, { method: "POST", body: { ticket: ticket.ticket }, auth: token });
    saveAdmission(eventId, admission);
    await enterAdmitted(admission);
    return true;
  } catch {
    return false;
  }
}

/** Why the fan stands where they do, in the words that fit this moment of the sale. */
function waitNote(state) {
  if (state.paused) return "Admission is paused for a moment; your place is kept.";
  // The document's own clock says whether the sale has opened.
  if (state.updatedAt < state.saleStartsAt) {
    return ticket.block === "lobby"
      ? `The sale opens at ${clockTime(state.saleStartsAt, "short")}. Everyone in line before then got a random place, so it did not matter when you joined.`
      : `The sale opens at ${clockTime(state.saleStartsAt, "short")}.`;
  }
  return ticket.block === "late"
    ? "You joined after the sale opened, so you are let in after everyone who was in line when it opened, in the order fans arrived."
    : "The sale is open: fans are let in in line order.";
}

function renderWait(state) {
  const ahead = fansAhead(state, ticket.orderKey);
  const now = serverNow();
  const seconds = secondsToWait(state, ahead, now);
  $("position").textContent = ahead === 0 ? "You are next in line." : `About ${plural(ahead, "fan")} ${ahead === 1 ? "is" : "are"} ahead of you.`;
  const share = progress(state, ahead);
  $("progress").value = share;
  $("progress-label").textContent = ahead === 0 ? "Nobody is ahead of you." : `${Math.round(share * 100)}% of the line up to your place has been let in.`;
  $("wait").textContent = describeWait(seconds) ?? "Not known while admission is paused";
  $("eta").textContent = seconds === null ? "Not known yet" : clockTime(now + seconds * 1000, "short");
  $("wait-note").textContent = waitNote(state);
  $("updated").textContent = `Updated ${clockTime(state.updatedAt)}.`;
  say(state.paused ? "You are in line. Admission is paused for a moment." : "You are in line.");
}

// ---------------------------------------------------------------- admitted

async function exchange() {
  const saved = currentAdmission(eventId);
  if (saved) return enterAdmitted(saved);
  try {
    const admission = await api(`/api/events/${eventId}/admission`, { method: "POST", body: { ticket: ticket.ticket }, auth: true });
    saveAdmission(eventId, admission);
    enterAdmitted(admission);
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

function checkoutHref(holdId) {
  return `/checkout?event=${encodeURIComponent(eventId)}&hold=${encodeURIComponent(holdId)}`;
}

/**
 * The fan's turn: unless they already hold seats here (on to checkout) or have
 * bought them (on to their tickets), the best-available form.
 */
async function enterAdmitted(admission) {
  clearTimeout(pollTimer);
  let holds = [];
  try {
    ({ holds } = await api(`/api/events/${eventId}/holds`, { auth: true }));
  } catch {
    holds = []; // not essential: the form works without it
  }
  const places = (hold) => hold.seats.length + hold.generalAdmission.reduce((sum, g) => sum + g.quantity, 0);
  const bought = holds.filter((hold) => hold.status === "confirmed");
  if (bought.length > 0) return showDone(bought.reduce((sum, hold) => sum + places(hold), 0));
  const live = holds.find((hold) => hold.status === "live" && Date.parse(hold.expiresAt) > serverNow());
  if (live) return showHolding(live);
  showAdmitted(admission);
}

function showDone(count) {
  show("done");
  say("You have your tickets for this event.");
  $("done-text").textContent = `You bought ${plural(count, "ticket")} for this event. They are in My tickets, and we email them to you.`;
  $("done-link").href = `/tickets?event=${encodeURIComponent(eventId)}`;
  $("done-heading").focus();
}

function showHolding(hold) {
  show("holding");
  say("Your seats are on hold.");
  $("holding-text").textContent = `Pay before ${clockTime(hold.expiresAt)} to keep them.`;
  $("holding-link").href = checkoutHref(hold.holdId);
  $("holding-heading").focus();
}

function showAdmitted(admission) {
  show("admitted");
  const form = $("best-form");
  fillChoiceFields(form, "best", { event, max: MAX_BEST_AVAILABLE, preferred: 2, quantityLabel: "Tickets", split: true });
  const expiresAt = Date.parse(admission.expiresAt);
  const tick = () => {
    const left = expiresAt - serverNow();
    $("admission-left").textContent = left > 0 ? `You have ${minutesSeconds(left)} to hold your seats.` : "Your turn has timed out.";
  };
  tick();
  clearInterval(admissionTimer);
  admissionTimer = setInterval(tick, 1_000);
  say("It is your turn. Choose your tickets and hold the best available seats.");
  $("admitted-heading").focus();

  form.onsubmit = async (submit) => {
    submit.preventDefault();
    const button = $("best-submit");
    button.disabled = true;
    showError(errorRegion, null);
    say("Finding the best seats…");
    try {
      const hold = await postHold(`/api/events/${eventId}/holds/best`, readChoice(form), admission.token);
      say("Seats held. Taking you to checkout…");
      location.assign(checkoutHref(hold.holdId));
    } catch (error) {
      button.disabled = false;
      say("It is your turn.");
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
  say("Sold out right now. Your place in line is kept.");
  void offerWaitlist();
}

/** Places came back and the line moves again. */
function backInLine() {
  soldOutShown = false;
  show("waiting");
  say("Places have come back: the line is moving again.");
}

function showEnded() {
  soldOutShown = false;
  show("ended");
  $("ended-heading").focus();
  say("The sale has ended.");
}

async function offerWaitlist() {
  const form = $("waitlist-form");
  const result = $("waitlist-result");
  fillChoiceFields(form, "waitlist", { event, max: MAX_WAITLIST_QUANTITY, quantityLabel: "Tickets wanted" });
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
    try {
      const { entry } = await api(`/api/events/${eventId}/waitlist`, { method: "POST", body: readChoice(form), auth: true });
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
    say("");
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This link does not name an event. ", el("a", { href: "/" }, "See all events"));
    return;
  }
  try {
    event = await api(`/api/events/${eventId}`);
  } catch (error) {
    $("event-name").textContent = "Event unavailable";
    say("");
    showError(errorRegion, error);
    return;
  }
  document.title = `Waiting room: ${event.name} · Edge Tickets`;
  $("event-name").textContent = event.name;
  $("event-meta").textContent = `${event.venueName} · ${dateTime(event.startsAt)}`;
  $("event-link").href = `/event?id=${encodeURIComponent(eventId)}`;
  if (event.demandClass !== "hot") {
    say("");
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This event has no waiting room. ", el("a", { href: `/event?id=${encodeURIComponent(eventId)}` }, "Choose your seats"));
    return;
  }
  const phase = salePhase(event, serverNow());
  if (phase === "ended") return showEnded();
  if (phase === "cancelled") {
    say("This event was cancelled.");
    return;
  }
  session = currentSession();
  if (!session) return showSignedOut();
  ticket = savedTicket();
  if (!ticket) return showJoin();
  const admission = currentAdmission(eventId);
  if (admission) return enterAdmitted(admission);
  startWaiting();
}

void main();
