/** Hex digests (WebCrypto): stored API keys, Redis keys that must not hold an address in the clear, device signals. */

/** Lower-case hex of a digest or MAC. */
export function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of the UTF-8 text, in hex (64 characters). */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}
