/**
 * The pages' security headers (issue 13, finding 5), from static/_headers as
 * Workers static assets serve them: no page can be framed (checkout above
 * all), nothing is sniffed, no address leaks in the Referer, and the CSP
 * lets only this site's own scripts run. Each page loads under that CSP
 * without a single violation.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { chromiumForThisFile } from "./harness/browser";
import { newFan } from "./harness/fixtures";
import { watchPage } from "./harness/pages";

const browser = chromiumForThisFile();

const PAGES = ["/", "/signin", "/event?id=00000000-0000-4000-8000-000000000000", "/queue?event=00000000-0000-4000-8000-000000000000", "/checkout", "/tickets", "/door/"];

describe("page security headers", () => {
  it.each(PAGES)("%s carries them and loads without a CSP violation", async (path) => {
    const fan = await newFan(browser(), "desktop");
    const page = await fan.newPage();
    const problems = watchPage(page);
    await page.addInitScript({
      content: `window.cspViolations = []; document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));`,
    });
    const response = await page.goto(path);
    if (!response) throw new Error(`no response for ${path}`);
    const headers = response.headers();
    expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(headers["content-security-policy"]).toContain("script-src 'self'");
    expect(headers["content-security-policy"]).not.toContain("unsafe-inline");
    expect(headers["x-frame-options"]).toBe("DENY");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["referrer-policy"]).toBe("no-referrer");
    await page.waitForLoadState("networkidle");
    expect(z.array(z.string()).parse(await page.evaluate("window.cspViolations"))).toEqual([]);
    expect(problems.errors.filter((error) => /Content Security Policy/i.test(error))).toEqual([]);
    await fan.close();
  });
});
