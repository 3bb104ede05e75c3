/** The hono app: the middleware every request passes, one route group per audience, and the mapping of errors to JSON. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, ConfigError, type ErrorBody, invalidRequest } from "../core/errors";
import { log as rootLogger } from "../core/logger";
import { database } from "./middleware/database";
import { requestLogger } from "./middleware/request-logger";
import { securityHeaders } from "./middleware/security-headers";
import { fans } from "./routes/fans";
import { operators } from "./routes/operators";
import { organizers } from "./routes/organizers";
import { routeGroup } from "./routes/route-group";
import { webhooks } from "./routes/webhooks";
import { wellKnown } from "./routes/well-known";

const STATUS_CODES: Record<number, string> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "too_many_requests",
};

/** Postgres error classes that mean the request, not the server, was wrong. */
function postgresClientError(error: unknown): ApiError | undefined {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : "";
  if (code === "23505") return new ApiError(409, "conflict", "That conflicts with existing data.");
  if (code === "23503") return new ApiError(409, "conflict", "That refers to something that does not exist or is still in use.");
  if (code === "23514" || code.startsWith("22")) return invalidRequest("A value is out of range or malformed.");
  return undefined;
}

/** Postgres error classes that mean the database cannot serve now: connection exceptions, shutting down or starting, out of connections. */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
/** What the driver says when Postgres does not answer in time, or the connection drops or is refused. */
const UNAVAILABLE_MESSAGE = /^(Query read timeout|Connection terminated\b)|ECONNREFUSED|ECONNRESET/;

/**
 * Whether the failure is Postgres being unreachable or stalled (see the database middleware's bounded waits), at any depth of
 * the error's causes (drizzle wraps the driver's error): the request may be retried, and nothing is wrong with it or with us.
 * Returns the cause that says so.
 */
function postgresUnavailable(error: unknown): Error | undefined {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    const code = "code" in cause ? String(cause.code) : "";
    if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_MESSAGE.test(cause.message) || UNAVAILABLE_MESSAGE.test(code)) return cause;
  }
  return undefined;
}

/** Seconds a fan's browser waits before trying again while Postgres is unavailable. */
const DATABASE_RETRY_AFTER_S = 5;

/** The platform's flags on a failed Durable Object call (developers.cloudflare.com/durable-objects/best-practices/error-handling). */
interface ObjectErrorFlags {
  overloaded?: unknown;
  retryable?: unknown;
  durableObjectReset?: unknown;
}

/**
 * Whether a Durable Object call failed for the platform's reasons, not ours: the object was reset (restarted, moved, its code
 * updated) under the call, or is overloaded (too many requests to one object). Looks through the error's causes. Returns what
 * the fan is told, or undefined.
 */
function objectUnavailable(error: unknown): { code: string; message: string; retryAfterS: number } | undefined {
  for (let cause: unknown = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    const flags = cause as Error & ObjectErrorFlags;
    // Overloaded: not to be retried at once, which would add to the overload.
    if (flags.overloaded === true) return { code: "overloaded", message: "This sale is very busy just now; please try again in a few seconds.", retryAfterS: 5 };
    if (flags.retryable === true || flags.durableObjectReset === true) {
      return { code: "temporarily_unavailable", message: "That did not get through just now; please try again.", retryAfterS: 1 };
    }
  }
  return undefined;
}

function errorResponse(c: Context, status: ContentfulStatusCode, body: ErrorBody) {
  return c.json(body, status);
}

/** The Worker's hono app. */
export const app = routeGroup();

app.use("*", requestLogger());
app.use("*", securityHeaders());
app.use("*", database());

/** One route group per audience, and where it is mounted. */
const audiences = [
  ["/api", fans],
  ["/admin", organizers],
  ["/webhooks", webhooks],
  ["/ops", operators],
  ["/.well-known", wellKnown],
] as const;
for (const [path, group] of audiences) app.route(path, group);

app.notFound((c) => errorResponse(c, 404, { error: { code: "not_found", message: `No route for ${c.req.method} ${c.req.path}.` } }));

app.onError((error, c) => {
  if (error instanceof ApiError) {
    const body: ErrorBody = { error: { code: error.code, message: error.message } };
    if (error.details !== undefined) body.error.details = error.details;
    return errorResponse(c, error.status, body);
  }
  if (error instanceof HTTPException && error.status < 500) {
    const status = error.status as ContentfulStatusCode;
    return errorResponse(c, status, { error: { code: STATUS_CODES[status] ?? "bad_request", message: error.message || "The request was not accepted." } });
  }
  const clientError = postgresClientError(error);
  if (clientError) return errorResponse(c, clientError.status, { error: { code: clientError.code, message: clientError.message } });
  // Set unless the failure came before the logger middleware ran.
  const log = c.get("log") ?? rootLogger;
  const object = objectUnavailable(error);
  if (object) {
    log.warn("object_unavailable", { path: c.req.path, code: object.code, error: String(error).slice(0, 200) });
    c.header("Retry-After", String(object.retryAfterS));
    return errorResponse(c, 503, { error: { code: object.code, message: object.message } });
  }
  const unavailable = postgresUnavailable(error);
  if (unavailable) {
    log.warn("database_unavailable", { path: c.req.path, cause: unavailable.message, error: String(error).slice(0, 200) });
    c.header("Retry-After", String(DATABASE_RETRY_AFTER_S));
    return errorResponse(c, 503, {
      error: { code: "database_unavailable", message: "Our database is not answering just now; please try again in a few seconds. Seats you hold stay held until their time runs out." },
    });
  }
  if (error instanceof ConfigError) {
    log.error("misconfigured", { missing: error.missing });
    return errorResponse(c, 500, { error: { code: "misconfigured", message: error.message } });
  }
  log.error("unhandled", { path: c.req.path, error: String(error) });
  return errorResponse(c, 500, { error: { code: "internal_error", message: "Something went wrong on our side; please retry." } });
});
