/**
 * Reading a ticket as the door would: the QR code on the fan's screen decoded
 * from a screenshot (jsqr), and the token in it verified offline against the
 * published key set (jose).
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import jsQR from "jsqr";
import type { Locator } from "playwright-core";
import { PNG } from "pngjs";

/** The text of the QR code `image` shows, as a phone camera would read it from the screen. */
export async function readQrCode(image: Locator): Promise<string> {
  const png = PNG.sync.read(await image.screenshot({ animations: "disabled" }));
  const code = jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength), png.width, png.height);
  if (!code) throw new Error(`no QR code could be read from a ${png.width}x${png.height} screenshot`);
  return code.data;
}

/** Verifies a ticket token against `${appUrl}/.well-known/jwks.json`; throws when it does not verify. */
export async function verifyTicketToken(appUrl: string, token: string): Promise<JWTPayload> {
  const keys = createRemoteJWKSet(new URL("/.well-known/jwks.json", appUrl));
  const { payload } = await jwtVerify(token, keys, { issuer: "edge-tickets", audience: "ticket", algorithms: ["ES256"] });
  return payload;
}
