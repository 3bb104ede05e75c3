/** The Worker's entry: composes the app from its route groups and exports the Durable Objects. */
import { createApp } from "./app";
import { admin } from "./routes/admin";
import { fans } from "./routes/fans";

export { EventInventory } from "../durable-objects/event-inventory";

const app = createApp((root) => {
  root.route("/api", fans);
  root.route("/admin", admin);
});

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;
