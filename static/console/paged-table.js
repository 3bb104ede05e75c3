// A console table filled a page at a time over an admin API list with `nextCursor` (the
// audit log, an endpoint's webhook deliveries, an event's orders), with a "More" button for the next page.
import { el } from "/js/api.js";

const $ = (id) => document.getElementById(id);

/**
 * Wires the <tbody id="`ids`-list"> and its <button id="`ids`-more">: `load(false)` shows the
 * first page of `GET path(filters())`, `load(true)` appends the next page of the list shown
 * (filters edited but not applied since do not mix into it). An answer that arrives after a
 * later request is dropped (a filter or the subject changed meanwhile). `items(page)` picks the
 * page's items; `row(item)` makes an item's <tr>. A table with nothing listed says `empty` in a
 * row of `columns` cells: a text, or `empty(applied)` naming the filters of the list shown.
 */
export function pagedTable({ admin, attempt }, { ids, columns, empty }, { filters = () => null, path, items, row }) {
  let cursor = null;
  /** The list shown: its path, whose next page `load(true)` asks for, and the filters it was asked with. */
  let shown = null;
  let latest = 0;
  const list = () => $(`${ids}-list`);

  const listOf = (applied) => ({ filters: applied, path: path(applied) });

  function emptyRow(applied) {
    return el("tr", {}, el("td", { colSpan: columns }, typeof empty === "function" ? empty(applied) : empty));
  }

  async function load(append) {
    if (append && (cursor === null || shown === null)) return;
    const request = ++latest;
    const applying = append ? shown : listOf(filters());
    const page = await admin("GET", append ? `${shown.path}${shown.path.includes("?") ? "&" : "?"}cursor=${encodeURIComponent(cursor)}` : applying.path);
    if (request !== latest) return;
    const rows = items(page).map(row);
    if (append) list().append(...rows);
    else list().replaceChildren(...(rows.length > 0 ? rows : [emptyRow(applying.filters)]));
    shown = applying;
    cursor = page.nextCursor;
    $(`${ids}-more`).hidden = cursor === null;
  }

  $(`${ids}-more`).addEventListener("click", () => attempt(() => load(true)));
  return {
    load,
    /** The filters of the list shown (null before the first page). */
    applied: () => shown?.filters ?? null,
    /** Takes `tr` off the table (an item the list's filters no longer let through); an emptied table says so. */
    remove(tr) {
      tr.remove();
      if (list().children.length === 0) list().replaceChildren(emptyRow(shown?.filters ?? null));
    },
  };
}
