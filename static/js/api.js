// Shared by every fan page: the session (kept in localStorage), JSON calls to
// the API, errors shown to the fan, and a few formatting helpers. Nothing here
// runs at import time, so Node tests can import the pure helpers.
//
// Pages link to each other without ".html" (/event?id=...): Workers static
// assets serve /event from event.html and would answer /event.html with a
// redirect, one round trip more for every fan.

const SESSION_KEY = "edge-tickets.session";
const ADMISSION_KEY = (eventId) => `edge-tickets.admission.${eventId}`;
/** A session this close to expiry is treated as gone: signing in again beats a 401 halfway through checkout. */
const EXPIRY_MARGIN_MS = 60_000;

/** An error the API answered with (`{ error: { code, message } }`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, { retryAfterSeconds, body, signInAgain = false } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
    this.body = body;
    this.signInAgain = signInAgain;
  }
}

function readJson(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function live(saved) {
  return saved !== null && typeof saved === "object" && typeof saved.token === "string" && Date.parse(saved.expiresAt) > Date.now() + EXPIRY_MARGIN_MS;
}

/** The signed-in fan's session `{ token, accountId, expiresAt, email }`, or null. */
export function currentSession() {
  const saved = readJson(localStorage, SESSION_KEY);
  return live(saved) ? saved : null;
}

/** Keeps the session POST /api/auth/session returned. */
export function saveSession(session) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function signOut() {
  localStorage.removeItem(SESSION_KEY);
}

/**
 * The waiting room's admission token for a hot event, or null. The queue page
 * keeps it with `saveAdmission` once the fan is admitted; booking routes accept
 * it in place of the session for that one event.
 */
export function currentAdmission(eventId) {
  const saved = readJson(localStorage, ADMISSION_KEY(eventId));
  return live(saved) ? saved : null;
}

/** Keeps `{ token, expiresAt }` from POST /api/events/:id/admission. */
export function saveAdmission(eventId, admission) {
  localStorage.setItem(ADMISSION_KEY(eventId), JSON.stringify({ token: admission.token, expiresAt: admission.expiresAt }));
}

/** A fresh id for one hold attempt: a retry of the same attempt reuses it, a new attempt gets a new one. */
export function newRequestId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Calls the API and returns `{ status, data }` for any answer without an
 * error body (so 202 and 402 reach the caller with their payload). Throws
 * `ApiError` for `{ error }` answers and network failures.
 * `auth`: true for the session, or a token string (an admission token).
 */
export async function request(path, { method = "GET", body, auth = false, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    const token = typeof auth === "string" ? auth : currentSession()?.token;
    if (!token) throw new ApiError(401, "signed_out", "Please sign in to continue.", { signInAgain: true });
    headers.Authorization = `Bearer ${token}`;
  }
  let response;
  const sentAt = Date.now();
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "network", "We could not reach Edge Tickets. Check your connection and try again.");
  }
  // A Date header has whole seconds: the server's time was within the second after it.
  learnServerClock(Date.parse(response.headers.get("Date") ?? "") + 500, sentAt, Date.now());
  const data = await response.json().catch(() => undefined);
  const retryAfter = Number(response.headers.get("Retry-After"));
  const extra = { retryAfterSeconds: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined, body: data };
  if (data?.error && typeof data.error.message === "string") {
    // A refused session (expired, revoked) is dropped, and the fan is offered to sign in again.
    const signInAgain = response.status === 401 && auth === true;
    if (signInAgain) signOut();
    throw new ApiError(response.status, String(data.error.code ?? "error"), data.error.message, { ...extra, signInAgain });
  }
  if (!response.ok && data === undefined) {
    throw new ApiError(response.status, "http_error", `Something went wrong (HTTP ${response.status}); please try again.`, extra);
  }
  return { status: response.status, data };
}

/** `request` for the usual case: the data of a 2xx answer; anything else throws. */
export async function api(path, options) {
  const { status, data } = await request(path, options);
  if (status < 200 || status >= 300) throw new ApiError(status, "unexpected_status", `Unexpected answer (HTTP ${status}); please try again.`, { body: data });
  return data;
}

/**
 * A page's way of placing holds (`POST path` with `{ requestId, ...body }`):
 * asked again after a network failure, the same body to the same path keeps
 * its request id, so a hold the server made before the connection dropped is
 * returned rather than made twice; any answer from the server ends the
 * attempt. The hold's createdAt, on the server's clock, teaches the page that
 * clock (checkout counts down on it). Returns `(path, body, auth) => hold`.
 */
export function holdPlacer() {
  let attempt = null;
  return async (path, body, auth) => {
    const key = `${path} ${JSON.stringify(body)}`;
    if (attempt?.key !== key) attempt = { key, requestId: newRequestId() };
    try {
      const sentAt = Date.now();
      const { hold } = await api(path, { method: "POST", body: { requestId: attempt.requestId, ...body }, auth });
      learnServerClock(Date.parse(hold.createdAt), sentAt, Date.now());
      attempt = null;
      return hold;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 0) attempt = null;
      throw error;
    }
  };
}

/**
 * Where "sign in and come back" goes: only a path on this site (no open
 * redirect). The value is parsed as the browser will parse it when the page
 * navigates there (the URL parser drops tabs and newlines, so "/%09/evil.example"
 * is "//evil.example", another host), and kept only when it stays on `origin`;
 * the result is the parsed path, query and fragment.
 */
export function safeNext(next, fallback = "/", origin = globalThis.location?.origin) {
  if (typeof next !== "string" || !next.startsWith("/") || typeof origin !== "string") return fallback;
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return fallback;
  }
  if (url.origin !== origin || !url.pathname.startsWith("/") || url.pathname.startsWith("//")) return fallback;
  return `${url.pathname}${url.search}${url.hash}`;
}

/** The sign-in page, returning to `next` (default: this page). */
export function signInHref(next = location.pathname + location.search) {
  return `/signin?next=${encodeURIComponent(safeNext(next))}`;
}

/** Sends a signed-out fan to sign in (and back); returns the session when there is one. */
export function requireSession() {
  const session = currentSession();
  if (!session) location.assign(signInHref());
  return session;
}

/**
 * Shows an error to the fan in `region` (an element with role="alert"): the
 * API's human message, plus a way forward when there is one. Clears it for null.
 */
export function showError(region, error) {
  region.replaceChildren();
  region.hidden = error === null;
  if (error === null) return;
  const message = error instanceof ApiError ? error.message : "Something went wrong; please try again.";
  region.append(message);
  if (error instanceof ApiError && error.signInAgain) {
    region.append(" ", el("a", { href: signInHref() }, "Sign in"));
  } else if (error instanceof ApiError && error.retryAfterSeconds) {
    region.append(` (try again in ${error.retryAfterSeconds} s)`);
  }
}

/** Says something to screen readers and sighted fans alike, in a role="status" region. */
export function announce(region, text) {
  region.textContent = text;
}

/** Creates an element: `el("a", { href, className }, "text", child)`. Text is never parsed as HTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key in node && !key.startsWith("aria") && !key.startsWith("data")) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== undefined && child !== null && child !== false));
  return node;
}

// ---------------------------------------------------------------- the server's clock

const CLOCK_KEY = "edge-tickets.clock-offset";
/** Offsets smaller than this are noise (a Date header has whole seconds). */
const CLOCK_NOISE_MS = 2_000;

/**
 * Learns how far this device's clock is from the server's, from a server
 * time seen between `sentAt` and `receivedAt` (a response's Date header, or
 * a hold's createdAt): countdowns to server deadlines (holds, sales) then
 * stay right on a phone whose clock is off. Kept for the browser session.
 */
export function learnServerClock(serverMs, sentAt, receivedAt) {
  if (!Number.isFinite(serverMs)) return;
  const offset = serverMs - (sentAt + receivedAt) / 2;
  try {
    sessionStorage.setItem(CLOCK_KEY, String(Math.abs(offset) < CLOCK_NOISE_MS ? 0 : Math.round(offset)));
  } catch {
    // storage refused (private mode): the device clock it is
  }
}

/** The server's time now, as best this page knows it (epoch ms). */
export function serverNow() {
  let offset = 0;
  try {
    offset = Number(sessionStorage.getItem(CLOCK_KEY) ?? 0);
  } catch {
    offset = 0;
  }
  return Date.now() + (Number.isFinite(offset) ? offset : 0);
}

/**
 * A wait in words for a countdown: "2 days 4 h", "3 h 05 min", "12 min 04 s",
 * "45 s"; "now" once past.
 */
export function durationText(ms) {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds === 0) return "now";
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  const secs = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (days > 0) return `${days} day${days === 1 ? "" : "s"} ${hours} h`;
  if (hours > 0) return `${hours} h ${two(minutes)} min`;
  if (minutes > 0) return `${minutes} min ${two(secs)} s`;
  return `${secs} s`;
}

/**
 * Shows a live countdown to `deadline` (epoch ms, server time) in `element`
 * as `format(msLeft)`, every second; calls `onEnd` once when it reaches zero.
 * Returns a function that stops it.
 */
export function liveCountdown(element, deadline, format, onEnd) {
  let timer = 0;
  const tick = () => {
    const left = deadline - serverNow();
    element.textContent = format(Math.max(0, left));
    if (left > 0) return;
    clearInterval(timer);
    onEnd?.();
  };
  timer = setInterval(tick, 1_000);
  tick();
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------- formatting

/** Colours for price tiers, dearest first; white text reads on each (contrast >= 4.5:1). */
const TIER_COLOURS = ["#6a1b9a", "#ad1457", "#1565c0", "#2e7d32", "#b45309", "#00695c", "#5d4037", "#37474f"];

/** Colour per price tier, in the event's price order (dearest first). */
export function tierColours(prices) {
  return new Map(prices.map((price, i) => [price.priceTier, TIER_COLOURS[i % TIER_COLOURS.length]]));
}

export function money(cents, currency) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

export function dateTime(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A time of day: "10:05:40 AM", or "10:05 AM" with style "short". */
export function clockTime(msOrIso, style = "medium") {
  return new Date(msOrIso).toLocaleTimeString(undefined, { timeStyle: style });
}

/** "4:05" for 245 s; "0:00" once past. */
export function minutesSeconds(ms) {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** A query parameter of this page. */
export function param(name) {
  return new URLSearchParams(location.search).get(name);
}

/** Fills the header's account slot: who is signed in and a sign-out button, or a sign-in link. */
export function renderAccount(slot) {
  const session = currentSession();
  if (!session) {
    slot.replaceChildren(el("a", { href: signInHref() }, "Sign in"));
    return;
  }
  const button = el("button", { type: "button", className: "link-button" }, "Sign out");
  button.addEventListener("click", () => {
    signOut();
    location.reload();
  });
  slot.replaceChildren(el("span", { className: "muted" }, session.email ? `Signed in as ${session.email}` : "Signed in"), " ", button);
}
