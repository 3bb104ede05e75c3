// The console's bot flags panel (hot events), over GET /admin/events/{id}/bot-flags and
// POST /admin/events/{id}/bot-flags/{accountId}: the accounts the lobby flagged, why,
// and the organizer's decision on each: Clear (a normal fan from now on) or Confirm
// (kept out of every admission).
import { dateTime, el } from "/js/api.js";

const $ = (id) => document.getElementById(id);

const DECISIONS = { clear: "Cleared", confirm: "Confirmed" };

/** One row per account: its reasons, when it was first flagged, its decision. */
function byAccount(flags) {
  const accounts = new Map();
  for (const flag of flags) {
    const account = accounts.get(flag.accountId) ?? { accountId: flag.accountId, email: flag.email, reasons: [], createdAt: flag.createdAt, decision: flag.decision };
    account.reasons.push(flag.reason.replaceAll("_", " "));
    if (flag.createdAt < account.createdAt) account.createdAt = flag.createdAt;
    accounts.set(flag.accountId, account);
  }
  return [...accounts.values()];
}

/**
 * Wires the panel to the console's API client: `admin(method, path, body)`, `attempt(action)`
 * (shows a failure), `say(text)` (the status line). Returns `show(eventId)`.
 */
export function botFlagsPanel({ admin, attempt, say }) {
  let shown = null;

  async function show(eventId) {
    shown = eventId;
    const { flags } = await admin("GET", `/events/${eventId}/bot-flags`);
    if (shown !== eventId) return;
    const rows = byAccount(flags).map((account) => {
      const decide = (decision, label) => {
        const button = el("button", { type: "button", className: decision === "clear" ? "secondary" : "" }, label);
        button.setAttribute("aria-label", `${label} ${account.email}`);
        button.disabled = account.decision === decision;
        button.addEventListener("click", () =>
          attempt(async () => {
            await admin("POST", `/events/${eventId}/bot-flags/${account.accountId}`, { decision });
            say(`${account.email}: ${decision === "clear" ? "cleared, queued as any fan" : "confirmed, never admitted"}.`);
            await show(eventId);
          }),
        );
        return button;
      };
      return el(
        "tr",
        { "data-account": account.accountId },
        el("td", { "data-label": "Account" }, account.email),
        el("td", { "data-label": "Reasons" }, account.reasons.join(", ")),
        el("td", { "data-label": "Flagged" }, dateTime(account.createdAt)),
        el("td", { "data-label": "Decision", "data-decision": account.decision ?? "none" }, DECISIONS[account.decision] ?? "None yet"),
        el("td", {}, decide("clear", "Clear"), " ", decide("confirm", "Confirm")),
      );
    });
    $("flags-list").replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colSpan: 5 }, "No account flagged."))]));
  }

  return { show };
}
