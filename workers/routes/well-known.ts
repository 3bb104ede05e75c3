/** For anyone verifying our tokens offline (door scanners, partners): the public keys of tickets and admission tokens, mounted at /.well-known. */
import { publicJwks } from "../platform/signed-tokens";
import { routeGroup } from "./route-group";

export const wellKnown = routeGroup();

wellKnown.get("/jwks.json", async (c) => {
  c.header("Cache-Control", "public, max-age=300");
  return c.json(await publicJwks(c.env.TOKEN_SIGNING_KEY));
});
