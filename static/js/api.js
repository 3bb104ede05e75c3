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
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "network", "We could not reach Edge Tickets. Check your connection and try again.");
  }
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

/** Where "sign in and come back" goes: only paths on this site (no open redirect). */
export function safeNext(next, fallback = "/") {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return fallback;
  return next;
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

export function money(cents, currency) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

export function dateTime(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function clockTime(msOrIso) {
  return new Date(msOrIso).toLocaleTimeString(undefined, { timeStyle: "medium" });
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
