/** Public keys for verifying our tokens offline (tickets, admission tokens). Mounted at /.well-known. */
import { routeGroup } from "../app";
import { publicJwks } from "../tokens";

export const wellKnown = routeGroup();

wellKnown.get("/jwks.json", async (c) => {
  c.header("Cache-Control", "public, max-age=300");
  return c.json(await publicJwks(c.env.TOKEN_SIGNING_KEY));
});
