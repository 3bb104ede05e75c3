// The queue page's arithmetic, with no DOM: where a fan's order key stands in
// the published queue document, and how long the wait may be. A port of
// fansAhead in core/waiting-room/queue-state.ts (test/static/queue-math.test.ts
// checks that both agree on every document).

/** Keys below this are the lobby block: uniformly random, a fair shuffle of everyone who came before the sale. */
export const LATE_BLOCK_START = 2 ** 51;
/** Accounts flagged as likely bots queue from here, behind everyone. */
export const FLAGGED_BLOCK_START = 2 ** 52;
/** The end of the key space. */
const KEY_SPACE_END = 2 ** 53;

/**
 * How many keys of a block lie below `orderKey`, from the block's published
 * quantiles (exact while every key is published): quantile i is the key of
 * rank (i + 1) * step; between two quantiles the count is interpolated.
 */
function rankInBlock(quantiles, count, start, end, orderKey) {
  const q = quantiles;
  if (q.length === 0) return 0;
  const step = count / q.length;
  let below = 0;
  while (below < q.length && (q[below] ?? Infinity) < orderKey) below++;
  const low = below === 0 ? start : (q[below - 1] ?? start);
  const high = below < q.length ? (q[below] ?? end) : end;
  const most = below < q.length ? (below + 1) * step - 1 : count - 1;
  const fewest = Math.min(below * step, most);
  return Math.round(fewest + ((most - fewest) * (orderKey - low)) / Math.max(1, high - low));
}

/**
 * How many fans are ahead of `orderKey` and not admitted yet: everyone in the
 * blocks before its own, plus its rank in its own block, less those admitted.
 */
export function fansAhead(state, orderKey) {
  const { lobby, late, flagged } = state.entrants;
  let ahead;
  if (orderKey < LATE_BLOCK_START) ahead = rankInBlock(state.quantiles, lobby, 0, LATE_BLOCK_START, orderKey);
  else if (orderKey < FLAGGED_BLOCK_START) ahead = lobby + rankInBlock(state.lateQuantiles ?? [], late, LATE_BLOCK_START, FLAGGED_BLOCK_START, orderKey);
  else ahead = lobby + late + rankInBlock(state.flaggedQuantiles ?? [], flagged, FLAGGED_BLOCK_START, KEY_SPACE_END, orderKey);
  return Math.max(0, ahead - state.admitted);
}

/**
 * True once the room has admitted this key: exchange the lobby ticket now.
 * (A fan who joined after the threshold passed into the flagged block holds a
 * key below it and is admitted by the next ticks; until then the exchange
 * answers "not_admitted_yet" and the page keeps polling.)
 */
export function isAdmitted(state, orderKey) {
  return orderKey <= state.threshold;
}

/**
 * What the queue page shows for this key: "ended" (the sale is over: nobody
 * more is admitted), "admitted" (exchange the ticket now), "sold-out" (no
 * place is free right now, but places may come back until the sale ends, so
 * the fan keeps their place and the page keeps polling), or "waiting". The end
 * is read from the document (the room publishes after saleEndsAt), not from
 * the browser's clock.
 */
export function queuePhase(state, orderKey) {
  if (state.updatedAt >= state.saleEndsAt) return "ended";
  if (isAdmitted(state, orderKey)) return "admitted";
  if (state.soldOut) return "sold-out";
  return "waiting";
}

/** Why it is sold out right now, from the document's counts: what may still come back. */
export function describeSoldOut(state) {
  const places = (n) => `${n.toLocaleString("en")} place${n === 1 ? "" : "s"}`;
  const parts = [];
  if (state.available > 0) parts.push(`${places(state.available)} just came back: the waitlist gets the first chance at ${state.available === 1 ? "it" : "them"}, then the line.`);
  if (state.held > 0) parts.push(`${places(state.held)} ${state.held === 1 ? "is" : "are"} in other fans' checkouts; any not paid for come back.`);
  if (parts.length === 0) parts.push("Every place has been paid for; places come back only if orders are refunded or cancelled.");
  return parts.join(" ");
}

/**
 * Seconds until this fan's turn at the published rate (and, before the sale,
 * until it opens), or null when admission is paused or has no rate.
 */
export function secondsToWait(state, ahead, now) {
  if (state.paused || !(state.ratePerSecond > 0)) return null;
  const untilStart = Math.max(0, state.saleStartsAt - now) / 1000;
  return Math.ceil(untilStart + ahead / state.ratePerSecond);
}

/** The share of the line already admitted, for a progress bar (0..1). */
export function progress(state, ahead) {
  const total = state.admitted + ahead;
  return total === 0 ? 1 : state.admitted / total;
}

/** "less than a minute", "about 4 minutes", "about 2 hours"; null for unknown. */
export function describeWait(seconds) {
  if (seconds === null) return null;
  if (seconds < 60) return "less than a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
  const hours = Math.round(minutes / 60);
  return `about ${hours} hour${hours === 1 ? "" : "s"}`;
}

/** When an event's lobby (the line) opens: its sale start less lobbyOpensMinutes (epoch ms). */
export function lobbyOpensAt(event) {
  return Date.parse(event.saleStartsAt) - event.lobbyOpensMinutes * 60_000;
}

/**
 * Where an event's sale stands at `now` (epoch ms, server time), from its
 * times as the server reckons them (the sale ends at saleEndsAt, else when the
 * event ends, else when it starts): "before_lobby", "lobby" (the line is open,
 * the sale is not), "on_sale", "ended" or "cancelled".
 */
export function salePhase(event, now) {
  if (event.status === "cancelled" || event.saleState === "cancelled") return "cancelled";
  if (now >= Date.parse(event.saleEndsAt ?? event.endsAt ?? event.startsAt)) return "ended";
  if (now >= Date.parse(event.saleStartsAt)) return "on_sale";
  if (now >= lobbyOpensAt(event)) return "lobby";
  return "before_lobby";
}
