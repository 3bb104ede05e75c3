/**
 * The lobby and the waiting room between the journeys' happy paths: live
 * countdowns that move the page on as the line and the sale open (on a fake
 * clock: the page's time is fast-forwarded, nothing waits for it), wording
 * for a fan who arrives after the sale opened, a status line that never
 * disagrees with the panel under it while the line moves, and a fan the
 * organizer cleared of bot flags let in on the ticket they got while flagged.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { chromiumForThisFile } from "./harness/browser";
import { admin, fanEmail, hotEvent, joinLobby, newFan, openSaleNow, setAdmission, signInByApi, unique, waitFor } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";
import { joinTheLine } from "./harness/steps";

const browser = chromiumForThisFile();

/** The visible text of the page's main part (hidden panels excluded). */
const shown = (page: Page): Promise<string> => page.locator("main").innerText();

describe("the lobby and the waiting room on a phone", () => {
  it("count down to the line and the sale, and move on by themselves when each opens", async () => {
    // The line opens in 15 minutes, the sale 30 minutes after that.
    const event = await hotEvent({ saleInMinutes: 45 });
    const shots = new Screenshots("lobby-countdown", "phone");
    const fan = await newFan(browser(), "phone", await signInByApi(fanEmail("countdown")));
    const page = await fan.newPage();
    await page.clock.install();
    await page.goto(`/event?id=${event.id}`);
    await page.getByRole("heading", { name: /^On sale / }).waitFor();
    expect(await page.locator("#sale-countdown-line").innerText()).toMatch(/^The line opens in 1[45] min \d\d s$/);
    expect(await page.getByRole("link", { name: "Join the line" }).isVisible()).toBe(false);
    await shots.take(page, "lobby-before-line");
    await page.clock.fastForward("15:01");
    await page.getByRole("heading", { name: "The line is open" }).waitFor();
    expect(await page.locator("#sale-countdown-line").innerText()).toMatch(/^The sale opens in (29|30) min \d\d s$/);
    await page.getByRole("link", { name: "Join the line" }).waitFor();
    await shots.take(page, "lobby-line-open");
    await page.clock.fastForward("30:00");
    await page.getByRole("heading", { name: "On sale now" }).waitFor();
    expect(await page.locator("#sale-countdown-line").isVisible()).toBe(false);

    // The waiting room's join panel counts down the same way.
    const queue = await fan.newPage();
    await queue.clock.install();
    await queue.goto(`/queue?event=${event.id}`);
    await queue.getByText(/^The line opens in/).waitFor();
    expect(await queue.getByRole("button", { name: "Join the line" }).isDisabled()).toBe(true);
    await shots.take(queue, "queue-before-line");
    await queue.clock.fastForward("15:01");
    await queue.getByText(/^The sale opens in/).waitFor();
    expect(await queue.getByRole("button", { name: "Join the line" }).isEnabled()).toBe(true);
    expect(await shown(queue)).toContain("gets a random place");
    await fan.close();
  });

  it("tell a fan who arrives after the sale opened where they stand, and the status line never disagrees with the panel as the line moves", async () => {
    const event = await hotEvent({ saleInMinutes: 20, admissionRatePerSecond: 1 });
    const early = await Promise.all(Array.from({ length: 5 }, (_, i) => signInByApi(fanEmail(`early-${i}`))));
    for (const session of early) await joinLobby(event.id, session);
    await openSaleNow(event.id, { paused: true });
    const shots = new Screenshots("late-arrival", "phone");
    const fan = await newFan(browser(), "phone", await signInByApi(fanEmail("late")));
    const page = await fan.newPage();
    // Every render of the status line and the panel, as the fan would have seen it.
    await page.addInitScript(RECORD_RENDERS);
    await page.goto(`/queue?event=${event.id}`);
    await page.getByRole("button", { name: "Join the line" }).waitFor();
    const joinText = await shown(page);
    expect(joinText).toContain("The sale is open.");
    expect(joinText).not.toContain("random place");
    expect(joinText).not.toContain("Sale opens");
    await shots.take(page, "join-after-sale-opened");

    await joinTheLine(page);
    await page.locator("#position").getByText("About 5 fans are ahead of you.").waitFor();
    expect(await page.locator("#status").innerText()).toBe("You are in line. Admission is paused for a moment.");
    const waitingText = await shown(page);
    expect(waitingText).not.toContain("random place");
    expect(waitingText).not.toContain("The sale opens");
    await shots.take(page, "waiting-paused");

    await setAdmission(event.id, { paused: false, ratePerSecond: 1 });
    await page.getByRole("heading", { name: "It is your turn" }).waitFor({ timeout: 30_000 });
    await shots.take(page, "admitted");
    const renders = renderLog.parse(await page.evaluate("window.__renders"));
    // The line moved while the fan watched: more than one place was shown.
    expect(new Set(renders.filter((r) => r.section === "waiting").map((r) => r.position)).size).toBeGreaterThan(1);
    for (const render of renders) expect(disagreement(render), JSON.stringify(render)).toBeUndefined();
    await fan.close();
  });

  it("let in a fan the organizer cleared after bot defense flagged them, with the ticket they got while flagged", async () => {
    const event = await hotEvent({ saleInMinutes: 20 });
    // Three accounts joined from one device (the event allows three); the fan joins from it too, so all four queue behind everyone.
    const device = `farm-${unique()}`;
    const others = [];
    for (let i = 0; i < 3; i++) {
      const session = await signInByApi(fanEmail("farm"));
      await joinLobby(event.id, session, undefined, device);
      others.push(session);
    }
    const session = await signInByApi(fanEmail("cleared"));
    const fan = await newFan(browser(), "phone", session);
    await fan.addInitScript((id) => localStorage.setItem("edge-tickets.device", id), device);
    const page = await fan.newPage();
    await page.clock.install();
    await page.goto(`/queue?event=${event.id}`);
    await joinTheLine(page);
    await page.locator("#position").getByText(/ahead of you|next in line/).waitFor();
    const saved = savedTicket.parse(JSON.parse((await page.evaluate((key) => localStorage.getItem(key), `edge-tickets.lobby.${event.id}`)) ?? "null"));
    expect(saved.block).toBe("flagged");

    // The organizer clears the fan and confirms the others; the sale opens and the room lets the fan in, under their new place.
    await admin("POST", `/events/${event.id}/bot-flags/${session.accountId}`, { decision: "clear" }, decided);
    for (const other of others) await admin("POST", `/events/${event.id}/bot-flags/${other.accountId}`, { decision: "confirm" }, decided);
    await openSaleNow(event.id);
    await waitFor("the room to let the cleared fan in", async () => ((await admin("GET", `/events/${event.id}/live`, undefined, liveView)).queue.admitted >= 1 ? true : undefined));

    // Within the page's next look at its flagged ticket, the fan is in, with the ticket they kept, and holds seats.
    await page.clock.fastForward("00:31");
    await page.getByRole("heading", { name: "It is your turn" }).waitFor();
    await page.getByLabel("Tickets", { exact: true }).selectOption("2");
    await page.getByRole("button", { name: "Hold the best available" }).click();
    await page.waitForURL(/\/checkout\?/);
    await page.getByRole("button", { name: /^Pay / }).waitFor();
    await fan.close();
  });

  it("keeps a flagged fan signed in when the page's quiet look at their ticket is refused", async () => {
    const event = await hotEvent({ saleInMinutes: 20 });
    // Four accounts from one device: the fan queues behind everyone, with a ticket from the flagged block.
    const device = `farm-${unique()}`;
    for (let i = 0; i < 3; i++) await joinLobby(event.id, await signInByApi(fanEmail("farm")), undefined, device);
    const session = await signInByApi(fanEmail("flagged"));
    const fan = await newFan(browser(), "desktop", session);
    await fan.addInitScript((id) => localStorage.setItem("edge-tickets.device", id), device);
    const page = await fan.newPage();
    await page.goto(`/queue?event=${event.id}`);
    await joinTheLine(page);
    await page.locator("#position").getByText(/ahead of you|next in line/).waitFor();
    const key = `edge-tickets.lobby.${event.id}`;
    expect(savedTicket.parse(JSON.parse((await page.evaluate((k) => localStorage.getItem(k), key)) ?? "null")).block).toBe("flagged");

    // The ticket kept in the browser no longer verifies (its signature spoilt): the Worker refuses it 401 invalid_ticket.
    await page.evaluate((k) => {
      const saved = JSON.parse(localStorage.getItem(k) ?? "{}");
      saved.ticket = `${saved.ticket.slice(0, -4)}${saved.ticket.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
      localStorage.setItem(k, JSON.stringify(saved));
    }, key);
    const refused = page.waitForResponse((response) => response.url().endsWith(`/api/events/${event.id}/admission`) && response.request().method() === "POST");
    await page.reload();
    const answer = await refused;
    expect(answer.status()).toBe(401);
    expect(await answer.json()).toMatchObject({ error: { code: "invalid_ticket" } });
    // The quiet look changes nothing the fan sees: still signed in, still in line.
    await page.locator("#position").getByText(/ahead of you|next in line/).waitFor();
    expect(await page.evaluate(() => localStorage.getItem("edge-tickets.session"))).not.toBeNull();
    await fan.close();
  });
});

const savedTicket = z.object({ block: z.enum(["lobby", "late", "flagged"]) });
const decided = z.object({ line: z.enum(["moved", "unchanged", "absent"]) });
const liveView = z.object({ queue: z.object({ admitted: z.number() }) });

const renderLog = z.array(z.object({ status: z.string(), position: z.string(), section: z.string() }));
type Render = z.infer<typeof renderLog>[number];

/** Records `{ status, position, section }` each time the status line, the place in line or the visible panel changes. */
const RECORD_RENDERS = `addEventListener("DOMContentLoaded", () => {
  window.__renders = [];
  const record = () => {
    const section = [...document.querySelectorAll("main > section")].find((s) => !s.hidden)?.id ?? "";
    const render = { status: document.getElementById("status").textContent, position: document.getElementById("position").textContent, section };
    const last = window.__renders[window.__renders.length - 1];
    if (!last || last.status !== render.status || last.position !== render.position || last.section !== render.section) window.__renders.push(render);
  };
  new MutationObserver(record).observe(document.querySelector("main"), { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["hidden"] });
});`;

/** How many fans a text says are ahead ("next in line" is none), if it says. */
function fansAheadIn(text: string): number | undefined {
  if (/next in line/i.test(text)) return 0;
  const count = /About ([\d,]+) fans? (?:is |are )?ahead/i.exec(text)?.[1];
  return count === undefined ? undefined : Number(count.replaceAll(",", ""));
}

/** What is wrong with one render, if anything: a status line at odds with the panel shown under it. */
function disagreement(render: Render): string | undefined {
  if (render.section === "waiting") {
    const said = fansAheadIn(render.status);
    const shown = fansAheadIn(render.position);
    if (said !== undefined && shown !== undefined && said !== shown) return `the status line says ${said} ahead, the panel ${shown}`;
    if (/your turn|sold out/i.test(render.status)) return "the status line says the wait is over while the panel shows the line";
  }
  if (render.section === "admitted" && /in line/i.test(render.status) && !/turn/i.test(render.status)) return "the status line says in line while the panel says it is the fan's turn";
  return undefined;
}
