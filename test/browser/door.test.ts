/**
 * The door scanner (/door/) in Chromium, on a phone and a desktop: two doors
 * sign in with the organizer's key (held in memory), load the JWKS, and then
 * lose the network (`context.setOffline(true)`). Both let the same ticket in,
 * verifying its compact code offline; nothing reaches the server. The first
 * door to reconnect sends its scan and the ticket is checked in; the second
 * then reports the double scan, naming the door whose scan won. Those scans are
 * fed by manual entry of the code; a third test feeds the camera: Chromium's
 * fake capture device plays a film of the ticket's QR code, read by the
 * vendored jsQR (headless Chromium on Linux has no BarcodeDetector). Every
 * state is checked with axe and saved as screenshots.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import QRCode from "qrcode";
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { adminCallsAreDocumented } from "./harness/admin-calls";
import { DEVICE_NAMES, chromiumForThisFile, launchChromium, newFanContext, type DeviceName } from "./harness/browser";
import { seriousViolations } from "./harness/axe";
import { appUrl, buyByApi, calmEvent, fanEmail, signInByApi, waitFor, type FanSession } from "./harness/fixtures";
import { Screenshots, watchPage, type PageProblems } from "./harness/pages";

const browser = chromiumForThisFile();
adminCallsAreDocumented();

const myTickets = z.object({ tickets: z.array(z.object({ id: z.uuid(), status: z.string(), code: z.string().nullable(), label: z.string() })) });

/** The fan's one ticket as "My tickets" has it. */
async function theTicket(session: FanSession) {
  const response = await fetch(`${appUrl()}/api/me/tickets`, { headers: { Authorization: `Bearer ${session.token}` } });
  return myTickets.parse(await response.json()).tickets[0];
}

/** Opens the door page on `device` and starts checking in at `door`. */
async function openDoor(
  device: DeviceName,
  eventId: string,
  door: string,
  shots: Screenshots,
  using: Browser = browser(),
): Promise<{ context: BrowserContext; page: Page; problems: PageProblems }> {
  const context = await newFanContext(using, device, { baseURL: appUrl() });
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto("/door/");
  await page.getByRole("heading", { name: "Start checking in" }).waitFor();
  expect(await seriousViolations(page)).toEqual([]);
  await shots.take(page, `signin-${door}`);
  await page.getByLabel("Check-in API key").fill(inject("organizerApiKey"));
  await page.getByLabel("Event ID").fill(eventId);
  await page.getByLabel("Door name").fill(door);
  await page.getByRole("button", { name: "Start checking in" }).click();
  await page.getByText("Online: every scan is sent.").waitFor();
  return { context, page, problems };
}

/**
 * A camera film (YUV4MPEG2, 640x480, a few identical frames that Chromium loops) showing `text` as a QR code
 * of 8-pixel modules on white: what Chromium's fake capture device plays to the page.
 */
function qrFilm(text: string, file: string): void {
  const width = 640;
  const height = 480;
  const qr = QRCode.create(text, { errorCorrectionLevel: "M" }).modules;
  const scale = 8;
  const left = Math.floor((width - qr.size * scale) / 2);
  const top = Math.floor((height - qr.size * scale) / 2);
  const luma = Buffer.alloc(width * height, 235);
  for (let y = 0; y < qr.size * scale; y++) {
    for (let x = 0; x < qr.size * scale; x++) {
      if (qr.get(Math.floor(y / scale), Math.floor(x / scale))) luma[(top + y) * width + left + x] = 16;
    }
  }
  const chroma = Buffer.alloc((width / 2) * (height / 2) * 2, 128);
  const frame = Buffer.concat([Buffer.from("FRAME\n"), luma, chroma]);
  writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\n`), frame, frame, frame]));
}

async function enterCode(page: Page, code: string): Promise<void> {
  await page.getByLabel("Ticket code").fill(code);
  await page.getByRole("button", { name: "Check ticket" }).click();
}

describe.each(DEVICE_NAMES)("the door scanner on a %s", (device) => {
  it("lets a ticket in while the network is cut, and reports the double scan at a second offline door once both reconnect", async () => {
    const event = await calmEvent();
    const session = await signInByApi(fanEmail(`door-${device}`));
    await buyByApi(event.id, session, [0]);
    const ticket = await waitFor("the ticket", async () => (await theTicket(session)) ?? undefined, 30_000);
    if (!ticket.code) throw new Error("a live ticket has a code");
    const shots = new Screenshots("door", device);
    const north = await openDoor(device, event.id, "North gate", shots);
    const south = await openDoor(device, event.id, "South gate", shots);

    // The venue's network fails at both doors.
    await north.context.setOffline(true);
    await south.context.setOffline(true);
    await north.page.getByText(/^Offline: checking tickets on this device/).waitFor();
    await enterCode(north.page, ticket.code);
    await north.page.getByText("Let in", { exact: true }).waitFor();
    expect(await north.page.locator("#verdict-detail").innerText()).toBe(ticket.label);
    await north.page.getByText("Offline: checking tickets on this device; 1 scan waiting to be sent.").waitFor();
    expect(await seriousViolations(north.page)).toEqual([]);
    await shots.take(north.page, "offline-let-in");
    // The same code again at the same door: refused on the spot, offline.
    await enterCode(north.page, ticket.code);
    await north.page.getByText("Already scanned", { exact: true }).waitFor();
    // A forged code (the signature's last character changed) is refused offline too.
    const last = ticket.code.at(-1) === "0" ? "1" : "0";
    await enterCode(north.page, `${ticket.code.slice(0, -1)}${last}`);
    await north.page.getByText("Not a valid ticket", { exact: true }).waitFor();

    await enterCode(south.page, ticket.code);
    await south.page.getByText("Let in", { exact: true }).waitFor();
    expect((await theTicket(session))?.status).toBe("valid");

    // North reconnects first: its scan reaches the server and wins.
    await north.context.setOffline(false);
    await north.page.getByText("Online: every scan is sent.").waitFor();
    await waitFor("the check-in", async () => ((await theTicket(session))?.status === "checked_in" ? true : undefined));
    expect(await north.page.locator("#conflicts li").count()).toBe(0);

    // South reconnects: the server says North's scan won, and the page says so.
    await south.context.setOffline(false);
    const conflict = south.page.locator("#conflicts li");
    await conflict.waitFor();
    expect(await conflict.innerText()).toMatch(new RegExp(`^Double scan\\. ${ticket.label}: scanned here at .+ and at North gate at .+\\. The scan at North gate won: it reached the server first\\.$`));
    await south.page.getByText("Online: every scan is sent.").waitFor();
    expect(await seriousViolations(south.page)).toEqual([]);
    await shots.take(south.page, "conflict");

    for (const door of [north, south]) {
      expect(door.problems.errors).toEqual([]);
      expect(door.problems.failedCalls).toEqual([]);
      await door.context.close();
    }
  });
});

describe("the door scanner's camera", () => {
  it("reads a ticket's QR code from the camera (Chromium's fake camera playing the code; headless Chromium has no BarcodeDetector, so jsQR reads it) and lets it in", async () => {
    const event = await calmEvent();
    const session = await signInByApi(fanEmail("door-camera"));
    await buyByApi(event.id, session, [1]);
    const ticket = await waitFor("the ticket", async () => (await theTicket(session)) ?? undefined, 30_000);
    if (!ticket.code) throw new Error("a live ticket has a code");
    const dir = mkdtempSync(path.join(tmpdir(), "door-camera-"));
    const film = path.join(dir, "qr.y4m");
    qrFilm(ticket.code, film);
    const withCamera = await launchChromium(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-video-capture=${film}`]);
    try {
      const door = await openDoor("desktop", event.id, "Camera gate", new Screenshots("door-camera", "desktop"), withCamera);
      expect(await door.page.evaluate(() => "BarcodeDetector" in globalThis)).toBe(false);
      await door.page.getByRole("button", { name: "Scan with the camera" }).click();
      await door.page.getByText("Let in", { exact: true }).waitFor();
      expect(await door.page.locator("#verdict-detail").innerText()).toBe(ticket.label);
      await waitFor("the check-in", async () => ((await theTicket(session))?.status === "checked_in" ? true : undefined));
      expect(door.problems.errors).toEqual([]);
      expect(door.problems.failedCalls).toEqual([]);
    } finally {
      await withCamera.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
