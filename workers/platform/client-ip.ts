/** The client's address, for rate limits and bot signals. */
import { ApiError } from "../../core/errors";

/**
 * The client's IP as Cloudflare reports it (`CF-Connecting-IP`: its edge sets
 * it on every request from the internet, and Miniflare on every request to
 * `wrangler dev`). A request without it reached the Worker some other way (a
 * subrequest or service binding that dropped it): it is refused with 400
 * `client_address_missing` before anything is counted or written, rather
 * than sharing one bucket with every such request (issue 13, finding 8). A
 * 4xx, not a 5xx: the request lacks what the route needs, and sending it
 * again unchanged cannot succeed.
 */
export function clientIp(headers: Headers): string {
  const ip = headers.get("CF-Connecting-IP")?.trim();
  if (!ip) throw new ApiError(400, "client_address_missing", "The request carries no client address (CF-Connecting-IP), which this route's limits need.");
  return ip;
}
