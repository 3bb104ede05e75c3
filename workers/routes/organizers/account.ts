/** The organizer's own account: who a key belongs to, and the API keys (create, list, revoke). */
import { z } from "@hono/zod-openapi";
import { forbidden, invalidRequest } from "../../../core/errors";
import { createApiKey, getApiKey, listApiKeys, revokeApiKey } from "../../organizers/api-keys";
import { auditedChange } from "../../organizers/audit-log";
import { API_KEY_SCOPES } from "../../organizers/scopes";
import { errorResponses, jsonBody, jsonResponse, organizerRoute, pathId } from "../openapi";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const account = routeGroup();

const apiKeySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    scope: z.enum(API_KEY_SCOPES),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi("ApiKey");

const keyIdParam = z.object({ keyId: pathId("keyId") });

account.openapi(
  organizerRoute("readOrDoor", {
    method: "get",
    path: "/me",
    summary: "The organizer this key belongs to, and the key",
    responses: {
      200: jsonResponse(z.object({ id: z.uuid(), name: z.string(), apiKey: z.object({ id: z.uuid(), name: z.string(), scope: z.enum(API_KEY_SCOPES) }) }), "The organizer."),
    },
  }),
  (c) => c.json({ ...c.var.organizer, apiKey: c.var.apiKey }, 200),
);

account.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/api-keys",
    summary: "Create an API key (its secret is shown once)",
    description: "Scopes: `admin` (everything), `read` (every GET), `check_in` (the door: check-in and the event reads it needs). Only an admin key can create keys.",
    request: {
      body: jsonBody(
        z.strictObject({
          name: z.string().trim().min(1).max(80),
          scope: z.enum(API_KEY_SCOPES),
          expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "After this the key is refused (401); it must be in the future." }),
        }),
      ),
    },
    responses: { 201: jsonResponse(apiKeySchema.extend({ apiKey: z.string().openapi({ description: "The secret: shown this once, never stored." }) }), "The new key."), ...errorResponses(400) },
  }),
  async (c) => {
    const { name, scope, expiresAt } = c.req.valid("json");
    const expiry = expiresAt === undefined ? undefined : new Date(expiresAt);
    if (expiry !== undefined && expiry.getTime() <= Date.now()) throw invalidExpiry();
    const created = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await createApiKey(tx, c.var.organizer.id, { name, scope, expiresAt: expiry });
      return { result, audit: { targetId: result.key.id, before: null, after: result.key } };
    });
    return c.json({ ...created.key, apiKey: created.apiKey }, 201);
  },
);

account.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/api-keys",
    summary: "List your API keys (never their secrets)",
    responses: { 200: jsonResponse(z.object({ keys: z.array(apiKeySchema) }), "The keys, oldest first, revoked and expired ones included.") },
  }),
  async (c) => c.json({ keys: await listApiKeys(c.var.db, c.var.organizer.id) }, 200),
);

account.openapi(
  organizerRoute("any", {
    method: "post",
    path: "/api-keys/{keyId}/revoke",
    summary: "Revoke an API key",
    description: "An admin key can revoke any of your keys; any key can revoke itself. From now on the key gets 401. Revoking again changes nothing.",
    request: { params: keyIdParam },
    responses: { 200: jsonResponse(apiKeySchema, "The revoked key."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { keyId } = c.req.valid("param");
    if (c.var.apiKey.scope !== "admin" && keyId !== c.var.apiKey.id) throw forbidden("Only an admin key can revoke another key; a key may revoke itself.");
    const revoked = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const before = await getApiKey(tx, c.var.organizer.id, keyId);
      const after = await revokeApiKey(tx, c.var.organizer.id, keyId);
      return { result: after, audit: { targetId: keyId, before, after } };
    });
    return c.json(revoked, 200);
  },
);

function invalidExpiry() {
  return invalidRequest("expiresAt must be in the future.", [{ path: "expiresAt", message: "must be in the future" }]);
}
