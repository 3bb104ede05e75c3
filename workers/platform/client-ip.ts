/** The client's address, for rate limits and bot signals. */

/** The client's IP as Cloudflare reports it (`CF-Connecting-IP`); "unknown" when absent (then all such clients share limits). */
export function clientIp(headers: Headers): string {
  return headers.get("CF-Connecting-IP")?.trim() || "unknown";
}
