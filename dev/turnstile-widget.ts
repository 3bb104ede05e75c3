/**
 * The Turnstile widget script (`GET /turnstile/v0/api.js`) of the local
 * stand-in, with Cloudflare's JS API: `turnstile.render(container, { sitekey,
 * callback, "expired-callback", "error-callback", action })` → widget id,
 * `getResponse(id)`, `reset(id)`, `remove(id)`, `isExpired(id)`, and implicit
 * rendering of `.cf-turnstile` elements by their `data-sitekey` /
 * `data-callback` (unless the script URL says `render=explicit`).
 *
 * Like Cloudflare's test site keys, the widget checks nothing: it shows
 * "Verifying…", then "Success!", and hands the page the token Cloudflare's
 * test keys give (`XXXX.DUMMY.TOKEN.XXXX`), which the stand-in's siteverify
 * accepts with the always-passing test secret. The site key
 * `3x00000000000000000000FF` (Cloudflare's "forces an interactive
 * challenge") shows a "Verify you are human" checkbox instead.
 */

export const WIDGET_SCRIPT_PATH = "/turnstile/v0/api.js";

/** The widget script's URL on the stand-in whose siteverify is at `verifyUrl` (both under /turnstile/v0/, as on Cloudflare). */
export function widgetScriptUrl(verifyUrl: string): string {
  return new URL(WIDGET_SCRIPT_PATH, verifyUrl).href;
}

export const WIDGET_SCRIPT = String.raw`(() => {
  const TOKEN = "XXXX.DUMMY.TOKEN.XXXX";
  const INTERACTIVE = "3x00000000000000000000FF";
  const widgets = new Map();
  let next = 0;
  function call(fn, ...args) {
    if (typeof fn === "string") fn = window[fn];
    if (typeof fn === "function") fn(...args);
  }
  function solve(widget) {
    widget.token = TOKEN;
    widget.status.textContent = "Success!";
    const input = widget.box.querySelector('input[name="cf-turnstile-response"]');
    if (input) input.value = TOKEN;
    call(widget.options.callback, TOKEN);
  }
  function start(widget) {
    widget.token = null;
    const box = widget.box;
    box.replaceChildren();
    const status = document.createElement("span");
    status.setAttribute("role", "status");
    widget.status = status;
    const hidden = document.createElement("input");
    Object.assign(hidden, { type: "hidden", name: "cf-turnstile-response" });
    if (widget.options.sitekey === INTERACTIVE) {
      const label = document.createElement("label");
      const check = document.createElement("input");
      check.type = "checkbox";
      check.addEventListener("change", () => { if (check.checked) solve(widget); });
      label.append(check, " Verify you are human");
      box.append(label, status, hidden);
    } else {
      status.textContent = "Verifying…";
      box.append(status, hidden);
      setTimeout(() => { if (widgets.get(widget.id) === widget) solve(widget); }, 50);
    }
  }
  function find(id) {
    if (id === undefined) return widgets.values().next().value;
    return widgets.get(id) ?? [...widgets.values()].find((w) => w.container === id || w.container === document.querySelector(id));
  }
  const turnstile = {
    render(container, options = {}) {
      const host = typeof container === "string" ? document.querySelector(container) : container;
      if (!host) throw new Error("turnstile.render: no such container");
      const sitekey = options.sitekey ?? host.dataset.sitekey;
      if (!sitekey) throw new Error("turnstile.render: a sitekey is required");
      const id = "cf-chl-widget-" + (next++);
      const box = document.createElement("div");
      box.className = "cf-turnstile-widget";
      box.id = id;
      host.append(box);
      const widget = { id, container: host, box, options: { ...options, sitekey, callback: options.callback ?? host.dataset.callback }, token: null, status: null };
      widgets.set(id, widget);
      start(widget);
      return id;
    },
    getResponse(id) {
      return find(id)?.token ?? undefined;
    },
    isExpired() {
      return false;
    },
    reset(id) {
      const widget = find(id);
      if (widget) start(widget);
    },
    remove(id) {
      const widget = find(id);
      if (!widget) return;
      widgets.delete(widget.id);
      widget.box.remove();
    },
    ready(fn) {
      fn();
    },
  };
  window.turnstile = turnstile;
  const src = document.currentScript ? document.currentScript.src : "";
  if (!/[?&]render=explicit\b/.test(src)) {
    const renderAll = () => document.querySelectorAll(".cf-turnstile").forEach((el) => turnstile.render(el));
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderAll);
    else renderAll();
  }
  const onload = /[?&]onload=([A-Za-z_$][\w$]*)/.exec(src);
  if (onload) call(onload[1]);
})();
`;
