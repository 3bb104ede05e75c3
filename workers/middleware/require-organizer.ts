/** `requireOrganizer()`: the caller must present an organizer's API key. */
import { createMiddleware } from "hono/factory";
import { unauthorized } from "../../core/errors";
import { organizerForApiKey } from "../organizers/api-keys";
import { bearerToken } from "./bearer-token";
import type { DatabaseVariables } from "./database";

/** What `requireOrganizer` puts in the context. */
export interface OrganizerVariables {
  organizer: { id: string; name: string };
}

/**
 * Requires `Authorization: Bearer <organizer API key>` (401 otherwise); sets
 * `organizer`, whose data every admin route is scoped to. Needs `database()`
 * before it. Answers are per organizer, so none may be cached.
 */
export function requireOrganizer() {
  return createMiddleware<{ Bindings: Env; Variables: OrganizerVariables & DatabaseVariables }>(async (c, next) => {
    const apiKey = bearerToken(c.req.header("Authorization"));
    if (!apiKey) throw unauthorized();
    const organizer = await organizerForApiKey(c.var.db, apiKey);
    if (!organizer) throw unauthorized("That API key is unknown or revoked.");
    c.set("organizer", organizer);
    c.header("Cache-Control", "no-store");
    return next();
  });
}
