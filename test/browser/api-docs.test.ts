/**
 * The admin API's docs (/admin/docs) in Chromium with every request to
 * another origin refused, as on a venue network without internet: the docs UI
 * comes from our own static files and renders the document's operations.
 */
import { describe, expect, it } from "vitest";
import { chromiumForThisFile, newFanContext } from "./harness/browser";
import { appUrl } from "./harness/fixtures";
import { Screenshots, watchPage } from "./harness/pages";

const browser = chromiumForThisFile();

describe("the API docs", () => {
  it("render the admin API's operations with no internet access", async () => {
    const context = await newFanContext(browser(), "desktop", { baseURL: appUrl() });
    const elsewhere: string[] = [];
    const origin = new URL(appUrl()).origin;
    await context.route(
      (url) => url.origin !== origin,
      (route) => {
        elsewhere.push(route.request().url());
        return route.abort("internetdisconnected");
      },
    );
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto("/admin/docs");
    await page.locator(".opblock").filter({ hasText: "/venues" }).first().waitFor();
    expect(await page.locator(".opblock").count()).toBeGreaterThanOrEqual(10);
    await page.getByRole("heading", { name: /Edge Tickets admin API/ }).waitFor();
    await new Screenshots("api-docs", "desktop").take(page, "admin");
    expect(elsewhere).toEqual([]);
    expect(problems.errors).toEqual([]);
    await context.close();
  });
});
