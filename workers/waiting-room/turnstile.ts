/**
 * Server-side validation of Cloudflare Turnstile tokens (the CAPTCHA in front
 * of the lobby), as Cloudflare documents it: POST the widget's token to
 * siteverify with our secret key, the visitor's IP and an idempotency key, and
 * trust only `success: true`. It fails closed: an unreachable, slow or
 * unreadable siteverify is "not verified".
 */
import { z } from "zod";
import { DEFAULT_TURNSTILE_VERIFY_URL } from "../../core/config";
import { ConfigError } from "../../core/errors";

/** Our error code when siteverify could not give an answer (network, timeout, 5xx, not JSON). */
export const TURNSTILE_UNAVAILABLE = "siteverify-unavailable";

/** Cloudflare refuses longer tokens, so they are refused here without a call. */
const MAX_TOKEN_LENGTH = 2048;
/** Per siteverify call; with one retry, a fan waits at most twice this. */
const VERIFY_TIMEOUT_MS = 3_000;

/** The outcome of one validation. */
export interface TurnstileVerdict {
  success: boolean;
  /** Cloudflare's error codes (`invalid-input-response`, `timeout-or-duplicate`, ...), or `TURNSTILE_UNAVAILABLE`. */
  errorCodes: string[];
  /** When the challenge was solved (ISO 8601). */
  challengeTs?: string;
  /** The hostname the widget was served on. */
  hostname?: string;
  /** The widget's `action`, which callers should compare with what they expect. */
  action?: string;
  cdata?: string;
  /**
   * Cloudflare's ephemeral id of the device that solved the challenge
   * (`metadata.ephemeral_id`, Enterprise plans): stable for that device
   * across the accounts and client-side ids it uses, so it shows one device
   * behind many accounts even when the client rotates its own device id.
   */
  ephemeralId?: string;
}

const siteverifySchema = z.object({
  success: z.boolean(),
  "error-codes": z.array(z.string()).default([]),
  challenge_ts: z.string().optional(),
  hostname: z.string().optional(),
  action: z.string().optional(),
  cdata: z.string().optional(),
  metadata: z.object({ ephemeral_id: z.string().min(1).max(256).optional() }).optional(),
});

/**
 * Validates a Turnstile token for the fan at `ip` (their `CF-Connecting-IP`;
 * undefined leaves `remoteip` out). One idempotency key covers
 * the call and its single retry (after a network failure or a 5xx), so
 * Cloudflare answers the retry as it answered the first call rather than
 * calling the token spent. With `expectedAction`, a token from another
 * widget fails with `action-mismatch`.
 */
export async function verifyTurnstile(
  env: Pick<Env, "TURNSTILE_SECRET_KEY" | "TURNSTILE_VERIFY_URL">,
  token: string,
  ip: string | undefined,
  options: { expectedAction?: string; idempotencyKey?: string; timeoutMs?: number } = {},
): Promise<TurnstileVerdict> {
  if (token === "") return { success: false, errorCodes: ["missing-input-response"] };
  if (token.length > MAX_TOKEN_LENGTH) return { success: false, errorCodes: ["invalid-input-response"] };
  if (!env.TURNSTILE_SECRET_KEY) throw new ConfigError(["TURNSTILE_SECRET_KEY"]);
  const url = env.TURNSTILE_VERIFY_URL || DEFAULT_TURNSTILE_VERIFY_URL;
  const timeoutMs = options.timeoutMs ?? VERIFY_TIMEOUT_MS;
  const form = new URLSearchParams({ secret: env.TURNSTILE_SECRET_KEY, response: token, idempotency_key: options.idempotencyKey ?? crypto.randomUUID() });
  if (ip) form.set("remoteip", ip);

  let verdict = await siteverify(url, form, timeoutMs);
  verdict ??= await siteverify(url, form, timeoutMs);
  if (verdict === undefined) return { success: false, errorCodes: [TURNSTILE_UNAVAILABLE] };
  if (verdict.success && options.expectedAction !== undefined && verdict.action !== options.expectedAction) {
    return { ...verdict, success: false, errorCodes: ["action-mismatch"] };
  }
  return verdict;
}

/** One siteverify call; undefined when it gave no usable answer. */
async function siteverify(url: string, form: URLSearchParams, timeoutMs: number): Promise<TurnstileVerdict | undefined> {
  try {
    const response = await fetch(url, { method: "POST", body: form, signal: AbortSignal.timeout(timeoutMs) });
    const json: unknown = await response.json().catch(() => undefined);
    if (response.status >= 500) return undefined;
    const parsed = siteverifySchema.safeParse(json);
    if (!parsed.success) return undefined;
    const { success, "error-codes": errorCodes, challenge_ts: challengeTs, hostname, action, cdata, metadata } = parsed.data;
    return { success, errorCodes, challengeTs, hostname, action, cdata, ...(metadata?.ephemeral_id ? { ephemeralId: metadata.ephemeral_id } : {}) };
  } catch {
    return undefined;
  }
}
