/**
 * The pages a crowd loads at once stay small: the lobby (a hot event's page)
 * and the waiting room, each with every script and stylesheet the browser
 * loads for it (modules it imports included), gzip-compressed, stay under
 * 50 KB. Measured from what Chromium actually fetched, so a new import or a
 * bigger stylesheet counts.
 */
import { gzipSync } from "node:zlib";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { chromiumForThisFile } from "./harness/browser";
import { fanEmail, hotEvent, newFan, signInByApi } from "./harness/fixtures";

/** The budget per page, compressed. */
const BUDGET_BYTES = 50_000;

const browser = chromiumForThisFile();

/** Loads `path` and returns the gzip size of each HTML, script and stylesheet response it fetched. */
async function pageWeight(page: Page, path: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  const pending: Promise<void>[] = [];
  page.on("response", (response) => {
    const type = response.request().resourceType();
    if (type !== "document" && type !== "script" && type !== "stylesheet") return;
    pending.push(response.body().then((body) => void sizes.set(new URL(response.url()).pathname, gzipSync(body).length)));
  });
  await page.goto(path);
  await page.waitForLoadState("networkidle");
  await Promise.all(pending);
  return sizes;
}

const total = (sizes: Map<string, number>): number => [...sizes.values()].reduce((sum, size) => sum + size, 0);

describe("page weight", () => {
  it("the lobby and the waiting room each stay under 50 KB compressed, scripts and styles included", async () => {
    const event = await hotEvent();
    const fan = await newFan(browser(), "phone", await signInByApi(fanEmail("weight")));
    const lobby = await pageWeight(await fan.newPage(), `/event?id=${event.id}`);
    const queue = await pageWeight(await fan.newPage(), `/queue?event=${event.id}`);
    for (const [name, sizes] of [
      ["lobby", lobby],
      ["queue", queue],
    ] as const) {
      // What each page is made of, for the record when the budget is near.
      console.log(`${name}: ${total(sizes)} bytes gzip: ${[...sizes].map(([file, size]) => `${file} ${size}`).join(", ")}`);
      expect(sizes.size, `${name}: a page, its scripts and its styles`).toBeGreaterThanOrEqual(3);
      expect(total(sizes), name).toBeLessThanOrEqual(BUDGET_BYTES);
    }
    expect([...lobby.keys()]).not.toContain("/js/seat-map.js");
    await fan.close();
  });
});
