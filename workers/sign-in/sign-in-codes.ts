/**
 * Fan sign-in by emailed one-time code.
 *
 * Asking for a code always looks the same from outside (no account
 * enumeration): every well-formed address gets a code, and accounts are
 * created on first sign-in. A code is 6 random digits, valid 10 minutes, good
 * for one sign-in; Redis keeps only its HMAC, its expiry time and a count of
 * wrong tries. The 5th wrong try burns it.
 *
 * Each code is bound to the request that asked for it: the 202 answer carries
 * a random `challenge` that only the requester sees, and a code redeems only
 * together with its challenge. Codes others ask for the same email are other
 * records, so nobody can lock a fan out (issue 13, finding 2):
 * - wrong guesses count against the guesser's own code (or no code at all),
 *   never the fan's;
 * - code requests are limited per client address and per address+email pair,
 *   not per email, so requests from elsewhere never use up the fan's budget.
 * The email names a short `reference` of its challenge, which the page shows,
 * so a fan whose inbox holds codes asked for by others can tell theirs apart.
 *
 * The expiry is checked against the time in the record (the Worker's clock,
 * passed to the script), not only left to the Redis TTL, which is merely
 * clean-up. Checking and consuming a code is one Lua script, so concurrent
 * tries can neither exceed the wrong-try budget nor both redeem one code.
 *
 * When the mail provider fails, the code request answers `mail_unavailable`
 * and the stored code stays as it is: nobody holds its challenge (the answer
 * was an error), so it can never be redeemed and simply expires.
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis/cloudflare";
import { sql } from "drizzle-orm";
import { decodeJwt } from "jose";
import type { Db } from "../../core/db/client";
import { ConfigError } from "../../core/errors";
import { IsolateCache } from "../../core/isolate-cache";
import { sha256Hex, toHex } from "../platform/hex-digest";
import { MailError, type Mailer } from "../platform/mailer";
import { signFanSession } from "./fan-session";
import { log } from "../../core/logger";

/** How long a code works. */
export const SIGN_IN_CODE_TTL_MS = 10 * 60_000;
/** Wrong tries that burn a code. */
export const MAX_WRONG_CODES = 5;

/**
 * Sliding-window limits, per client IP (IPv6: per /64) or per IP and email
 * pair. None counts per email alone: that would let anyone use up a fan's budget.
 */
export const SIGN_IN_LIMITS = {
  codeRequestsPerIp: { requests: 10, window: "10 m" },
  codeRequestsPerIpAndEmail: { requests: 3, window: "10 m" },
  sessionAttemptsPerIp: { requests: 30, window: "10 m" },
} as const;
type LimitName = keyof typeof SIGN_IN_LIMITS;

/** What the sign-in functions need. */
export interface SignInDeps {
  redis: Redis;
  db: Db;
  mailer: Mailer;
  /** `TOKEN_SIGNING_KEY`: signs the session and keys the codes' HMAC. */
  signingKey: string | undefined;
}

/** The outcome of asking for a code. */
export type CodeRequestResult =
  | { ok: true; expiresAt: number; challenge: string; reference: string }
  | { ok: false; reason: "rate_limited"; retryAfterSeconds: number }
  | { ok: false; reason: "mail_unavailable" };

/** The outcome of redeeming a code. */
export type SessionResult =
  | { ok: true; token: string; accountId: string; expiresAt: number }
  | { ok: false; reason: "rate_limited"; retryAfterSeconds: number }
  | { ok: false; reason: "invalid_code" };

/** Creates a code for `email` (normalized) bound to a fresh challenge, stores it, and emails it. */
export async function requestSignInCode(deps: SignInDeps, input: { email: string; ip: string }): Promise<CodeRequestResult> {
  const ipKey = ipLimitKey(input.ip);
  const limited =
    (await overLimit(deps.redis, "codeRequestsPerIp", ipKey)) ?? (await overLimit(deps.redis, "codeRequestsPerIpAndEmail", await sha256Hex(`${ipKey}\n${input.email}`)));
  if (limited) return limited;

  const code = randomCode();
  const challenge = toHex(crypto.getRandomValues(new Uint8Array(CHALLENGE_BYTES)).buffer);
  const expiresAt = Date.now() + SIGN_IN_CODE_TTL_MS;
  const key = await codeKey(input.email, challenge);
  const reference = await codeReference(challenge);
  await deps.redis
    .multi()
    .hset(key, { hash: await codeHash(deps.signingKey, input.email, challenge, code), expiresAt: String(expiresAt), wrong: "0" })
    // The record's own expiresAt decides; the TTL only clears it away.
    .pexpire(key, SIGN_IN_CODE_TTL_MS + 60_000)
    .exec();

  try {
    await deps.mailer.sendEmail(signInEmail(input.email, code, reference));
  } catch (error) {
    if (!(error instanceof MailError)) throw error;
    log.error("sign_in_mail_failed", { status: error.status ?? null, error: error.message });
    return { ok: false, reason: "mail_unavailable" };
  }
  return { ok: true, expiresAt, challenge, reference };
}

/** Redeems a code: on success, the account (created on first sign-in) and a fan session token. */
export async function redeemSignInCode(deps: SignInDeps, input: { email: string; challenge: string; code: string; ip: string }): Promise<SessionResult> {
  const limited = await overLimit(deps.redis, "sessionAttemptsPerIp", ipLimitKey(input.ip));
  if (limited) return limited;

  const hash = await codeHash(deps.signingKey, input.email, input.challenge, input.code);
  const outcome = await deps.redis.eval<[string, string, string], string>(
    REDEEM_SCRIPT,
    [await codeKey(input.email, input.challenge)],
    [hash, String(Date.now()), String(MAX_WRONG_CODES)],
  );
  if (outcome !== "ok") return { ok: false, reason: "invalid_code" };

  const accountId = await upsertAccount(deps.db, input.email);
  const token = await signFanSession(deps.signingKey, accountId);
  return { ok: true, token, accountId, expiresAt: (decodeJwt(token).exp ?? 0) * 1000 };
}

/**
 * KEYS[1]: the code record; ARGV: the HMAC of the code tried, now (ms), the
 * wrong-try budget. Answers ok (consumed), none, expired, burned or wrong.
 */
const REDEEM_SCRIPT = `
local hash, expiresAt = unpack(redis.call("HMGET", KEYS[1], "hash", "expiresAt"))
if not hash then return "none" end
if tonumber(expiresAt) <= tonumber(ARGV[2]) then
  redis.call("DEL", KEYS[1])
  return "expired"
end
if hash == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return "ok"
end
if redis.call("HINCRBY", KEYS[1], "wrong", 1) >= tonumber(ARGV[3]) then
  redis.call("DEL", KEYS[1])
  return "burned"
end
return "wrong"
`;

/** The account for an email (unique on lower(email)), created when new. */
async function upsertAccount(db: Db, email: string): Promise<string> {
  const result = await db.execute<{ id: string }>(sql`
    insert into accounts (email) values (${email})
    on conflict ((lower(email))) do update set email = accounts.email
    returning id`);
  const id = result.rows[0]?.id;
  if (!id) throw new Error("account upsert returned no row");
  return id;
}

/** Random bytes in a challenge (hex on the wire). */
const CHALLENGE_BYTES = 16;
/** The challenge's shape on the wire. */
export const CHALLENGE_PATTERN = /^[0-9a-f]{32}$/;

/** One record per code request: the email and the challenge, hashed (no address in the clear in Redis). */
async function codeKey(email: string, challenge: string): Promise<string> {
  return `sign-in:code:${await sha256Hex(`${email}\n${challenge}`)}`;
}

/** What the email and the page both show, so a fan can pick their own code among others'. Not secret. */
async function codeReference(challenge: string): Promise<string> {
  return (await sha256Hex(challenge)).slice(0, 4).toUpperCase();
}

/** A uniform 6-digit code (rejection sampling, so no digit string is likelier than another). */
function randomCode(): string {
  const buffer = new Uint32Array(1);
  const limit = 4_294_000_000; // the largest multiple of 10^6 below 2^32
  for (;;) {
    crypto.getRandomValues(buffer);
    const value = buffer[0] ?? limit;
    if (value < limit) return String(value % 1_000_000).padStart(6, "0");
  }
}

function signInEmail(to: string, code: string, reference: string) {
  const minutes = SIGN_IN_CODE_TTL_MS / 60_000;
  const works = `It works once, for ${minutes} minutes, on the page that asked for it (reference ${reference}). If you did not ask to sign in, ignore this email: nobody can sign in without the code.`;
  return {
    to,
    subject: `${code} is your Edge Tickets sign-in code`,
    text: `Your sign-in code is ${code}.\n\n${works}\n`,
    html: `<p>Your sign-in code is</p><p style="font-size:28px;font-weight:bold;letter-spacing:4px">${code}</p><p>${works}</p>`,
  };
}

// ------------------------------------------------------------------ code hashing

/** Derived HMAC keys by `TOKEN_SIGNING_KEY` value. */
const hmacKeys = new IsolateCache<string, Promise<CryptoKey>>(8);
const encoder = new TextEncoder();

/**
 * HMAC-SHA256 of email and code under a key derived (HKDF) from
 * TOKEN_SIGNING_KEY: a 6-digit code has too few values for a plain hash to
 * hide it from someone who can read Redis. Rotating the signing key voids
 * the codes in flight (10 minutes' worth).
 */
async function codeHash(signingKey: string | undefined, email: string, challenge: string, code: string): Promise<string> {
  if (!signingKey) throw new ConfigError(["TOKEN_SIGNING_KEY"]);
  let key = hmacKeys.get(signingKey);
  if (!key) {
    key = deriveHmacKey(signingKey);
    hmacKeys.set(signingKey, key);
  }
  const mac = await crypto.subtle.sign("HMAC", await key, encoder.encode(`${email}\n${challenge}\n${code}`));
  return toHex(mac);
}

async function deriveHmacKey(secret: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode("edge-tickets sign-in code v1") },
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

// ------------------------------------------------------------------ rate limits

/** Blocked identifiers per limiter, per isolate: a blocked client costs no Redis call until its window resets. */
const blockedCaches = new Map<LimitName, IsolateCache<string, number>>();
/** Blocked identifiers remembered per limiter. */
const BLOCKED_CACHED = 10_000;

/** Counts one request against a limit; the refusal when over it. */
async function overLimit(redis: Redis, name: LimitName, identifier: string): Promise<{ ok: false; reason: "rate_limited"; retryAfterSeconds: number } | undefined> {
  let blocked = blockedCaches.get(name);
  if (!blocked) {
    blocked = new IsolateCache(BLOCKED_CACHED);
    blockedCaches.set(name, blocked);
  }
  const { requests, window } = SIGN_IN_LIMITS[name];
  const limiter = new Ratelimit({ redis, limiter: Ratelimit.slidingWindow(requests, window), prefix: `ratelimit:sign-in:${name}`, ephemeralCache: blocked });
  const { success, reset } = await limiter.limit(identifier);
  if (success) return undefined;
  return { ok: false, reason: "rate_limited", retryAfterSeconds: Math.max(1, Math.ceil((reset - Date.now()) / 1000)) };
}

/** An IPv6 client usually holds a whole /64, so limits count per /64; IPv4 per address. */
function ipLimitKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head = "", tail = ""] = ip.toLowerCase().split("::", 2);
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = ip.includes("::") ? (tail === "" ? [] : tail.split(":")) : [];
  const groups = ip.includes("::") ? [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0"), ...tailGroups] : headGroups;
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
