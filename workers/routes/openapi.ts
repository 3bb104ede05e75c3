/** Shared OpenAPI pieces: the error shape and response helpers for route definitions. */
import { z } from "@hono/zod-openapi";
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
