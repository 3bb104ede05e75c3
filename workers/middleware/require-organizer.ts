/** `requireOrganizer()`: the caller must present a usable organizer API key whose scope the route accepts. */
import { createMiddleware } from "hono/factory";
import { matchedRoutes, routePath } from "hono/route";
import { forbidden, unauthorized } from "../../core/errors";
import { type ApiKeyRefusal, authenticateApiKey } from "../organizers/api-keys";
import type { ApiKeyScope } from "../organizers/scopes";
import { bearerToken } from "./bearer-token";
import type { DatabaseVariables } from "./database";

/** What `requireOrganizer` puts in the context. */
export interface OrganizerVariables {
  organizer: { id: string; name: string };
  /** The key the request came with: who did it, for the audit log. */
  apiKey: { id: string; name: string; scope: ApiKeyScope };
  /** The route being called, as its OpenAPI document names it: `PATCH /events/{id}`. */
  operation: string;
}

/** The scopes an operation (`PATCH /events/{id}`) accepts; undefined when it declares none. */
export type ScopesOfOperation = (operation: string) => readonly ApiKeyScope[] | undefined;

const REFUSALS: Record<ApiKeyRefusal, string> = {
  unknown: "That API key is unknown or revoked.",
  revoked: "That API key has been revoked.",
  expired: "That API key has expired.",
};

/**
 * Requires `Authorization: Bearer <organizer API key>`: 401 when it is
 * missing, unknown, revoked or expired; 403 when its scope is not one the
 * matched route accepts (`scopesOf`; a route that declares none accepts only
 * admin keys, so a forgotten declaration fails closed). Sets `organizer`,
 * whose data every admin route is scoped to, and `apiKey`. Needs `database()`
 * before it. Answers are per organizer, so none may be cached.
 */
export function requireOrganizer(scopesOf: ScopesOfOperation) {
  return createMiddleware<{ Bindings: Env; Variables: OrganizerVariables & DatabaseVariables }>(async (c, next) => {
    const presented = bearerToken(c.req.header("Authorization"));
    if (!presented) throw unauthorized();
    const result = await authenticateApiKey(c.var.db, presented);
    if (!result.ok) throw unauthorized(REFUSALS[result.reason]);
    const { key, organizer } = result.holder;
    // The handler that will answer: the last route hono matched (only middleware matched means a 404 follows).
    const target = matchedRoutes(c).at(-1);
    let operation = `${c.req.method} ${c.req.path}`;
    if (target && target.method !== "ALL") {
      const mountedAt = routePath(c).replace(/\/?\*$/, "");
      operation = `${target.method} ${target.path.slice(mountedAt.length).replaceAll(/:(\w+)/g, "{$1}")}`;
      const accepted = scopesOf(operation) ?? ["admin"];
      if (!accepted.includes(key.scope)) throw forbidden(`This route needs a key with scope ${accepted.join(" or ")}; this key's scope is ${key.scope}.`);
    }
    c.set("organizer", organizer);
    c.set("apiKey", key);
    c.set("operation", operation);
    c.header("Cache-Control", "no-store");
    return next();
  });
}
