/**
 * What a browser test keeps and checks about each page it opens: screenshots
 * (test/browser/artifacts/<journey>/<device>/, git-ignored), and the page's
 * own failures (uncaught errors, console errors such as a missing favicon,
 * API answers of 400 and above) so a journey fails on a page that looks fine
 * but asked for something that is not there.
 */
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import type { DeviceName } from "./browser";

/** Where screenshots go. */
export const ARTIFACTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../artifacts");

/** Numbered full-page screenshots of one journey on one device. */
export class Screenshots {
  private readonly dir: string;
  private count = 0;
  /** The files written so far. */
  readonly files: string[] = [];

  constructor(journey: string, device: DeviceName) {
    this.dir = path.join(ARTIFACTS_DIR, journey, device);
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  /** Saves the whole page as `NN-<name>.png`. */
  async take(page: Page, name: string): Promise<void> {
    this.count += 1;
    const file = path.join(this.dir, `${String(this.count).padStart(2, "0")}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true, animations: "disabled" });
    this.files.push(file);
  }
}

/** One failed API answer a page received. */
export interface FailedCall {
  method: string;
  path: string;
  status: number;
}

/** The failures a page has shown so far. */
export interface PageProblems {
  /** Uncaught exceptions and console errors (a 404 for a favicon shows here). */
  errors: string[];
  /** Same-origin /api and /admin answers with status >= 400. */
  failedCalls: FailedCall[];
}

/** Starts recording `page`'s failures. */
export function watchPage(page: Page): PageProblems {
  const problems: PageProblems = { errors: [], failedCalls: [] };
  page.on("pageerror", (error) => problems.errors.push(`uncaught: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.errors.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (response.status() >= 400 && /^\/(api|admin)\//.test(url.pathname)) {
      problems.failedCalls.push({ method: response.request().method(), path: url.pathname, status: response.status() });
    }
  });
  return problems;
}
