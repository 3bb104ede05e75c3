// The console's API keys and audit log views, over GET/POST /admin/api-keys,
// POST /admin/api-keys/{keyId}/revoke and GET /admin/audit-log. A new key's secret is
// shown once, in the page, and kept nowhere.
import { dateTime, el } from "/js/api.js";
import { fromUtcInput } from "/console/chart.js";
import { pagedTable } from "/console/paged-table.js";
import { rowButton } from "/console/row-buttons.js";

const $ = (id) => document.getElementById(id);

const SCOPE_NAMES = { admin: "Admin (everything)", read: "Read only", check_in: "Check-in (door)" };

function keyStatus(key) {
  if (key.revokedAt !== null) return "revoked";
  if (key.expiresAt !== null && Date.parse(key.expiresAt) <= Date.now()) return "expired";
  return "active";
}

/**
 * Wires the keys and audit views to the console's API client: `admin(method, path, body)`,
 * `attempt(action)` (shows a failure), `say(text)` (the status line).
 */
export function keysAndAudit({ admin, attempt, say }) {
  /** The latest showing of the audit view. */
  let auditShown = 0;

  async function listKeys() {
    const { keys } = await admin("GET", "/api-keys");
    $("keys-list").replaceChildren(
      ...keys.map((key) => {
        const status = keyStatus(key);
        const cells = [
          el("td", { "data-label": "Name" }, key.name),
          el("td", { "data-label": "Scope" }, SCOPE_NAMES[key.scope] ?? key.scope),
          el("td", { "data-label": "Created" }, dateTime(key.createdAt)),
          el("td", { "data-label": "Expires" }, key.expiresAt === null ? "never" : dateTime(key.expiresAt)),
          el("td", { "data-label": "Status" }, status),
        ];
        const actions = el("td", {});
        if (status === "active") {
          const revoke = rowButton("Revoke", `Revoke key ${key.name}`, () =>
            attempt(async () => {
              await admin("POST", `/api-keys/${key.id}/revoke`);
              say(`Key ${key.name} revoked.`);
              await listKeys();
            }),
          );
          actions.append(revoke);
        }
        return el("tr", { "data-key": key.id }, ...cells, actions);
      }),
    );
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const body = { name: $("key-name").value.trim(), scope: $("key-scope").value };
      if ($("key-expires").value) body.expiresAt = fromUtcInput($("key-expires").value);
      const created = await admin("POST", "/api-keys", body);
      $("key-secret-value").textContent = created.apiKey;
      $("key-secret").hidden = false;
      $("key-form").reset();
      say(`Key ${created.name} created. Copy its secret now: it is shown only this once.`);
      await listKeys();
    });
  });

  function auditQuery() {
    const query = new URLSearchParams({ limit: "25" });
    if ($("audit-event").value) query.set("eventId", $("audit-event").value);
    if ($("audit-key").value) query.set("apiKeyId", $("audit-key").value);
    if ($("audit-since").value) query.set("since", fromUtcInput($("audit-since").value));
    return query;
  }

  function auditRow(entry) {
    return el(
      "tr",
      {},
      el("td", { "data-label": "When" }, dateTime(entry.createdAt)),
      el("td", { "data-label": "Key" }, entry.apiKey.name),
      el("td", { "data-label": "Action" }, el("code", {}, entry.action)),
      el("td", { "data-label": "Target" }, entry.targetId ?? "—"),
    );
  }

  const audit = pagedTable({ admin, attempt }, { ids: "audit", columns: 4, empty: "No entries." }, {
    path: () => `/audit-log?${auditQuery()}`,
    items: (page) => page.entries,
    row: auditRow,
  });

  $("audit-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(() => audit.load(false));
  });

  return {
    /** Shows the keys view: the list, and the form (the last secret hidden again). */
    async showKeys() {
      $("key-secret").hidden = true;
      $("key-secret-value").textContent = "";
      await listKeys();
    },
    /** Shows the audit view, its filters filled from your events and keys. */
    async showAudit() {
      const shown = ++auditShown;
      const [{ events }, { keys }] = await Promise.all([admin("GET", "/events"), admin("GET", "/api-keys")]);
      // A later showing of the view (the hash changed again meanwhile) fills it instead.
      if (shown !== auditShown) return;
      // Filters already chosen stay chosen when the lists are filled again.
      const chosen = { event: $("audit-event").value, key: $("audit-key").value };
      $("audit-event").replaceChildren(el("option", { value: "" }, "Any event"), ...events.map((e) => el("option", { value: e.id }, e.name)));
      $("audit-key").replaceChildren(el("option", { value: "" }, "Any key"), ...keys.map((k) => el("option", { value: k.id }, k.name)));
      $("audit-event").value = events.some((e) => e.id === chosen.event) ? chosen.event : "";
      $("audit-key").value = keys.some((k) => k.id === chosen.key) ? chosen.key : "";
      await audit.load(false);
    },
  };
}
