// A console table filled a page at a time over an admin API list with `nextCursor` (the
// audit log, an endpoint's webhook deliveries, an event's orders), with a "More" button for the next page.
import { el } from "/js/api.js";

const $ = (id) => document.getElementById(id);

/**
 * Wires the <tbody id="`ids`-list"> and its <button id="`ids`-more">: `load(false)` shows the
 * first page of `GET path()` (or `empty` in a row of `columns` cells: a text, or a function
 * giving it when the request is made, e.g. naming the filters), `load(true)` appends the next
 * page of that same list (filters edited but not applied since do not mix into it). An answer
 * that arrives after a later request is dropped (a filter or the subject changed meanwhile).
 * `items(page)` picks the page's items; `row(item)` makes an item's <tr>.
 */
export function pagedTable({ admin, attempt }, { ids, columns, empty }, { path, items, row }) {
  let cursor = null;
  /** The path of the list shown, whose next page `load(true)` asks for. */
  let shown = null;
  let latest = 0;

  async function load(append) {
    if (append && (cursor === null || shown === null)) return;
    const request = ++latest;
    const base = append ? shown : path();
    const emptyText = typeof empty === "function" ? empty() : empty;
    const page = await admin("GET", append ? `${base}${base.includes("?") ? "&" : "?"}cursor=${encodeURIComponent(cursor)}` : base);
    if (request !== latest) return;
    const rows = items(page).map(row);
    if (append) $(`${ids}-list`).append(...rows);
    else $(`${ids}-list`).replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colSpan: columns }, emptyText))]));
    shown = base;
    cursor = page.nextCursor;
    $(`${ids}-more`).hidden = cursor === null;
  }

  $(`${ids}-more`).addEventListener("click", () => attempt(() => load(true)));
  return { load };
}
