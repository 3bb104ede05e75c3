/** The organizer's venues, imported from seating charts. */
import { createRoute, z } from "@hono/zod-openapi";
import { seatingChartSchema } from "../../venues/seating-chart";
import { getVenue, importVenue, listVenues, venueSummarySchema, venueViewSchema } from "../../venues/venues";
import { errorResponses, idParam, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const venues = routeGroup();

venues.openapi(
  createRoute({
    method: "post",
    path: "/venues",
    summary: "Create a venue from a seating chart",
    request: { body: jsonBody(seatingChartSchema) },
    responses: { 201: jsonResponse(venueViewSchema, "The venue."), ...errorResponses(400, 401) },
  }),
  async (c) => c.json(await importVenue(c.var.db, c.var.organizer.id, c.req.valid("json")), 201),
);

venues.openapi(
  createRoute({
    method: "get",
    path: "/venues",
    summary: "List your venues",
    responses: { 200: jsonResponse(z.object({ venues: z.array(venueSummarySchema) }), "The venues."), ...errorResponses(401) },
  }),
  async (c) => c.json({ venues: await listVenues(c.var.db, c.var.organizer.id) }, 200),
);

venues.openapi(
  createRoute({
    method: "get",
    path: "/venues/{id}",
    summary: "One venue with its sections and rows",
    request: { params: idParam },
    responses: { 200: jsonResponse(venueViewSchema, "The venue."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => c.json(await getVenue(c.var.db, c.var.organizer.id, c.req.valid("param").id), 200),
);
