/** Shared OpenAPI pieces of route definitions: the error shape, response and body helpers, path parameters. */
import { createRoute, z } from "@hono/zod-openapi";
import type { ZodType } from "zod";

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

/** `{id}`: the id of the event (or venue) the path names. */
export const idParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

/** `{id}` and `{holdId}`: one hold of an event. */
export const holdParams = idParam.extend({ holdId: z.uuid().openapi({ param: { name: "holdId", in: "path" } }) });

/** A route for signed-in fans: `createRoute` with the fan session as its security requirement. */
export function fanRoute<R extends Parameters<typeof createRoute>[0]>(route: R) {
  return createRoute({ ...route, security: [{ fanSession: [] }] });
}
