// The door scanner. Signs in with a check-in API key held in this module's memory
// only; verifies each ticket's compact code offline against the JWKS (cached in
// localStorage, fetched again whenever the page signs in online); queues the scans
// in localStorage and sends them to POST /admin/events/:id/check-in/sync when the
// network is there, so the door keeps working when the venue's network fails. The
// server answers which scan won when two doors let the same ticket in while offline.
// Scans come from the camera (BarcodeDetector where the browser has it, the vendored
// jsQR otherwise) or from the code typed or pasted in.
import { isCompactCode, isForEvent, verifyCompactCode } from "/js/compact-ticket.js";
// jsQR 1.4.0 from npm (dist/jsQR.js, copied as is): its wrapper sets self.jsQR.
import "/door/vendor/jsQR.js";
import { clockTime, el } from "/js/api.js";

const JWKS_KEY = "door.jwks";
const DOOR_NAME_KEY = "door.name";
/** How often queued scans are retried while the browser thinks it is online. */
const SYNC_INTERVAL_MS = 10_000;
/** The camera reads the same code many times a second: one scan per code per this long. */
const SAME_CODE_PAUSE_MS = 4_000;

const $ = (id) => document.getElementById(id);

let apiKey = null;
let eventId = "";
let doorId = "";
let jwks = null;
let syncing = false;
let syncTimer = 0;

const queueKey = () => `door.queue.${eventId}.${doorId}`;
const admittedKey = () => `door.admitted.${eventId}.${doorId}`;

function stored(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null") ?? fallback;
  } catch {
    return fallback;
  }
}
const store = (key, value) => localStorage.setItem(key, JSON.stringify(value));

function showError(message) {
  $("error").hidden = message === null;
  $("error").textContent = message ?? "";
}

function placeText(place) {
  return "ga" in place ? `Section ${place.section}, general admission` : `Section ${place.section}, Row ${place.row}, Seat ${place.seat}`;
}

// ---------------------------------------------------------------- the network

async function admin(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${apiKey}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/admin${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => undefined);
  if (response.ok) return data;
  const error = new Error(data?.error?.message ?? `HTTP ${response.status}`);
  error.status = response.status;
  throw error;
}

function showNetwork() {
  const waiting = stored(queueKey(), []).length;
  const queued = waiting === 0 ? "every scan is sent" : `${waiting} scan${waiting === 1 ? "" : "s"} waiting to be sent`;
  $("network").textContent = navigator.onLine ? `Online: ${queued}.` : `Offline: checking tickets on this device; ${queued}.`;
}

/** Sends the queued scans; each answered scan leaves the queue, and a conflict or refusal is shown. */
async function sync() {
  const queue = stored(queueKey(), []);
  // The browser knows when it has no network at all: no request then (the "online" event brings the next try).
  if (syncing || queue.length === 0 || apiKey === null || !navigator.onLine) return showNetwork();
  syncing = true;
  try {
    const { results } = await admin("POST", `/events/${eventId}/check-in/sync`, {
      doorId,
      scans: queue.map(({ scanId, code, scannedAt }) => ({ scanId, code, scannedAt })),
    });
    const answered = new Set(results.map((result) => result.scanId));
    for (const result of results) {
      const scan = queue.find((entry) => entry.scanId === result.scanId);
      if (!scan) continue;
      if (result.conflict) reportConflict(scan, result.conflict);
      else if (result.result === "invalid") reportConflict(scan, null, result.reason);
    }
    store(queueKey(), stored(queueKey(), []).filter((entry) => !answered.has(entry.scanId)));
  } catch (error) {
    // Offline or the server is unreachable: the scans stay queued for the next try. A refused key signs out.
    if (error.status === 401) signOut("The API key was refused (revoked or expired). Queued scans stay on this device; sign in again to send them.");
    else if (error.status) showError(`Sending scans failed: ${error.message}`);
  } finally {
    syncing = false;
    showNetwork();
  }
}

function reportConflict(scan, winner, reason) {
  $("no-conflicts").hidden = true;
  const text =
    winner === null
      ? `${scan.label}: let in here at ${clockTime(scan.scannedAt)}, but the server refused the ticket (${reason.replaceAll("_", " ")}).`
      : `${scan.label}: scanned here at ${clockTime(scan.scannedAt)} and at ${winner.doorId ?? "another scanner"}` +
        `${winner.scannedAt ? ` at ${clockTime(winner.scannedAt)}` : ""}. The scan at ${winner.doorId ?? "the other scanner"} won: it reached the server first.`;
  $("conflicts").prepend(el("li", { className: "conflict" }, el("strong", {}, "Double scan. "), text));
  showVerdict("refuse", "Double scan", text);
}

// ---------------------------------------------------------------- checking a code

function showVerdict(kind, title, detail) {
  const box = $("verdict");
  box.hidden = false;
  box.className = `verdict ${kind}`;
  $("verdict-title").textContent = title;
  $("verdict-detail").textContent = detail;
}

function logScan(title, detail) {
  $("no-scans").hidden = true;
  $("log").prepend(el("li", {}, el("strong", {}, `${clockTime(Date.now())} ${title}. `), detail));
  while ($("log").children.length > 50) $("log").lastElementChild.remove();
}

const REFUSALS = {
  bad_token: ["Not a valid ticket", "The code is damaged, or was not issued by us. Do not let in."],
  expired: ["Expired ticket", "This ticket is no longer valid."],
};

/** Checks a scanned or typed code offline, admits or refuses it, and queues an admitted scan for the server. */
async function checkCode(raw) {
  // base45 may start with a space, which is part of the code; only the end is trimmed.
  const code = raw.trimEnd();
  if (code.trim() === "") return;
  showError(null);
  if (!isCompactCode(code)) {
    showVerdict("refuse", "Not a ticket code", "Ask for the QR code under My tickets, or the one in the ticket email.");
    return logScan("Not a ticket code", "");
  }
  const verified = await verifyCompactCode(code, jwks);
  if (!verified.ok) {
    const [title, detail] = REFUSALS[verified.reason] ?? REFUSALS.bad_token;
    showVerdict("refuse", title, detail);
    return logScan(title, "");
  }
  const { ticket } = verified;
  const label = placeText(ticket.place);
  if (!isForEvent(ticket, eventId)) {
    showVerdict("refuse", "Another event's ticket", `${label}. This ticket is not for this event.`);
    return logScan("Another event's ticket", label);
  }
  const admitted = stored(admittedKey(), {});
  if (admitted[ticket.ticketId]) {
    showVerdict("refuse", "Already scanned", `${label}. Let in at this door at ${clockTime(admitted[ticket.ticketId])}.`);
    return logScan("Already scanned", label);
  }
  const scannedAt = new Date().toISOString();
  store(admittedKey(), { ...admitted, [ticket.ticketId]: scannedAt });
  store(queueKey(), [...stored(queueKey(), []), { scanId: crypto.randomUUID(), code, scannedAt, ticketId: ticket.ticketId, label }]);
  showVerdict("admit", "Let in", label);
  logScan("Let in", label);
  showNetwork();
  void sync();
}

$("manual").addEventListener("submit", (event) => {
  event.preventDefault();
  const code = $("code").value;
  $("code").value = "";
  void checkCode(code);
});

// ---------------------------------------------------------------- the camera

let stream = null;
let lastCode = { text: "", at: 0 };

async function qrReader() {
  if ("BarcodeDetector" in window && (await window.BarcodeDetector.getSupportedFormats()).includes("qr_code")) {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    return async (video) => (await detector.detect(video))[0]?.rawValue;
  }
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    if (canvas.width === 0) return undefined;
    context.drawImage(video, 0, 0);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    return window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" })?.data;
  };
}

$("camera-start").addEventListener("click", async () => {
  const video = $("camera");
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch {
    showError("The camera could not be opened. Allow the camera for this page, or type the ticket code below.");
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  $("camera-start").hidden = true;
  $("camera-stop").hidden = false;
  await video.play();
  const read = await qrReader();
  const tick = async () => {
    if (stream === null) return;
    const text = await read(video).catch(() => undefined);
    if (text && (text !== lastCode.text || Date.now() - lastCode.at > SAME_CODE_PAUSE_MS)) {
      lastCode = { text, at: Date.now() };
      await checkCode(text);
    }
    requestAnimationFrame(() => void tick());
  };
  void tick();
});

function stopCamera() {
  for (const track of stream?.getTracks() ?? []) track.stop();
  stream = null;
  $("camera").hidden = true;
  $("camera-start").hidden = false;
  $("camera-stop").hidden = true;
}
$("camera-stop").addEventListener("click", stopCamera);

// ---------------------------------------------------------------- signing in and out

$("door-name").value = localStorage.getItem(DOOR_NAME_KEY) ?? "";

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(null);
  apiKey = $("api-key").value.trim();
  eventId = $("event-id").value.trim().toLowerCase();
  doorId = $("door-name").value.trim();
  const eventNameKey = `door.event.${eventId}`;
  let offline = false;
  try {
    const { event: found } = await admin("GET", `/events/${encodeURIComponent(eventId)}/check-in`);
    localStorage.setItem(eventNameKey, found.name);
    const response = await fetch("/.well-known/jwks.json");
    if (!response.ok) throw new Error("The ticket keys could not be loaded.");
    jwks = await response.json();
    store(JWKS_KEY, jwks);
  } catch (error) {
    // Offline (no answer at all): a door that signed in here before goes on with the cached keys; the key is
    // checked when its first scans are sent.
    offline = !error.status && jwks !== null && localStorage.getItem(eventNameKey) !== null;
    if (!offline) {
      apiKey = null;
      showError(error.status === 401 ? "That API key was refused." : error.status === 404 ? "No event of yours has that ID." : `Could not start: ${error.message}`);
      return;
    }
  }
  $("event-name").textContent = `${localStorage.getItem(eventNameKey)}: ${doorId}`;
  localStorage.setItem(DOOR_NAME_KEY, doorId);
  $("api-key").value = "";
  $("signin").hidden = true;
  $("scanner").hidden = false;
  showNetwork();
  if (offline) showError("Started offline with the ticket keys saved on this device; the API key is checked when the network returns.");
  syncTimer = setInterval(() => void sync(), SYNC_INTERVAL_MS);
  void sync();
  $("code").focus();
});

function signOut(message) {
  apiKey = null;
  clearInterval(syncTimer);
  stopCamera();
  $("scanner").hidden = true;
  $("signin").hidden = false;
  showError(message ?? null);
}
$("signout").addEventListener("click", () => signOut());

// The key set cached by an earlier sign-in: a door can start again while the network is down.
jwks = stored(JWKS_KEY, null);
window.addEventListener("online", () => void sync());
window.addEventListener("offline", showNetwork);
