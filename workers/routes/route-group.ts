/** A group of routes: an OpenAPIHono with our request context and our answer to invalid input. */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import { invalidRequest } from "../../core/errors";
import type { AppEnv } from "../app-env";

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
