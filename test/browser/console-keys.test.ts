/**
 * The console's API keys and audit log views in Chromium: an admin creates a
 * check-in key (its secret shown once, working against the API), revokes it
 * (the API then refuses it), and finds both changes in the audit log, filtered
 * by that key. Every state is checked with axe and saved as screenshots at
 * phone and desktop sizes.
 */
import { describe, expect, it } from "vitest";
import { adminCallsAreDocumented } from "./harness/admin-calls";
import { DEVICE_NAMES, chromiumForThisFile } from "./harness/browser";
import { checkPage, signedInConsole } from "./harness/console";
import { appUrl, unique } from "./harness/fixtures";
import { Screenshots } from "./harness/pages";

const browser = chromiumForThisFile();
adminCallsAreDocumented();

/** Polls within a loaded machine's patience. */
const POLL = { timeout: 10_000 };

async function statusWith(secret: string): Promise<number> {
  return (await fetch(`${appUrl()}/admin/me`, { headers: { Authorization: `Bearer ${secret}` } })).status;
}

describe("the console's keys and audit log", () => {
  it.each(DEVICE_NAMES)("creates a check-in key shown once, revokes it, and finds both in the audit log (%s)", async (device) => {
    const shots = new Screenshots("console/keys", device);
    const { page, problems, close } = await signedInConsole(browser(), device, shots);
    const name = `Door ${unique()}`;

    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await page.getByRole("heading", { name: "Keys", exact: true }).waitFor();
    await page.getByLabel("Key name").fill(name);
    await page.getByLabel("Key scope").selectOption("check_in");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = page.locator("#key-secret-value");
    await expect.poll(() => secret.innerText(), POLL).toMatch(/^etk_/);
    const value = await secret.innerText();
    expect(await statusWith(value)).toBe(200);
    const row = page.locator("#keys-list tr", { hasText: name });
    await expect.poll(() => row.locator("td").nth(4).innerText(), POLL).toBe("active");
    expect(await row.locator("td").nth(1).innerText()).toBe("Check-in (door)");
    await checkPage(page, shots, "key-created");

    // Listed again, the secret is gone from the page.
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("link", { name: "Keys", exact: true }).click();
    await expect.poll(() => row.locator("td").nth(4).innerText(), POLL).toBe("active");
    expect(await page.locator("#key-secret").isHidden()).toBe(true);
    expect(await page.content()).not.toContain(value);

    await page.getByRole("button", { name: `Revoke key ${name}` }).click();
    await expect.poll(() => row.locator("td").nth(4).innerText(), POLL).toBe("revoked");
    expect(await statusWith(value)).toBe(401);
    await checkPage(page, shots, "key-revoked");

    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { name: "Audit log" }).waitFor();
    await expect.poll(() => page.getByLabel("Made with key").locator("option", { hasText: name }).count(), POLL).toBe(1);
    // The door key itself changed nothing; the admin's changes name it as their target.
    await page.getByLabel("Made with key").selectOption({ label: name });
    const keyId = await page.getByLabel("Made with key").inputValue();
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => page.locator("#audit-list").innerText(), POLL).toBe("No entries.");
    await page.getByLabel("Made with key").selectOption("");
    await page.getByRole("button", { name: "Filter" }).click();
    const entries = page.locator("#audit-list tr", { hasText: keyId });
    await expect.poll(() => entries.locator("td:nth-child(3)").allInnerTexts(), POLL).toEqual(["POST /api-keys/{keyId}/revoke", "POST /api-keys"]);
    await checkPage(page, shots, "audit");

    expect(problems.errors).toEqual([]);
    expect(problems.failedCalls).toEqual([]);
    await close();
  });
});
