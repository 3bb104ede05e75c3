/**
 * Reading a ticket as the door would: the QR code on the fan's screen decoded
 * from a screenshot (jsqr), and the compact code in it verified offline
 * against the published key set (core/tickets/compact-token.ts).
 */
import jsQR from "jsqr";
import type { Locator } from "playwright-core";
import { PNG } from "pngjs";
import { verifyCompactCode, type CompactTicket } from "../../../core/tickets/compact-token";

/** The text of the QR code `image` shows, as a phone camera would read it from the screen. */
export async function readQrCode(image: Locator): Promise<string> {
  const png = PNG.sync.read(await image.screenshot({ animations: "disabled" }));
  const code = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength), png.width, png.height);
  if (!code) throw new Error(`no QR code could be read from a ${png.width}x${png.height} screenshot`);
  return code.data;
}

/** Verifies a compact ticket code against `${appUrl}/.well-known/jwks.json`; throws when it does not verify. */
export async function verifyTicketCode(appUrl: string, code: string): Promise<CompactTicket> {
  const response = await fetch(new URL("/.well-known/jwks.json", appUrl));
  if (!response.ok) throw new Error(`GET /.well-known/jwks.json answered ${response.status}`);
  const jwks: unknown = await response.json();
  if (typeof jwks !== "object" || jwks === null || !("keys" in jwks) || !Array.isArray(jwks.keys)) throw new Error("the JWKS has no keys");
  const verified = await verifyCompactCode(code, { keys: jwks.keys });
  if (!verified.ok) throw new Error(`the ticket's code does not verify: ${verified.reason}`);
  return verified.ticket;
}
