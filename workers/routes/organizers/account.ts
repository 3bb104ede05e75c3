/** The organizer's own account: who a key belongs to, more API keys. */
import { createRoute, z } from "@hono/zod-openapi";
import { addApiKey } from "../../organizers/api-keys";
import { errorResponses, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const account = routeGroup();

account.openapi(
  createRoute({
    method: "get",
    path: "/me",
    summary: "The organizer this key belongs to",
    responses: { 200: jsonResponse(z.object({ id: z.uuid(), name: z.string() }), "The organizer."), ...errorResponses(401) },
  }),
  (c) => c.json(c.var.organizer, 200),
);

account.openapi(
  createRoute({
    method: "post",
    path: "/api-keys",
    summary: "Create another API key (shown once)",
    request: { body: jsonBody(z.strictObject({ label: z.string().trim().min(1).max(80) })) },
    responses: { 201: jsonResponse(z.object({ id: z.uuid(), apiKey: z.string() }), "The new key."), ...errorResponses(400, 401) },
  }),
  async (c) => c.json(await addApiKey(c.var.db, c.var.organizer.id, c.req.valid("json").label), 201),
);
