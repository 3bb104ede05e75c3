/** The audit log's side of the admin routes: who is calling (for each write's row), and reading the log back. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AuditActor, listAuditLog, MAX_AUDIT_PAGE } from "../../organizers/audit-log";
import type { AppEnv } from "../../app-env";
import { errorResponses, jsonResponse, organizerRoute } from "../openapi";
import { routeGroup } from "../route-group";

/** The caller of an admin route, as its audit row names it. */
export function auditActor(c: Context<AppEnv>): AuditActor {
  return { organizerId: c.var.organizer.id, apiKey: { id: c.var.apiKey.id, name: c.var.apiKey.name }, operation: c.var.operation };
}

export const auditLog = routeGroup();

const auditEntrySchema = z
  .object({
    id: z.number(),
    apiKey: z.object({ id: z.uuid(), name: z.string() }).openapi({ description: "The key that made the change, with its name at the time." }),
    action: z.string().openapi({ description: "The route, as this document names it.", example: "PATCH /events/{id}" }),
    targetId: z.string().nullable(),
    eventId: z.uuid().nullable(),
    before: z.unknown().openapi({ description: "The target before the change (null when it was created); secrets are redacted." }),
    after: z.unknown().openapi({ description: "The target after the change; secrets are redacted." }),
    createdAt: z.string(),
  })
  .openapi("AuditEntry");

auditLog.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/audit-log",
    summary: "The audit log: every write through this API, newest first",
    request: {
      query: z.object({
        eventId: z.uuid().optional(),
        apiKeyId: z.uuid().optional(),
        since: z.iso.datetime({ offset: true }).optional().openapi({ description: "Only entries at or after this time." }),
        limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(50),
        cursor: z.string().regex(/^\d{1,18}$/).optional().openapi({ description: "The previous page's nextCursor." }),
      }),
    },
    responses: { 200: jsonResponse(z.object({ entries: z.array(auditEntrySchema), nextCursor: z.string().nullable() }), "One page of entries."), ...errorResponses(400) },
  }),
  async (c) => {
    const query = c.req.valid("query");
    const page = await listAuditLog(c.var.db, c.var.organizer.id, {
      eventId: query.eventId,
      apiKeyId: query.apiKeyId,
      since: query.since === undefined ? undefined : new Date(query.since),
      limit: query.limit,
      cursor: query.cursor === undefined ? undefined : Number(query.cursor),
    });
    return c.json(page, 200);
  },
);
