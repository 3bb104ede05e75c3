import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * How the message of an error starts when Postgres could not be reached or did
 * not answer in time. A Durable Object's errors reach the Worker with their
 * message only, so the Worker (app.onError) knows such a failure by it and
 * answers 503 `database_unavailable` instead of 500.
 */
export const POSTGRES_UNREACHABLE = "Postgres unreachable";

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/**
 * An expected failure with an HTTP status and a machine-readable code; thrown
 * anywhere, turned into `{ error: { code, message } }` by `app.onError`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** 400: the request is malformed or fails validation. */
export const invalidRequest = (message: string, details?: unknown) => new ApiError(400, "invalid_request", message, details);
/** 401: no credentials, or credentials we do not accept. */
export const unauthorized = (message = "A valid API key is required: send `Authorization: Bearer <key>`.") =>
  new ApiError(401, "unauthorized", message);
/** 403: a valid credential that does not allow this. */
export const forbidden = (message: string) => new ApiError(403, "forbidden", message);
/** 404: absent, or belongs to someone else (never say which). */
export const notFound = (what: string) => new ApiError(404, "not_found", `${what} was not found.`);
/** 409: the request conflicts with the current state. */
export const conflict = (code: string, message: string) => new ApiError(409, code, message);

/** Raised when required configuration is missing or unusable; names it. */
export class ConfigError extends Error {
  constructor(
    readonly missing: string[],
    message = `Missing configuration: ${missing.join(", ")}. Set it in .dev.vars locally or with \`wrangler secret put\` in production.`,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}
