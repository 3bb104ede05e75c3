/**
 * The fans' API, mounted at /api: one group per thing fans do, in the order
 * of a visit. Its OpenAPI document (/api/openapi.json) and docs (/api/docs)
 * are public, for a native app's developers as much as for ours.
 */
import { DOCUMENT_POLICY } from "../../middleware/security-headers";
import { docsPage } from "../docs-page";
import { routeGroup } from "../route-group";
import { config } from "./config";
import { events } from "./events";
import { health } from "./health";
import { holds } from "./holds";
import { payments } from "./payments";
import { seatMap } from "./seat-map";
import { signIn } from "./sign-in";
import { tickets } from "./tickets";
import { waitingRoom } from "./waiting-room";
import { waitlist } from "./waitlist";

export const fans = routeGroup();

fans.openAPIRegistry.registerComponent("securitySchemes", "fanSession", {
  type: "http",
  scheme: "bearer",
  bearerFormat: "JWT",
  description: "A fan session (from POST /auth/session), or on a hot event's holds and payments the admission token the waiting room issued (POST /events/{id}/admission).",
});

fans.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "Edge Tickets fan API",
    version: "1.0.0",
    description:
      "What fans do, in the order of a visit: sign in by emailed code, find events, join a hot event's lobby and line, hold seats (seat map or best available), pay, see tickets, join a waitlist. Errors are JSON `{ error: { code, message } }`; a 4xx changes nothing. Any route that reads the database may answer 503 `database_unavailable` with Retry-After while the database does not answer; try again then.",
  },
  servers: [{ url: "/api" }],
});
fans.get("/docs", (c) => c.html(docsPage({ title: "Edge Tickets fan API", specUrl: "/api/openapi.json" }), 200, { "Content-Security-Policy": DOCUMENT_POLICY }));

for (const group of [health, config, signIn, events, seatMap, waitingRoom, holds, payments, tickets, waitlist]) fans.route("/", group);
