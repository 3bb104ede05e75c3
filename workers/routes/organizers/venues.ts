/** The organizer's venues, imported from seating charts. */
import { z } from "@hono/zod-openapi";
import { seatingChartSchema } from "../../venues/seating-chart";
import { getVenue, importVenue, listVenues, venueSummarySchema, venueViewSchema } from "../../venues/venues";
import { errorResponses, idParam, jsonBody, jsonResponse, organizerRoute } from "../openapi";
import { auditedChange } from "../../organizers/audit-log";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const venues = routeGroup();

venues.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/venues",
    summary: "Create a venue from a seating chart",
    request: { body: jsonBody(seatingChartSchema) },
    responses: { 201: jsonResponse(venueViewSchema, "The venue."), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const venue = await auditedChange(c.var.db, auditActor(c), async (tx) => {
      const result = await importVenue(tx, c.var.organizer.id, c.req.valid("json"));
      return { result, audit: { targetId: result.id, before: null, after: result } };
    });
    return c.json(venue, 201);
  },
);

venues.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/venues",
    summary: "List your venues",
    responses: { 200: jsonResponse(z.object({ venues: z.array(venueSummarySchema) }), "The venues."), ...errorResponses(401) },
  }),
  async (c) => c.json({ venues: await listVenues(c.var.db, c.var.organizer.id) }, 200),
);

venues.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/venues/{id}",
    summary: "One venue with its sections and rows",
    request: { params: idParam },
    responses: { 200: jsonResponse(venueViewSchema, "The venue."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json(await getVenue(c.var.db, c.var.organizer.id, c.req.valid("param").id), 200),
);
