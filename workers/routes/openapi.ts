/** Shared OpenAPI pieces of route definitions: the error shape, response and body helpers, path parameters. */
import { createRoute, z } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import { ROUTE_ACCESS, type RouteAccess } from "../organizers/scopes";

/** `{ error: { code, message, details? } }`, the body of every 4xx and 5xx. */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "invalid_request" }),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .openapi("Error");

const describedErrors = {
  400: "Malformed input; nothing was changed.",
  401: "Missing or unknown API key.",
  403: "This API key's scope does not allow this route.",
  404: "Not found (or not yours).",
  409: "Conflicts with the current state.",
} as const;

/** Error responses for a route, by status. */
export function errorResponses(...statuses: (keyof typeof describedErrors)[]) {
  return Object.fromEntries(
    statuses.map((status) => [status, { description: describedErrors[status], content: { "application/json": { schema: errorSchema } } }]),
  );
}

/** A JSON response definition. */
export function jsonResponse<T extends ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A required JSON request body. */
export function jsonBody<T extends ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } };
}

/**
 * A path parameter holding an id (a uuid), in lower case only. Postgres reads
 * a uuid spelled in capitals as the same row, but Durable Objects, caches, rate
 * limits and bot signals are named by the id as written: a second spelling of
 * an event's id would open a second waiting room and a second inventory for it
 * (a second lobby entry for one account, its seats sold twice). Every id this
 * API hands out is lower case.
 */
export function pathId(name: string) {
  return z
    .uuid()
    .refine((id) => id === id.toLowerCase(), { message: "Write the id in lower case, as the API gives it." })
    .openapi({ param: { name, in: "path" } });
}

/** `{id}`: the id of the event (or venue) the path names. */
export const idParam = z.object({ id: pathId("id") });

/** `{id}` and `{holdId}`: one hold of an event. */
export const holdParams = idParam.extend({ holdId: pathId("holdId") });

/** A route for signed-in fans: `createRoute` with the fan session as its security requirement. */
export function fanRoute<R extends Parameters<typeof createRoute>[0]>(route: R) {
  return createRoute({ ...route, security: [{ fanSession: [] }] });
}

/**
 * An admin route: `createRoute` with the API key scopes it accepts as its
 * security requirement (one alternative per scope, as OpenAPI 3.1 allows).
 * `requireOrganizer` enforces what this declares, so the document and the
 * enforcement cannot differ; a route made without it accepts admin keys only.
 */
export function organizerRoute<R extends Parameters<typeof createRoute>[0]>(access: RouteAccess, route: R) {
  return createRoute({
    ...route,
    security: ROUTE_ACCESS[access].map((scope) => ({ apiKey: [scope] })),
    responses: { ...errorResponses(401, 403), ...route.responses },
  });
}
