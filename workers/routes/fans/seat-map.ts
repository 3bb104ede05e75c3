/**
 * What the seat map page draws and keeps current: the venue layout (static),
 * the availability bitmap (polled, cached 1-2 s) and, for calm events, the
 * live seat feed (a WebSocket to the event's `SeatMapFeed`).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError, conflict } from "../../../core/errors";
import { eventRouting } from "../../events/routing";
import { seatLayout, seatLayoutSchema } from "../../events/seat-layout";
import { toBase64 } from "../../holds/http-mapping";
import { inventoryForEvent } from "../../holds/pick-inventory";
import { workContext } from "../../app-env";
import { errorResponses, errorSchema, idParam, jsonResponse } from "../openapi";
import { fromEdgeCache } from "../edge-cache";
import { routeGroup } from "../route-group";

/** A venue's chart never changes once imported, so its layout may sit in the edge cache for minutes. */
const SEAT_LAYOUT_CACHE = "public, max-age=300";
/** Availability may be 1-2 s stale: the seat map polls it and the edge absorbs the polls. */
const AVAILABILITY_CACHE = "public, max-age=1, s-maxage=2";

export const seatMap = routeGroup();

seatMap.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/seats",
    summary: "The seat map's layout: sections, rows and the seat indexes of each row",
    description:
      "Static per event (cacheable for 5 minutes). Combine with the availability bitmap: seat `firstSeat + k` of a row is its k-th seat from the left, " +
      "labelled `seatLabels[k]` when given, else `k + 1`. General-admission sections have no rows.",
    request: { params: idParam },
    responses: { 200: jsonResponse(seatLayoutSchema, "The layout."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    return fromEdgeCache(c, "seat-layout", `/api/events/${id}/seats`, async () =>
      c.json(await seatLayout(c.var.db, id), 200, { "Cache-Control": SEAT_LAYOUT_CACHE }),
    );
  },
);

const availabilitySchema = z
  .object({
    eventId: z.uuid(),
    seatCount: z.number(),
    generatedAt: z.string(),
    sections: z.array(
      z.object({
        sectionId: z.string(),
        label: z.string(),
        kind: z.enum(["seated", "general_admission"]),
        priceTier: z.string().nullable(),
        capacity: z.number(),
        available: z.number(),
      }),
    ),
    bitmap: z.string().openapi({ description: "Base64; seat i is available when bit (7 - i % 8) of byte floor(i / 8) is 1." }),
  })
  .openapi("Availability");

seatMap.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/availability",
    summary: "Per-section counts and a seat bitmap (1 bit per seat)",
    request: { params: idParam },
    responses: { 200: jsonResponse(availabilitySchema, "Availability, cacheable for 1-2 s."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    return fromEdgeCache(c, "availability", `/api/events/${id}/availability`, async () => {
      const availability = await (await inventoryForEvent(workContext(c), id)).availability();
      return c.json(
        { ...availability, generatedAt: new Date(availability.generatedAt).toISOString(), bitmap: toBase64(availability.bitmap) },
        200,
        { "Cache-Control": AVAILABILITY_CACHE },
      );
    });
  },
);

seatMap.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/seat-feed",
    summary: "Live seat changes of a calm event (WebSocket)",
    description:
      'Send `Upgrade: websocket`. The first message is `{"type":"hello","at":ms,"recent":[[seatIndex,0|1],...]}`: fetch the availability bitmap, ' +
      'overlay `recent`, then apply each `{"type":"seats","changes":[[seatIndex,0|1],...],"at":ms}` (1 = available), at most about 10 a second. ' +
      'Send "ping" to get "pong". Hot events have no feed: poll availability.',
    request: { params: idParam },
    responses: {
      101: { description: "Switching to the WebSocket." },
      ...errorResponses(400, 404, 409),
      426: jsonResponse(errorSchema, "Not a WebSocket upgrade."),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      c.header("Upgrade", "websocket");
      throw new ApiError(426, "upgrade_required", "The seat feed is a WebSocket: send `Upgrade: websocket`.");
    }
    const routing = await eventRouting(c.var.db, id);
    if (routing.demandClass !== "calm") throw conflict("no_seat_feed", "This event has no live seat feed; poll its availability instead.");
    return c.env.SEAT_MAP_FEED.getByName(id).fetch(c.req.raw);
  },
);
