/** The organizer console in a test: signing in with the browser tests' organizer key, and checking a state (axe, screenshot). */
import type { Browser, Page } from "playwright-core";
import { expect, inject } from "vitest";
import { newFanContext, type DeviceName } from "./browser";
import { seriousViolations } from "./axe";
import { appUrl } from "./fixtures";
import { type PageProblems, type Screenshots, watchPage } from "./pages";

/** Checks the console as it is now (no serious or critical axe violation) and saves a screenshot. */
export async function checkPage(page: Page, shots: Screenshots, state: string): Promise<void> {
  expect(await seriousViolations(page), `${state}: ${page.url()}`).toEqual([]);
  await shots.take(page, state);
}

/** Opens the console on `device` and signs in with the organizer's key. */
export async function signedInConsole(browser: Browser, device: DeviceName, shots: Screenshots): Promise<{ page: Page; problems: PageProblems; close: () => Promise<void> }> {
  const context = await newFanContext(browser, device, { baseURL: appUrl() });
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto("/console/");
  await page.getByLabel("API key").waitFor();
  await checkPage(page, shots, "signin");
  await page.getByLabel("API key").fill(inject("organizerApiKey"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Your events" }).waitFor();
  return { page, problems, close: () => context.close() };
}
