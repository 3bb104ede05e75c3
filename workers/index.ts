/** The Worker's entry: composes the app from its route groups and exports the Durable Objects. */
import { createApp } from "./app";
import { admin } from "./routes/admin";
import { fans } from "./routes/fans";
import { wellKnown } from "./routes/well-known";
import { waitingRoom } from "./routes/waiting-room";

export { EventInventory } from "../durable-objects/event-inventory";
export { SeatMapFeed } from "../durable-objects/seat-map-feed";
export { WaitingRoom } from "../durable-objects/waiting-room";

const app = createApp((root) => {
  root.route("/api", fans);
  root.route("/api", waitingRoom);
  root.route("/admin", admin);
  root.route("/.well-known", wellKnown);
});

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;
