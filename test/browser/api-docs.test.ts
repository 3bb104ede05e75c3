/**
 * The admin and fan APIs' docs (/admin/docs, /api/docs) in Chromium with every request to
 * another origin refused, as on a venue network without internet: the docs UI
 * comes from our own static files and renders the document's operations.
 */
import { describe, expect, it } from "vitest";
import { chromiumForThisFile, newFanContext } from "./harness/browser";
import { appUrl } from "./harness/fixtures";
import { Screenshots, watchPage } from "./harness/pages";

const browser = chromiumForThisFile();

describe("the API docs", () => {
  it.each([
    { docs: "/admin/docs", title: /Edge Tickets admin API/, path: "/venues", name: "admin" },
    { docs: "/api/docs", title: /Edge Tickets fan API/, path: "/events/{id}/holds", name: "fans" },
  ])("render $docs's operations with no internet access", async ({ docs, title, path, name }) => {
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
    await page.goto(docs);
    await page.locator(".opblock").filter({ hasText: path }).first().waitFor();
    expect(await page.locator(".opblock").count()).toBeGreaterThanOrEqual(10);
    await page.getByRole("heading", { name: title }).waitFor();
    await new Screenshots("api-docs", "desktop").take(page, name);
    expect(elsewhere).toEqual([]);
    expect(problems.errors).toEqual([]);
    await context.close();
  });
});
