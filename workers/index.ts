/** The Worker's entry: composes the app from its route groups. */
import { createApp } from "./app";
import { admin } from "./routes/admin";
import { fans } from "./routes/fans";

const app = createApp((root) => {
  root.route("/api", fans);
  root.route("/admin", admin);
});

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;
