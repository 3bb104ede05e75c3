/** The hono app: the middleware every request passes, one route group per audience, and the mapping of errors to JSON. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, ConfigError, type ErrorBody, invalidRequest } from "../core/errors";
import { log as rootLogger } from "../core/logger";
import { database } from "./middleware/database";
import { unavailable } from "./platform/unavailable";
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
  const outage = unavailable(error);
  if (outage) {
    log.warn(outage.code, { path: c.req.path, cause: outage.cause.message.slice(0, 200), error: String(error).slice(0, 200) });
    c.header("Retry-After", String(outage.retryAfterS));
    return errorResponse(c, 503, { error: { code: outage.code, message: outage.message } });
  }
  if (error instanceof ConfigError) {
    log.error("misconfigured", { missing: error.missing });
    return errorResponse(c, 500, { error: { code: "misconfigured", message: error.message } });
  }
  log.error("unhandled", { path: c.req.path, error: String(error) });
  return errorResponse(c, 500, { error: { code: "internal_error", message: "Something went wrong on our side; please retry." } });
});
