/**
 * Signing in returns the fan to where they were, and only ever to a page of
 * this site: `next` values that the browser's URL parser turns into another
 * host (a tab, newline or carriage return after the first slash makes
 * "//evil.example") send the fan to the home page instead.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { chromiumForThisFile } from "./harness/browser";
import { appUrl, fanEmail, newFan, signInThroughPage } from "./harness/fixtures";

const browser = chromiumForThisFile();

/** `next` values as they appear in a link, each of which once led off the site. */
const EVIL_NEXTS = ["/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example", "/%09%5Cevil.example", "%2F%2Fevil.example", "/%5C/evil.example"];

describe("sign-in's way back", () => {
  it.each(["/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example"])("signing in from /signin?next=%s stays on this site", async (next) => {
    const fan = await newFan(browser(), "desktop");
    const offSite: string[] = [];
    await fan.route((url) => url.hostname.endsWith("evil.example"), async (route) => {
      offSite.push(route.request().url());
      await route.abort();
    });
    const page = await fan.newPage();
    await page.goto(`/signin?next=${next}`);
    await signInThroughPage(page, fanEmail("redirect"));
    await page.waitForLoadState("load");
    expect(new URL(page.url()).origin).toBe(appUrl());
    expect(new URL(page.url()).pathname).toBe("/");
    expect(offSite).toEqual([]);
    await fan.close();
  });

  it("returns to the page the fan came from, and parses every other way off the site to the home page", async () => {
    const fan = await newFan(browser(), "phone");
    const page = await fan.newPage();
    await page.goto("/signin?next=%2Ftickets%3Fevent%3Dx");
    // The page's own helper, run in the page on what its query string hands over.
    const parsed = z.array(z.string()).parse(
      await page.evaluate(
        `import("/js/api.js").then((api) => ${JSON.stringify(EVIL_NEXTS)}.map((raw) => api.safeNext(new URLSearchParams("next=" + raw).get("next"))))`,
      ),
    );
    expect(parsed).toEqual(EVIL_NEXTS.map(() => "/"));
    await signInThroughPage(page, fanEmail("back"));
    await page.waitForURL(`${appUrl()}/tickets?event=x`);
    await fan.close();
  });
});
