/** The fans' API, mounted at /api: one group per thing fans do, in the order of a visit. */
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

for (const group of [health, config, signIn, events, seatMap, waitingRoom, holds, payments, tickets, waitlist]) fans.route("/", group);
