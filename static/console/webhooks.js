// The console's Webhooks view, over /admin/webhooks: the organizer's endpoints (add one,
// rotate its signing secret, delete it) and each endpoint's delivery log, where any
// delivery can be sent again. A secret is shown once, in the page, and kept nowhere.
import { dateTime, el } from "/js/api.js";
import { pagedTable } from "/console/paged-table.js";
import { confirmFirst, rowButton } from "/console/row-buttons.js";

const $ = (id) => document.getElementById(id);

/** The event types the form offers (its checkboxes: the API's WEBHOOK_EVENT_TYPES). */
const typeBoxes = () => [...$("hook-types").querySelectorAll("input[type=checkbox]")];

/** What the log says of a delivery's last attempt: the receiver's status, or why there was none. */
function lastAttempt(delivery) {
  const attempt = delivery.attempts.at(-1);
  if (attempt === undefined) return "Not attempted yet";
  const outcome = attempt.httpStatus === null ? (attempt.error ?? "no answer") : `HTTP ${attempt.httpStatus}`;
  return `${outcome} (${dateTime(attempt.attemptedAt)})`;
}

/**
 * Wires the Webhooks view to the console's API client: `admin(method, path, body)`,
 * `attempt(action)` (shows a failure), `say(text)` (the status line). Returns `show()`.
 */
export function webhooksView({ admin, attempt, say }) {
  /** The endpoint whose deliveries are listed, or null. */
  let logOf = null;
  /** Event names by id, for the endpoints' "Event" column. */
  let eventNames = new Map();

  function showSecret(secret, note) {
    $("hook-secret-note").textContent = note;
    $("hook-secret-value").textContent = secret;
    $("hook-secret").hidden = false;
  }

  function hideSecret() {
    $("hook-secret").hidden = true;
    $("hook-secret-value").textContent = "";
  }

  const deliveries = pagedTable({ admin, attempt }, { ids: "deliveries", columns: 6, empty: "No deliveries yet." }, {
    path: () => `/webhooks/endpoints/${logOf.id}/deliveries?limit=25`,
    items: (page) => page.deliveries,
    row: deliveryRow,
  });

  function deliveryRow(delivery) {
    const when = dateTime(delivery.createdAt);
    const resend = rowButton("Resend", `Resend the ${delivery.eventType} delivery of ${when}`, () =>
      attempt(async () => {
        await admin("POST", `/webhooks/deliveries/${delivery.id}/resend`);
        say(`The ${delivery.eventType} delivery of ${when} is queued again (same webhook-id, a fresh series of attempts).`);
        await deliveries.load(false);
      }),
    );
    return el(
      "tr",
      { "data-delivery": delivery.id },
      el("td", { "data-label": "When" }, when),
      el("td", { "data-label": "Event type" }, el("code", {}, delivery.eventType)),
      el("td", { "data-label": "Status", "data-status": delivery.status }, delivery.status),
      el("td", { "data-label": "Attempts" }, String(delivery.attempts.length)),
      el("td", { "data-label": "Last attempt" }, lastAttempt(delivery)),
      el("td", {}, resend),
    );
  }

  async function showDeliveries(endpoint) {
    logOf = endpoint;
    $("deliveries-heading").textContent = `Deliveries to ${endpoint.url}`;
    $("deliveries").hidden = false;
    await deliveries.load(false);
  }

  function hideDeliveries() {
    logOf = null;
    $("deliveries").hidden = true;
    $("deliveries-list").replaceChildren();
  }

  function endpointRow(endpoint) {
    const actions = el("td", {});
    const remove = rowButton("Delete", `Delete endpoint ${endpoint.url}`, () =>
      // A second, explicit click: the delivery log goes with it.
      confirmFirst(actions, `Confirm: delete ${endpoint.url} and its delivery log`, attempt, async () => {
        await admin("DELETE", `/webhooks/endpoints/${endpoint.id}`);
        if (logOf?.id === endpoint.id) hideDeliveries();
        say(`Endpoint ${endpoint.url} deleted.`);
        await listEndpoints();
      }),
    );
    actions.append(
      rowButton("Deliveries", `Deliveries to ${endpoint.url}`, () => attempt(() => showDeliveries(endpoint))),
      " ",
      rowButton("Rotate secret", `Rotate secret of ${endpoint.url}`, () =>
        attempt(async () => {
          const rotated = await admin("POST", `/webhooks/endpoints/${endpoint.id}/rotate-secret`);
          const until = dateTime(rotated.endpoint.previousSecretExpiresAt);
          showSecret(rotated.secret, `New secret for ${endpoint.url}: copy it now, it is shown only this once. The old secret keeps signing too until ${until}.`);
          say(`Secret of ${endpoint.url} rotated; the old one signs until ${until}.`);
        }),
      ),
      " ",
      remove,
    );
    const event = endpoint.eventId === null ? "All events" : (eventNames.get(endpoint.eventId) ?? endpoint.eventId);
    return el(
      "tr",
      { "data-endpoint": endpoint.id },
      el("td", { "data-label": "URL" }, el("code", {}, endpoint.url), endpoint.description ? el("div", { className: "muted" }, endpoint.description) : ""),
      el("td", { "data-label": "Event types" }, endpoint.eventTypes.join(", ")),
      el("td", { "data-label": "Event" }, event),
      el("td", { "data-label": "Created" }, dateTime(endpoint.createdAt)),
      actions,
    );
  }

  async function listEndpoints() {
    const { endpoints } = await admin("GET", "/webhooks/endpoints");
    const rows = endpoints.map(endpointRow);
    $("hooks-list").replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colSpan: 5 }, "No endpoints yet."))]));
  }

  $("hook-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const eventTypes = typeBoxes()
        .filter((box) => box.checked)
        .map((box) => box.value);
      if (eventTypes.length === 0) throw new Error("Choose at least one event type.");
      const body = { url: $("hook-url").value.trim(), eventTypes, eventId: $("hook-event").value || null };
      if ($("hook-description").value.trim()) body.description = $("hook-description").value.trim();
      const created = await admin("POST", "/webhooks/endpoints", body);
      $("hook-form").reset();
      showSecret(created.secret, `Signing secret for ${created.endpoint.url}: copy it now, it is shown only this once.`);
      say(`Endpoint ${created.endpoint.url} added. Copy its signing secret now: it is shown only this once.`);
      await listEndpoints();
    });
  });

  return {
    /** Shows the view: the endpoints, and the form's event list (the last secret and delivery log hidden again). */
    async show() {
      hideSecret();
      hideDeliveries();
      const { events } = await admin("GET", "/events");
      eventNames = new Map(events.map((e) => [e.id, e.name]));
      const chosen = $("hook-event").value;
      $("hook-event").replaceChildren(el("option", { value: "" }, "All events"), ...events.map((e) => el("option", { value: e.id }, e.name)));
      $("hook-event").value = eventNames.has(chosen) ? chosen : "";
      await listEndpoints();
    },
  };
}
