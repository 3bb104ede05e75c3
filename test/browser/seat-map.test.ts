/**
 * The seat map by touch and by keyboard. On a phone: help in touch words,
 * zoom buttons that bring seats to 44 px, a cue when there is more map to
 * see, dragging to pan and pinching to zoom (touch events dispatched through
 * Chromium's input pipeline). On a desktop: seats picked and held with the
 * keyboard alone, with a visible focus ring.
 */
import type { CDPSession, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { chromiumForThisFile } from "./harness/browser";
import { calmEvent, fanEmail, newFan, seatButton, seatMapReady, signInByApi } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";

const browser = chromiumForThisFile();

async function seatWidth(page: Page): Promise<number> {
  return (await seatButton(page, "Stalls", "C", 5).boundingBox())?.width ?? 0;
}

/** The map frame's scroll offsets. */
async function scrollOf(page: Page): Promise<{ left: number; top: number }> {
  return z
    .object({ left: z.number(), top: z.number() })
    .parse(await page.evaluate("(() => { const frame = document.getElementById('seat-map'); return { left: frame.scrollLeft, top: frame.scrollTop }; })()"));
}

interface Point {
  x: number;
  y: number;
}

/**
 * Fingers moving on the touch screen together, each from one point to
 * another in 10 steps, as Chromium's own input pipeline receives them (real
 * touch events: native scrolling and the page's handlers both see them).
 */
async function touchGesture(cdp: CDPSession, fingers: { from: Point; to: Point }[]): Promise<void> {
  const at = (step: number) =>
    fingers.map(({ from, to }, id) => ({ id, x: Math.round(from.x + ((to.x - from.x) * step) / 10), y: Math.round(from.y + ((to.y - from.y) * step) / 10) }));
  await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: at(0) });
  for (let step = 1; step <= 10; step++) await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: at(step) });
  await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
}

/** The accessible label (aria-label, else text) of the focused element. */
async function focusedLabel(page: Page): Promise<string> {
  return z.string().parse(await page.evaluate("(() => { const at = document.activeElement; return at.getAttribute('aria-label') ?? at.textContent ?? ''; })()"));
}

describe("the seat map", () => {
  it("on a phone: speaks of taps, zooms to 44 px seats by button or pinch, cues and pans by dragging", async () => {
    const event = await calmEvent();
    const shots = new Screenshots("seat-map-touch", "phone");
    const fan = await newFan(browser(), "phone");
    const page = await fan.newPage();
    await page.goto(`/event?id=${event.id}`);
    await seatMapReady(page);
    const help = await page.locator("#seat-map-help").innerText();
    expect(help).toContain("Tap a seat to pick it");
    expect(help).toContain("Drag the map");
    expect(help).not.toMatch(/\bTab\b|arrow keys|click/i);
    expect(await seatWidth(page)).toBeGreaterThanOrEqual(24);
    expect(await page.getByRole("button", { name: "Zoom out" }).isDisabled()).toBe(true);

    await page.getByRole("button", { name: "Zoom in" }).tap();
    await page.getByRole("button", { name: "Zoom in" }).tap();
    expect(await seatWidth(page)).toBeGreaterThanOrEqual(44);
    // The map is now wider than the phone: the page says so.
    await page.getByText("The map is bigger than your screen: drag it to see more seats.").waitFor();
    await shots.take(page, "zoomed");

    const cdp = await fan.newCDPSession(page);
    await page.locator("#seat-map").scrollIntoViewIfNeeded();
    const frame = await page.locator("#seat-map").boundingBox();
    if (!frame) throw new Error("no seat map frame");
    const middle = { x: Math.round(frame.x + frame.width / 2), y: Math.round(frame.y + Math.min(frame.height, 300) / 2) };
    // A finger drags the map to the left: it scrolls right.
    const before = await scrollOf(page);
    await touchGesture(cdp, [{ from: middle, to: { x: middle.x - 150, y: middle.y } }]);
    await expect.poll(async () => (await scrollOf(page)).left, { timeout: 5_000 }).toBeGreaterThan(before.left + 50);

    // Two fingers pinch outwards: seats grow; inwards: they shrink, never below 24 px.
    const zoomed = await seatWidth(page);
    const apart = (distance: number) => [
      { x: middle.x - distance, y: middle.y },
      { x: middle.x + distance, y: middle.y },
    ];
    const [closeLeft, closeRight] = apart(40);
    const [farLeft, farRight] = apart(80);
    if (!closeLeft || !closeRight || !farLeft || !farRight) throw new Error("no fingers");
    await touchGesture(cdp, [
      { from: closeLeft, to: farLeft },
      { from: closeRight, to: farRight },
    ]);
    await expect.poll(() => seatWidth(page), { timeout: 5_000 }).toBeGreaterThan(zoomed + 5);
    await touchGesture(cdp, [
      { from: farLeft, to: closeLeft },
      { from: farRight, to: closeRight },
    ]);
    await touchGesture(cdp, [
      { from: farLeft, to: closeLeft },
      { from: farRight, to: closeRight },
    ]);
    await expect.poll(() => seatWidth(page), { timeout: 5_000 }).toBeLessThan(zoomed);
    expect(await seatWidth(page)).toBeGreaterThanOrEqual(24);
    await shots.take(page, "pinched");
    await fan.close();
  });

  it("on a desktop: picks and holds seats with the keyboard alone, the focused seat ringed", async () => {
    const event = await calmEvent();
    const fan = await newFan(browser(), "desktop", await signInByApi(fanEmail("keyboard")));
    const page = await fan.newPage();
    await page.goto(`/event?id=${event.id}`);
    await seatMapReady(page);
    expect(await page.locator("#seat-map-help").innerText()).toContain("With a keyboard, Tab moves between sections, the arrow keys between seats");
    // Tab from the zoom buttons into the map: the Stalls section's heading, then its first seat.
    await page.getByRole("button", { name: "Zoom in" }).focus();
    await page.keyboard.press("Tab");
    expect(await focusedLabel(page)).toMatch(/^Stalls/);
    await page.keyboard.press("Tab");
    expect(await focusedLabel(page)).toMatch(/^Row A, seat 1,/);
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowDown");
    expect(await focusedLabel(page)).toMatch(/^Row B, seat 2,/);
    const ring = await page.evaluate("(() => { const style = getComputedStyle(document.activeElement); return [style.outlineStyle, parseFloat(style.outlineWidth)]; })()");
    expect(ring).toEqual(["solid", 3]);
    await page.keyboard.press("Space");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("Enter");
    await page.getByText("2 seats picked · $90.00").waitFor();
    await new Screenshots("seat-map-keyboard", "desktop").take(page, "picked-by-keyboard");
    // On to the hold button and press it.
    await page.getByRole("button", { name: "Hold 2 seats" }).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/checkout\?/);
    await page.getByRole("button", { name: /^Pay / }).waitFor();
    expect(await page.locator("#hold-items").innerText()).toContain("Stalls, row B, seat 3");
    await fan.close();
  });
});
