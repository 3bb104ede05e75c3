/**
 * The organizers' admin API, mounted at /admin: every route needs an
 * organizer API key whose scope it accepts, and sees only that organizer's
 * data. Its OpenAPI document (/admin/openapi.json) and docs (/admin/docs) are
 * public.
 */
import { requireOrganizer } from "../../middleware/require-organizer";
import { DOCUMENT_POLICY } from "../../middleware/security-headers";
import { docsPage } from "../docs-page";
import { routeGroup } from "../route-group";
import { type ApiKeyScope, isApiKeyScope } from "../../organizers/scopes";
import { account } from "./account";
import { auditLog } from "./audit";
import { botFlagRoutes } from "./bot-flags";
import { checkIn } from "./check-in";
import { events } from "./events";
import { liveSale } from "./live-sale";
import { refunds } from "./refunds";
import { venues } from "./venues";
import { webhooks } from "./webhooks";

export const organizers = routeGroup();

organizers.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
  type: "http",
  scheme: "bearer",
  description:
    "An organizer API key (`etk_...`) with one scope: `admin` (everything), `read` (every GET) or `check_in` (the door). Each operation lists the scopes it accepts; another key gets 403, a revoked or expired one 401.",
});

organizers.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "Edge Tickets admin API",
    version: "1.0.0",
    description: "Venues, seating charts and events for organizers. Every route needs an organizer API key and sees only that organizer's data. Any route may answer 503 `database_unavailable` with Retry-After while the database does not answer; try again then.",
  },
  servers: [{ url: "/admin" }],
  security: [{ apiKey: [] }],
});
organizers.get("/docs", (c) => c.html(docsPage({ title: "Edge Tickets admin API", specUrl: "/admin/openapi.json" }), 200, { "Content-Security-Policy": DOCUMENT_POLICY }));

/**
 * The scopes each operation accepts, read from its own OpenAPI security
 * requirement (`organizerRoute`): the one place a route declares them.
 */
function scopesOfOperation(): (operation: string) => readonly ApiKeyScope[] | undefined {
  let table: Map<string, ApiKeyScope[]> | undefined;
  return (operation) => {
    table ??= new Map(
      organizers.openAPIRegistry.definitions.flatMap((definition) =>
        definition.type === "route" && definition.route.security
          ? [[`${definition.route.method.toUpperCase()} ${definition.route.path}`, definition.route.security.flatMap((requirement) => (requirement.apiKey ?? []).filter(isApiKeyScope))]]
          : [],
      ),
    );
    return table.get(operation);
  };
}

// After the public document and docs, so they answer before it runs; before every other route.
organizers.use("*", requireOrganizer(scopesOfOperation()));

// In this order in the OpenAPI document too.
for (const group of [account, venues, events, liveSale, botFlagRoutes, checkIn, refunds, webhooks, auditLog]) organizers.route("/", group);
