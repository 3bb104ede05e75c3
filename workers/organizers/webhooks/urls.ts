/**
 * Which URLs an organizer may point a webhook endpoint at. Outside local
 * development (`WEBHOOKS_ALLOW_LOCAL` = "1", which only the local stack
 * sets): https only, and never a host that names this network or the
 * machine itself (loopback, private, carrier NAT, link-local and cloud
 * metadata, multicast, reserved; IPv4 and IPv6 literals, IPv4 inside IPv6,
 * `localhost` and internal names). The WHATWG URL parser already turns
 * `http://2130706433/` and `http://0x7f.1/` into `127.0.0.1`, so the checks
 * below see canonical literals. A public name that resolves to a private
 * address is Cloudflare's fetch's to refuse: Workers cannot reach private
 * networks.
 */

/** Why a URL is refused, for the 400's message. */
export type WebhookUrlProblem = "not_a_url" | "https_required" | "credentials_in_url" | "private_address";

/** The longest endpoint URL we store. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** The env flag the local stack sets: http and private addresses allowed (receivers on this machine). */
export interface WebhookUrlEnv {
  WEBHOOKS_ALLOW_LOCAL?: string;
}

/** `undefined` when `raw` may be an endpoint URL here, else why not. */
export function webhookUrlProblem(raw: string, env: WebhookUrlEnv): WebhookUrlProblem | undefined {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH || !URL.canParse(raw)) return "not_a_url";
  const url = new URL(raw);
  if (url.protocol !== "https:" && url.protocol !== "http:") return "not_a_url";
  if (url.username !== "" || url.password !== "") return "credentials_in_url";
  if (env.WEBHOOKS_ALLOW_LOCAL === "1") return undefined;
  if (url.protocol !== "https:") return "https_required";
  return isPrivateHost(url.hostname) ? "private_address" : undefined;
}

/** Names that never mean a public host. */
const PRIVATE_NAME = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|localdomain)\.?$/i;

function isPrivateHost(hostname: string): boolean {
  if (hostname.startsWith("[")) return isPrivateIpv6(hostname.slice(1, -1));
  const v4 = parseIpv4(hostname);
  if (v4 !== undefined) return isPrivateIpv4(v4);
  // A single label (`http://intranet/`) resolves only through a local search domain.
  return PRIVATE_NAME.test(hostname) || !hostname.replace(/\.$/, "").includes(".");
}

function parseIpv4(hostname: string): number[] | undefined {
  const parts = hostname.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return undefined;
  return parts.map(Number);
}

/** IPv4 blocks that are not the public internet: [first octets, prefix length]. */
const PRIVATE_V4: [number[], number][] = [
  [[0, 0, 0, 0], 8], // "this network"
  [[10, 0, 0, 0], 8],
  [[100, 64, 0, 0], 10], // carrier-grade NAT
  [[127, 0, 0, 0], 8],
  [[169, 254, 0, 0], 16], // link-local, cloud metadata (169.254.169.254)
  [[172, 16, 0, 0], 12],
  [[192, 0, 0, 0], 24],
  [[192, 0, 2, 0], 24],
  [[192, 168, 0, 0], 16],
  [[198, 18, 0, 0], 15],
  [[198, 51, 100, 0], 24],
  [[203, 0, 113, 0], 24],
  [[224, 0, 0, 0], 4], // multicast
  [[240, 0, 0, 0], 4], // reserved, broadcast
];

function isPrivateIpv4(octets: number[]): boolean {
  const value = octets.reduce((sum, octet) => sum * 256 + octet, 0);
  return PRIVATE_V4.some(([base, bits]) => {
    const start = base.reduce((sum, octet) => sum * 256 + octet, 0);
    return Math.floor(value / 2 ** (32 - bits)) === Math.floor(start / 2 ** (32 - bits));
  });
}

/** The eight 16-bit groups of a canonical IPv6 literal (as the URL parser writes it), or undefined. */
function parseIpv6(literal: string): number[] | undefined {
  const halves = literal.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined) => (half ? half.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  return all.length === 8 && all.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? all : undefined;
}

function isPrivateIpv6(literal: string): boolean {
  const g = parseIpv6(literal);
  if (!g) return true; // not something we can judge: refuse
  const [a = 0, b = 0] = g;
  const embeddedV4 = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
  if (g.slice(0, 6).every((x) => x === 0)) return true; // ::, ::1, IPv4-compatible
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return isPrivateIpv4(embeddedV4(g[6] ?? 0, g[7] ?? 0)); // IPv4-mapped
  if (a === 0x64 && b === 0xff9b) return isPrivateIpv4(embeddedV4(g[6] ?? 0, g[7] ?? 0)); // NAT64
  if (a === 0x2002) return isPrivateIpv4(embeddedV4(b, g[2] ?? 0)); // 6to4
  if ((a & 0xfe00) === 0xfc00) return true; // unique local
  if ((a & 0xffc0) === 0xfe80) return true; // link-local
  if ((a & 0xff00) === 0xff00) return true; // multicast
  if (a === 0x2001 && b === 0x0db8) return true; // documentation
  return false;
}
