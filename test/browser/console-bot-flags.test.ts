/**
 * The console's bot flags panel in Chromium: on a hot event where five
 * accounts joined the lobby from one device (the limit is three), the
 * organizer sees the flagged accounts and why, clears one and confirms
 * another, and each decision shows in the row at once and in the API. Checked
 * with axe and saved as screenshots at phone and desktop sizes.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { checkPage, signedInConsole } from "./harness/console";
import { admin, fanEmail, hotEvent, joinLobby, signInByApi, unique } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";

const browser = chromiumForThisFile();

/** Accounts joining from one device; the event allows three per device. */
const FARM = 5;

const flagsView = z.object({ flags: z.array(z.object({ accountId: z.uuid(), email: z.string(), decision: z.enum(["clear", "confirm"]).nullable() })) });

describe("the console's bot flags", () => {
  it.each(DEVICE_NAMES)("lists the flagged accounts with their reasons; the organizer clears one and confirms one (%s)", async (device) => {
    const event = await hotEvent();
    const farm = `farm-${unique()}`;
    for (let i = 0; i < FARM; i++) await joinLobby(event.id, await signInByApi(fanEmail("farm")), undefined, farm);
    const { flags } = await admin("GET", `/events/${event.id}/bot-flags`, undefined, flagsView);
    const [cleared, confirmed] = flags;
    if (!cleared || !confirmed) throw new Error(`expected two flagged accounts at least, got ${flags.length}`);

    const shots = new Screenshots("console/bot-flags", device);
    const { page, problems, close } = await signedInConsole(browser(), device, shots);
    await page.goto(`/console/#/events/${event.id}`);
    await page.getByRole("heading", { name: "Bot flags", level: 2 }).waitFor();
    const row = (accountId: string) => page.locator(`#flags-list tr[data-account="${accountId}"]`);
    await row(cleared.accountId).waitFor();
    await expect.poll(() => page.locator("#flags-list tr[data-account]").count()).toBe(new Set(flags.map((f) => f.accountId)).size);
    expect(await row(cleared.accountId).innerText()).toContain("shared device");
    await checkPage(page, shots, "flags");

    await row(cleared.accountId).getByRole("button", { name: `Clear ${cleared.email}` }).click();
    await expect.poll(() => row(cleared.accountId).locator("[data-decision]").getAttribute("data-decision")).toBe("clear");
    await row(confirmed.accountId).getByRole("button", { name: `Confirm ${confirmed.email}` }).click();
    await expect.poll(() => row(confirmed.accountId).locator("[data-decision]").getAttribute("data-decision")).toBe("confirm");
    expect(await row(confirmed.accountId).getByRole("button", { name: `Confirm ${confirmed.email}` }).isDisabled()).toBe(true);
    await checkPage(page, shots, "decided");

    const after = await admin("GET", `/events/${event.id}/bot-flags`, undefined, flagsView);
    const decisionOf = (accountId: string) => after.flags.find((f) => f.accountId === accountId)?.decision;
    expect([decisionOf(cleared.accountId), decisionOf(confirmed.accountId)]).toEqual(["clear", "confirm"]);
    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });
});
