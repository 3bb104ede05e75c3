// Checkout: shows the hold with a countdown to its end (on the server's clock),
// pays for it (200 paid, 402 declined: another card until retryUntil, 202
// processing: poll; 202 requires_action: Stripe.js runs the card's 3-D Secure
// challenge, then poll), or releases it. The card is collected by Stripe.js
// (its URL and publishable key from GET /api/config) into a PaymentMethod.
// It asks for the hold's payment only once this browser has started one (a
// fresh hold has none: asking would be a 404). A free hold (total 0) asks for
// no card: its button gets the tickets.
import { announce, api, ApiError, clockTime, durationText, el, minutesSeconds, money, param, renderAccount, request, requireSession, serverNow, showError } from "./api.js";

const POLL_INTERVAL_MS = 2_000;
/** The gateway settles or the hold is released within about 2 minutes; stop polling a little after. */
const POLL_LIMIT_MS = 3 * 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The gateway's decline codes (Stripe's) in words. */
const DECLINES = {
  insufficient_funds: "Your card has insufficient funds.",
  lost_card: "Your card was declined.",
  stolen_card: "Your card was declined.",
  expired_card: "Your card has expired.",
  incorrect_cvc: "Your card's security code is incorrect.",
  processing_error: "Your card could not be processed.",
  payment_intent_authentication_failure: "Your bank could not confirm the payment (the card's security check failed).",
};

const $ = (id) => document.getElementById(id);
const status = $("status");
const errorRegion = $("error");
const eventId = param("event") ?? "";
const holdId = param("hold") ?? "";
const holdPath = `/api/events/${encodeURIComponent(eventId)}/holds/${encodeURIComponent(holdId)}`;
const paymentPath = `${holdPath}/payment`;
/** Set before the first payment request for this hold: from then on there may be a payment to ask about. */
const paymentStartedKey = `edge-tickets.payment-started.${holdId}`;

let event;
let hold;
let countdown;
/** Stripe.js and its mounted card element, once loaded. */
let stripe;
let card;

/** Loads Stripe.js from the configured URL and mounts the card form. */
async function loadStripe() {
  const { stripe: settings } = await api("/api/config");
  if (!settings.publishableKey) throw new ApiError(503, "payments_unavailable", "Card payments are not set up on this site yet.");
  if (!window.Stripe) {
    await new Promise((resolve, reject) => {
      const script = el("script", { src: settings.jsUrl });
      script.addEventListener("load", resolve);
      script.addEventListener("error", () => reject(new ApiError(0, "stripe_unavailable", "The secure card form could not be loaded. Check your connection and reload the page.")));
      document.head.append(script);
    });
  }
  stripe = window.Stripe(settings.publishableKey);
  card = stripe.elements().create("card");
  card.mount("#card-element");
}

/** Runs the card's 3-D Secure challenge (Stripe.js), then waits for the payment's outcome. */
async function authenticate(payment) {
  if (!stripe || !payment.nextAction) return processing();
  $("pay").hidden = true;
  announce(status, "Your bank wants to confirm this payment. Complete its check in the window that opened.");
  await stripe.handleNextAction({ clientSecret: payment.nextAction.clientSecret });
  return processing();
}

function setBusy(busy) {
  $("pay-button").disabled = busy;
  $("release-button").disabled = busy;
}

/** Counts down to `deadline`, announcing the last two minutes, then calls `onEnd`. */
function startCountdown(label, deadline, onEnd) {
  clearInterval(countdown);
  $("countdown-label").textContent = label;
  $("countdown-line").hidden = false;
  const warnings = new Set([120, 60]);
  const tick = () => {
    const left = deadline - serverNow();
    const time = $("countdown");
    time.textContent = minutesSeconds(left);
    time.dateTime = `PT${Math.max(0, Math.ceil(left / 1000))}S`;
    for (const at of warnings) {
      if (left <= at * 1000 && left > (at - 5) * 1000) {
        warnings.delete(at);
        announce(status, `${at / 60} minute${at === 60 ? "" : "s"} left to pay.`);
      }
    }
    if (left <= 0) {
      clearInterval(countdown);
      onEnd();
    }
  };
  tick();
  countdown = setInterval(tick, 1_000);
}

function stopCountdown() {
  clearInterval(countdown);
  $("countdown-line").hidden = true;
}

function renderHold() {
  $("event-name").textContent = `${event.name} · ${event.venueName}`;
  const rows = [
    ...hold.seats.map((s) => el("tr", {}, el("td", {}, `${s.section}, row ${s.row}, seat ${s.seat}`), el("td", {}, s.priceTier), el("td", {}, money(s.priceCents, event.currency)))),
    ...hold.generalAdmission.map((g) =>
      el("tr", {}, el("td", {}, `${g.quantity} × ${g.section} (standing)`), el("td", {}, g.priceTier), el("td", {}, money(g.priceCents * g.quantity, event.currency))),
    ),
  ];
  $("hold-items").querySelector("tbody").replaceChildren(...rows);
  $("hold-total").textContent = money(hold.totalCents, event.currency);
  $("card-fields").hidden = isFree();
  $("pay-heading").textContent = isFree() ? "Free tickets" : "Payment";
  $("pay-button").textContent = isFree() ? "Get these free tickets" : `Pay ${money(hold.totalCents, event.currency)}`;
  $("hold").hidden = false;
}

/** A hold that costs nothing: no card, and nothing reaches the gateway. */
const isFree = () => hold?.totalCents === 0;

/** Shows an end state (paid, released, ...) and moves focus to it. */
function finish(heading, text, links) {
  stopCountdown();
  $("pay").hidden = true;
  $("outcome-heading").textContent = heading;
  $("outcome-text").textContent = text;
  $("outcome-links").replaceChildren(...links);
  $("outcome").hidden = false;
  announce(status, heading);
  $("outcome").focus();
}

const ticketsLink = () => el("a", { className: "button", href: `/tickets?event=${encodeURIComponent(eventId)}` }, "See my tickets");
const eventLink = (text) => el("a", { className: "button", href: `/event?id=${encodeURIComponent(eventId)}` }, text);

function paid() {
  const received = isFree() ? "Your free tickets are confirmed." : "Payment received.";
  finish("You're going!", `${received} Your tickets are being issued: they appear in My tickets in a few seconds, and we email them to you.`, [ticketsLink()]);
}

/** Why a failed payment released the seats: a declined card, or a payment the gateway would not take at all (`refused: <code>`). */
function failedText(payment) {
  if (payment.lastError?.startsWith("refused: ")) return "The payment service would not take this payment, so nothing was charged and the seats have been released.";
  return "The card was declined and the seats have been released.";
}

function released(text) {
  finish("Seats released", text, [eventLink("Pick seats again")]);
}

/**
 * Why the time left dropped after a decline: the seats are kept only for the
 * event's retry window from the decline, not to the hold's end.
 */
function declineText(declinedPayment, deadline, expiresAt) {
  const reason = DECLINES[declinedPayment.lastError] ?? "Your card was declined.";
  const until = `Try another card before ${clockTime(deadline)}; after that the seats go back on sale.`;
  if (deadline >= expiresAt) return `${reason} ${until}`;
  const seconds = event.declineRetrySeconds;
  const retryWindow = seconds % 60 === 0 ? `${seconds / 60} minute${seconds === 60 ? "" : "s"}` : durationText(seconds * 1000);
  return `${reason} After a declined card we keep your seats only for ${retryWindow} more, not until ${clockTime(expiresAt)}, so that other fans are not kept waiting. ${until}`;
}

/** The hold is live and unpaid (or the last card was declined and there is time to try another). */
function readyToPay(deadline, declinedPayment) {
  $("pay").hidden = false;
  setBusy(false);
  if (declinedPayment) {
    showError(errorRegion, new ApiError(402, "card_declined", declineText(declinedPayment, deadline, Date.parse(hold.expiresAt))));
    startCountdown("Time left to try another card:", deadline, () => void refresh());
    document.querySelector("#card-element input")?.focus();
  } else {
    startCountdown("Your seats are held for", deadline, () => void refresh());
    announce(status, "");
  }
}

let pollStarted = 0;
async function processing() {
  $("pay").hidden = true;
  stopCountdown();
  announce(status, "Your payment is being confirmed with the bank…");
  pollStarted ||= Date.now();
  while (Date.now() - pollStarted < POLL_LIMIT_MS) {
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    try {
      const { payment } = await api(paymentPath, { auth: true });
      if (payment.status !== "pending" && payment.status !== "unknown" && payment.status !== "requires_action") {
        pollStarted = 0;
        return refresh(payment);
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return showError(errorRegion, error);
    }
  }
  finish(
    "Still waiting for the bank",
    "We have not heard back about your payment yet. You will not be charged twice: if it goes through, your tickets appear in My tickets and by email; if not, the seats are released.",
    [ticketsLink()],
  );
}

function paymentStarted() {
  return localStorage.getItem(paymentStartedKey) !== null;
}

/** Decides what to show from the hold and its latest payment (fetched when not given and this browser has started one). */
async function refresh(payment) {
  try {
    ({ hold } = await api(holdPath, { auth: true }));
    if (payment === undefined && !paymentStarted()) payment = null;
    if (payment === undefined) {
      payment = await api(paymentPath, { auth: true }).then(
        (body) => body.payment,
        (error) => {
          if (error instanceof ApiError && error.code === "payment_not_found") return null;
          throw error;
        },
      );
    }
  } catch (error) {
    announce(status, "");
    showError(errorRegion, error);
    return;
  }
  showError(errorRegion, null);
  renderHold();
  const now = serverNow();
  const expiresAt = Date.parse(hold.expiresAt);
  if (payment?.status === "succeeded" || hold.status === "confirmed") return paid();
  if (payment?.status === "refunding") {
    return finish("Your payment is being refunded", "Your payment arrived after the seats were released and they could not be confirmed, so we are refunding it in full. No tickets come of it.", [eventLink("Pick seats again")]);
  }
  if (payment?.status === "refunded") {
    return finish("Payment refunded", "Your payment arrived after the seats were released and they could not be confirmed, so we refunded it in full.", [eventLink("Pick seats again")]);
  }
  if (payment?.status === "pending" || payment?.status === "unknown") return processing();
  if (payment?.status === "requires_action" && hold.status === "live" && expiresAt > now) return authenticate(payment);
  if (hold.status !== "live" || expiresAt <= now) {
    return released(payment?.status === "failed" ? failedText(payment) : "Your hold has ended and the seats are back on sale.");
  }
  if (payment?.status === "failed") {
    const until = payment.retryUntil ? Math.min(Date.parse(payment.retryUntil), expiresAt) : 0;
    if (until > now) return readyToPay(until, payment);
    return released("The card was declined and the time to try another has passed, so the seats are back on sale.");
  }
  if (payment?.status === "canceled") return released("The payment was canceled, so the seats are back on sale.");
  return readyToPay(expiresAt, null);
}

$("pay-form").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  setBusy(true);
  showError(errorRegion, null);
  announce(status, isFree() ? "Getting your tickets…" : "Paying…");
  try {
    let body = {};
    if (!isFree()) {
      if (!stripe || !card) throw new ApiError(0, "stripe_unavailable", "The secure card form has not loaded. Reload the page and try again.");
      const created = await stripe.createPaymentMethod({ type: "card", card });
      if (created.error) throw new ApiError(400, created.error.code ?? "invalid_card", created.error.message ?? "Check the card details.");
      body = { paymentMethod: created.paymentMethod.id };
    }
    localStorage.setItem(paymentStartedKey, String(Date.now()));
    const { status: code, data } = await request(paymentPath, { method: "POST", body, auth: true });
    if (code === 202 && data?.payment?.status === "requires_action") return void authenticate(data.payment);
    if (code === 202) return void processing();
    if ((code === 200 || code === 402) && data?.payment) return void refresh(data.payment);
    throw new ApiError(code, "unexpected_status", `Unexpected answer (HTTP ${code}); please check My tickets before trying again.`);
  } catch (error) {
    if (error instanceof ApiError && (error.code === "payment_in_progress" || error.status === 0)) return void processing();
    if (error instanceof ApiError && (error.code === "hold_expired" || error.code === "hold_not_found")) return void refresh();
    announce(status, "");
    showError(errorRegion, error);
    setBusy(false);
  }
});

$("release-button").addEventListener("click", async () => {
  setBusy(true);
  announce(status, "Releasing your seats…");
  try {
    await api(holdPath, { method: "DELETE", auth: true });
    released("You released these seats; they are back on sale for everyone.");
  } catch (error) {
    if (error instanceof ApiError && error.code === "hold_confirmed") return paid();
    announce(status, "");
    showError(errorRegion, error);
    setBusy(false);
  }
});

async function main() {
  renderAccount($("account"));
  $("event-link").href = `/event?id=${encodeURIComponent(eventId)}`;
  if (!UUID.test(eventId) || !UUID.test(holdId)) {
    announce(status, "");
    errorRegion.hidden = false;
    errorRegion.replaceChildren("This checkout link is incomplete. ", el("a", { href: "/" }, "Find your event"));
    return;
  }
  if (!requireSession()) return;
  try {
    event = await api(`/api/events/${encodeURIComponent(eventId)}`);
  } catch (error) {
    announce(status, "");
    showError(errorRegion, error);
    return;
  }
  try {
    await loadStripe();
  } catch (error) {
    showError(errorRegion, error);
  }
  await refresh();
}

void main();
