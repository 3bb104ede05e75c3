/**
 * Chromium for the browser tests: Debian's `chromium` driven by
 * playwright-core, one fresh profile per launch, and a browser context per
 * fan on a phone (390 px, touch) or a desktop, each with an IP address of its
 * own (`CF-Connecting-IP`), as real fans have: the Worker's per-IP limits
 * (sign-in codes, accounts per IP in a lobby) then see one fan per address.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { recordAdminCalls } from "./admin-calls";

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it when missing). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Quiet, offline, sandbox-less (tests run as root in CI) headless Chromium. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/** Launches Chromium (with `extraFlags`, e.g. a fake camera); playwright gives every launch a fresh temporary profile (--user-data-dir). */
export async function launchChromium(extraFlags: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`No Chromium at ${CHROMIUM_PATH}: install it with \`apt-get install chromium\` (or set CHROMIUM_PATH).`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, chromiumSandbox: false, args: [...CHROMIUM_FLAGS, ...extraFlags], timeout: 60_000 });
}

/**
 * One Chromium for the calling test file: launched before its tests, closed
 * after them. Returns the browser's getter.
 */
export function chromiumForThisFile(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error("Chromium is not running (the file's beforeAll has not run)");
    return browser;
  };
}

/** The two sizes every journey runs at. */
export const DEVICES = {
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, isMobile: false, hasTouch: false },
} as const satisfies Record<string, BrowserContextOptions>;

/** A device name. */
export type DeviceName = keyof typeof DEVICES;

/** Both device names, for `describe.each`. */
export const DEVICE_NAMES = Object.keys(DEVICES) as DeviceName[];

/**
 * Where this test file's fan addresses start. Every browser test file loads
 * this module afresh, and the Worker limits sign-in codes per address (10 in
 * 10 minutes): files counting from the same start would share addresses and
 * run each other out of sign-ins in the whole suite. A random start in the
 * range keeps them apart.
 */
let lastIp = Math.floor(Math.random() * 120_000);

/** A distinct documentation-range address (198.18.0.0/15, for benchmarks and tests) per fan. */
export function nextFanIp(): string {
  lastIp = (lastIp + 1) % 131_072;
  return `198.${18 + (lastIp >> 16)}.${(lastIp >> 8) & 255}.${lastIp & 255}`;
}

/** A fan's own browser context: its own storage, its own IP address; its pages' admin API calls recorded (./admin-calls.ts). */
export async function newFanContext(
  browser: Browser,
  device: DeviceName,
  options: { baseURL: string; ip?: string; localStorage?: Record<string, string> },
): Promise<BrowserContext> {
  const localStorage = Object.entries(options.localStorage ?? {}).map(([name, value]) => ({ name, value }));
  const context = await browser.newContext({
    ...DEVICES[device],
    baseURL: options.baseURL,
    storageState: { cookies: [], origins: localStorage.length > 0 ? [{ origin: options.baseURL, localStorage }] : [] },
    locale: "en-US",
    timezoneId: "UTC",
    extraHTTPHeaders: { "CF-Connecting-IP": options.ip ?? nextFanIp() },
  });
  context.setDefaultTimeout(15_000);
  recordAdminCalls(context, options.baseURL);
  return context;
}
