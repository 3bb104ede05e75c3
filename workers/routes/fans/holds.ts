/**
 * Holding seats: named seats or the best available places, your holds, and
 * releasing one. Where the hold is made depends on the event's demand class
 * (holds/pick-inventory.ts); hot events take the waiting room's admission token.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ATTEMPT_INTERVAL_MS, FAILURE_MESSAGES, MAX_BEST_AVAILABLE, MAX_SEATS_PER_HOLD, type HoldRequest } from "../../../core/holds/contract";
import { ApiError } from "../../../core/errors";
import { workContext, type AppEnv } from "../../app-env";
import { eventRouting, type EventRouting } from "../../events/routing";
import { holdJson, holdOrThrow, holdSchema } from "../../holds/http-mapping";
import { inventoryFor, inventoryForEvent } from "../../holds/pick-inventory";
import { requireFan } from "../../middleware/require-fan";
import { errorResponses, fanRoute, holdParams, idParam, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const holds = routeGroup();

// Exactly the paths below: hono's `/holds/*` also matches `/holds` itself and the payment routes
// (which check the fan themselves), so with it the check ran twice on those requests.
holds.use("/events/:id/holds", requireFan());
holds.use("/events/:id/holds/:holdId", requireFan());

const requestId = z
  .string()
  .min(8)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/)
  .openapi({ description: "Unique per attempt; a retry with the same id gets the first result.", example: "b7f0c1d2-hold-1" });

const holdResponses = {
  201: jsonResponse(z.object({ hold: holdSchema }), "The hold: pay before expiresAt."),
  ...errorResponses(400, 401, 404, 409),
  429: jsonResponse(z.object({ error: z.object({ code: z.string(), message: z.string() }) }), "One attempt per 5 s."),
};

/** Holding seats of a hot event takes an admission token for that event (the waiting room's). */
function assertMayHold(c: Context<AppEnv>, routing: EventRouting): void {
  const admittedTo = c.var.fan.admittedEventId;
  if (routing.demandClass === "hot" && admittedTo !== routing.eventId) {
    throw new ApiError(403, "admission_required", "This sale runs through its waiting room: hold seats with the admission token you get when your turn comes.");
  }
  if (routing.demandClass === "calm" && admittedTo !== undefined && admittedTo !== routing.eventId) {
    throw new ApiError(403, "wrong_event", "That admission token is for another event.");
  }
}

/** Makes a hold as the fan (one routing lookup for the whole request) and answers 201, or the refusal. */
async function hold(c: Context<AppEnv>, eventId: string, request: HoldRequest) {
  const routing = await eventRouting(c.var.db, eventId);
  assertMayHold(c, routing);
  const result = await (await inventoryFor(workContext(c), routing)).hold(request);
  if (!result.ok && result.reason === "too_fast") c.header("Retry-After", String(ATTEMPT_INTERVAL_MS / 1000));
  return c.json({ hold: holdJson(holdOrThrow(result)) }, 201);
}

holds.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/holds",
    summary: "Hold specific seats (all or nothing)",
    request: {
      params: idParam,
      body: jsonBody(z.strictObject({ requestId, seats: z.array(z.number().int().min(0).max(2_147_483_647)).min(1).max(MAX_SEATS_PER_HOLD) })),
    },
    responses: holdResponses,
  }),
  async (c) => {
    const body = c.req.valid("json");
    const { accountId, attemptKey } = c.var.fan;
    return hold(c, c.req.valid("param").id, { kind: "seats", accountId, attemptKey, requestId: body.requestId, seatIndexes: body.seats });
  },
);

holds.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/holds/best",
    summary: "Hold the best available places in a price tier or section",
    request: {
      params: idParam,
      body: jsonBody(
        z.strictObject({
          requestId,
          quantity: z.number().int().min(1).max(MAX_BEST_AVAILABLE),
          priceTier: z.string().min(1).max(40).optional(),
          sectionId: z.uuid().optional(),
          allowSplit: z.boolean().default(false),
        }),
      ),
    },
    responses: holdResponses,
  }),
  async (c) => {
    const body = c.req.valid("json");
    const { accountId, attemptKey } = c.var.fan;
    return hold(c, c.req.valid("param").id, {
      kind: "best",
      accountId,
      attemptKey,
      requestId: body.requestId,
      quantity: body.quantity,
      priceTier: body.priceTier,
      sectionId: body.sectionId,
      allowSplit: body.allowSplit,
    });
  },
);

holds.openapi(
  fanRoute({
    method: "get",
    path: "/events/{id}/holds",
    summary: "Your holds at this event",
    request: { params: idParam },
    responses: { 200: jsonResponse(z.object({ holds: z.array(holdSchema) }), "Your holds, newest first."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const yours = await (await inventoryForEvent(workContext(c), c.req.valid("param").id)).accountHolds(c.var.fan.accountId);
    return c.json({ holds: yours.map(holdJson) }, 200);
  },
);

holds.openapi(
  fanRoute({
    method: "get",
    path: "/events/{id}/holds/{holdId}",
    summary: "One of your holds",
    request: { params: holdParams },
    responses: { 200: jsonResponse(z.object({ hold: holdSchema }), "The hold."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id, holdId } = c.req.valid("param");
    const found = await (await inventoryForEvent(workContext(c), id)).getHold(holdId, c.var.fan.accountId);
    if (!found) throw new ApiError(404, "hold_not_found", FAILURE_MESSAGES.hold_not_found);
    return c.json({ hold: holdJson(found) }, 200);
  },
);

holds.openapi(
  fanRoute({
    method: "delete",
    path: "/events/{id}/holds/{holdId}",
    summary: "Release one of your holds",
    request: { params: holdParams },
    responses: { 200: jsonResponse(z.object({ hold: holdSchema }), "The released hold."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id, holdId } = c.req.valid("param");
    const result = await (await inventoryForEvent(workContext(c), id)).release({ accountId: c.var.fan.accountId, requestId: crypto.randomUUID(), holdId });
    return c.json({ hold: holdJson(holdOrThrow(result)) }, 200);
  },
);
