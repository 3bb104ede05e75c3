/**
 * Failures that are neither the request's fault nor a bug of ours, but a
 * dependency's, for now: Postgres stalled or unreachable, a Durable Object
 * reset under the call or overloaded. The Worker answers them 503 with
 * Retry-After (app.onError), so that fans' browsers try again and operators
 * see an outage, not a 500 to debug.
 */
import { POSTGRES_UNREACHABLE } from "../../core/errors";

/** What the fan is told: the error code and message, and how long to wait. */
export interface Unavailable {
  code: "database_unavailable" | "temporarily_unavailable" | "overloaded";
  message: string;
  retryAfterS: number;
  /** The error (of the causes) that says so, for the log. */
  cause: Error;
}

/** Postgres error classes that mean the database cannot serve now: connection exceptions, shutting down or starting, out of connections. */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
/** What the driver says when Postgres does not answer in time (the database middleware's bounded waits), or the connection drops or is refused; and what our objects say then. */
const UNAVAILABLE_MESSAGE = new RegExp(`^(Query read timeout|Connection terminated\\b|${POSTGRES_UNREACHABLE}\\b)|ECONNREFUSED|ECONNRESET`);

/** The platform's flags on a failed Durable Object call (developers.cloudflare.com/durable-objects/best-practices/error-handling). */
interface ObjectErrorFlags {
  overloaded?: unknown;
  retryable?: unknown;
  durableObjectReset?: unknown;
}

/** How long a fan waits before trying again: Postgres is given a few seconds, a reset object a moment, an overloaded one longer (retrying at once adds to the overload). */
const RETRY_AFTER_S = { database_unavailable: 5, temporarily_unavailable: 1, overloaded: 5 } as const;

const MESSAGES = {
  database_unavailable: "Our database is not answering just now; please try again in a few seconds. Seats you hold stay held until their time runs out.",
  temporarily_unavailable: "That did not get through just now; please try again.",
  overloaded: "This sale is very busy just now; please try again in a few seconds.",
} as const;

function answer(code: Unavailable["code"], cause: Error): Unavailable {
  return { code, message: MESSAGES[code], retryAfterS: RETRY_AFTER_S[code], cause };
}

/**
 * Whether `error` is such a failure, at any depth of its causes (drizzle wraps
 * the driver's error); what to answer, or undefined for any other error.
 */
export function unavailable(error: unknown): Unavailable | undefined {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    const flags = cause as Error & ObjectErrorFlags;
    if (flags.overloaded === true) return answer("overloaded", cause);
    if (flags.retryable === true || flags.durableObjectReset === true) return answer("temporarily_unavailable", cause);
    const code = "code" in cause ? String(cause.code) : "";
    if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_MESSAGE.test(cause.message) || UNAVAILABLE_MESSAGE.test(code)) return answer("database_unavailable", cause);
  }
  return undefined;
}
