/** The Turnstile stand-in's widget script: served where Cloudflare serves api.js, with Cloudflare's JS API (the browser journeys run it). */
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTurnstileStandIn, TURNSTILE_DUMMY_TOKEN, type TurnstileStandIn } from "../../dev/turnstile.ts";
import { widgetScriptUrl } from "../../dev/turnstile-widget.ts";

let standIn: TurnstileStandIn;

beforeAll(async () => {
  standIn = await startTurnstileStandIn({ port: 0 });
});

afterAll(async () => {
  await standIn.close();
});

it("serves api.js beside siteverify, as JavaScript any page may load, with render, getResponse, reset and remove", async () => {
  expect(standIn.scriptUrl).toBe(widgetScriptUrl(standIn.verifyUrl));
  expect(standIn.scriptUrl).toMatch(/\/turnstile\/v0\/api\.js$/);
  const response = await fetch(`${standIn.scriptUrl}?render=explicit`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/javascript/);
  expect(response.headers.get("access-control-allow-origin")).toBe("*");
  const script = await response.text();
  for (const name of ["render(", "getResponse(", "reset(", "remove(", "window.turnstile", "data-sitekey", "sitekey"]) expect(script).toContain(name.replace("data-sitekey", "dataset.sitekey"));
  expect(script).toContain(TURNSTILE_DUMMY_TOKEN);
  // siteverify is unchanged beside it.
  expect((await fetch(standIn.verifyUrl)).status).toBe(405);
});
