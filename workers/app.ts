/** The hono app: shared middleware, error mapping, and the mounted route groups. */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { loadConfig, type Config } from "../core/config";
import { createDb, type Db } from "../core/db/client";
import { ApiError, ConfigError, type ErrorBody, invalidRequest } from "../core/errors";
import type { FanIdentity } from "./fan-auth";
import { log } from "../core/logger";

/** Hono's environment for every route. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    config: Config;
    db: Db;
    organizer: { id: string; name: string };
    fan: FanIdentity;
  };
}

/** Turns a failed zod validation into our 400 shape, with per-field details. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) {
    const details = result.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
    const first = details[0];
    throw invalidRequest(first ? `Invalid ${first.path || "request"}: ${first.message}` : "Invalid request.", details);
  }
};

/** A route group with our validation hook. */
export function routeGroup(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

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

/** Builds the Worker's hono app with the given route groups mounted. */
export function createApp(mount: (app: OpenAPIHono<AppEnv>) => void): OpenAPIHono<AppEnv> {
  const app = routeGroup();

  app.use("*", async (c, next) => {
    const config = loadConfig(c.env);
    // Opened on first use: most requests on the hot path (holds of a hot event, cached reads) never touch Postgres.
    let opened: ReturnType<typeof createDb> | undefined;
    const db = new Proxy({} as Db, {
      get(_target, property) {
        opened ??= createDb(config);
        const value: unknown = Reflect.get(opened.db, property, opened.db);
        return typeof value === "function" ? value.bind(opened.db) : value;
      },
    });
    c.set("config", config);
    c.set("db", db);
    try {
      await next();
    } finally {
      if (opened) c.executionCtx.waitUntil(opened.close().catch(() => undefined));
    }
  });

  mount(app);

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
    if (error instanceof ConfigError) {
      log.error("misconfigured", { missing: error.missing });
      return errorResponse(c, 500, { error: { code: "misconfigured", message: error.message } });
    }
    log.error("unhandled", { path: c.req.path, error: String(error) });
    return errorResponse(c, 500, { error: { code: "internal_error", message: "Something went wrong on our side; please retry." } });
  });

  return app;
}
