/**
 * The fans' side of the waiting room (hot events): register interest before
 * the sale, join the lobby, poll the published queue state, exchange the
 * lobby ticket for an admission token.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Db } from "../../../core/db/client";
import { ApiError } from "../../../core/errors";
import { blockOf } from "../../../core/waiting-room/queue-state";
import { eventRouting, forgetRouting, type EventRouting } from "../../events/routing";
import { hotDemandRatio, preRegister } from "../../events/pre-registration";
import { requireFan } from "../../middleware/require-fan";
import { flaggedCheckAllowed, limitWaitingRoomStep } from "../../waiting-room/bot-defense";
import { joinLobby, lobbyShardOf } from "../../waiting-room/lobby";
import { QUEUE_DOCUMENT_SECONDS, readQueueState } from "../../waiting-room/queue-state";
import { lobbyOrderKey, signAdmissionToken, signLobbyTicket } from "../../waiting-room/tokens";
import { errorResponses, fanRoute, idParam, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const waitingRoom = routeGroup();

/** The routing of a hot event whose lobby may open: 409 for calm or cancelled events, 404 for unknown ones. */
async function hotEvent(db: Db, eventId: string): Promise<EventRouting> {
  const routing = await eventRouting(db, eventId);
  if (routing.demandClass !== "hot") throw new ApiError(409, "no_waiting_room", "This event has no waiting room: book directly.");
  if (routing.status === "cancelled") throw new ApiError(409, "event_cancelled", "This event was cancelled; its lobby is closed.");
  return routing;
}

waitingRoom.use("/events/:id/lobby", requireFan());
waitingRoom.use("/events/:id/admission", requireFan());

const lobbySchema = z
  .object({
    ticket: z.string().openapi({ description: "Signed lobby ticket carrying your random order key; keep it to exchange for admission." }),
    orderKey: z.number(),
    block: z.enum(["lobby", "late", "flagged"]),
    joinedAt: z.string(),
    rejoined: z.boolean(),
  })
  .openapi("LobbyTicket");

waitingRoom.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/lobby",
    summary: "Join the lobby of a hot event (once per account; joining again returns the same ticket)",
    request: {
      params: idParam,
      body: jsonBody(
        z.strictObject({
          turnstileToken: z.string().min(1).max(2048),
          deviceId: z.string().min(8).max(128).regex(/^[A-Za-z0-9_-]+$/).optional().openapi({ description: "A hash of the client's fingerprint." }),
        }),
      ),
    },
    responses: { 200: jsonResponse(lobbySchema, "Your place in line."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const routing = await hotEvent(c.var.db, id);
    const { accountId } = c.var.fan;
    const joined = await joinLobby(c, routing, { accountId, turnstileToken: body.turnstileToken, deviceId: body.deviceId });
    const ticket = await signLobbyTicket(c.env.TOKEN_SIGNING_KEY, { accountId, eventId: id, orderKey: joined.orderKey, saleEndsAt: joined.saleEndsAt });
    return c.json({ ticket, orderKey: joined.orderKey, block: joined.block, joinedAt: new Date(joined.joinedAt).toISOString(), rejoined: joined.rejoined }, 200);
  },
);

const queueStateSchema = z
  .object({
    eventId: z.string(),
    threshold: z.number(),
    admitted: z.number(),
    entrants: z.object({ lobby: z.number(), late: z.number(), flagged: z.number() }),
    quantiles: z.array(z.number()).openapi({ description: "Lobby-block keys at evenly spaced ranks (every key while there are fewer than 64): place your key among them." }),
    lateQuantiles: z.array(z.number()).openapi({ description: "The same for keys of fans who joined after the sale started." }),
    flaggedQuantiles: z.array(z.number()).openapi({ description: "The same for keys of accounts queued behind everyone." }),
    ratePerSecond: z.number(),
    paused: z.boolean(),
    soldOut: z.boolean().openapi({
      description:
        "No place is free for the line right now: every place is sold or held, or places that came back are being offered to the waitlist first. " +
        "Not final: it turns false and the threshold moves on when places come back, until the sale ends (updatedAt >= saleEndsAt: nobody more is admitted).",
    }),
    available: z.number(),
    held: z.number(),
    saleStartsAt: z.number(),
    saleEndsAt: z.number(),
    updatedAt: z.number(),
  })
  .openapi("QueueState");

waitingRoom.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/queue",
    summary: "The published queue state (poll it; compute your position from your ticket's order key)",
    request: { params: idParam },
    responses: { 200: jsonResponse(queueStateSchema, "Cached for 1 s in each data centre."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const state = await readQueueState(c, id);
    if (!state) throw new ApiError(404, "queue_not_open", "This event's queue is not open (yet).");
    c.header("Cache-Control", `public, max-age=${QUEUE_DOCUMENT_SECONDS}, s-maxage=${QUEUE_DOCUMENT_SECONDS}`);
    return c.json(state, 200);
  },
);

waitingRoom.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/admission",
    summary: "Exchange your lobby ticket for an admission token once your order key is admitted",
    request: { params: idParam, body: jsonBody(z.strictObject({ ticket: z.string().min(1).max(4096) })) },
    responses: {
      200: jsonResponse(z.object({ token: z.string(), expiresAt: z.string() }).openapi("Admission"), "Book with this token for 15 minutes."),
      ...errorResponses(400, 401, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { accountId } = c.var.fan;
    await limitWaitingRoomStep(c, "admission", id, accountId);
    let key: number;
    try {
      key = await lobbyOrderKey(c.env.TOKEN_SIGNING_KEY, c.req.valid("json").ticket, { accountId, eventId: id });
    } catch {
      throw new ApiError(401, "invalid_ticket", "That lobby ticket is invalid, expired, or not yours for this event.");
    }
    // Most fans ask too early: the published state answers them without the room. Not a ticket from the flagged block: the
    // organizer may have cleared its account since, which then waits (and is admitted) under another key that only its
    // shard knows. Those asks reach the shard 3 times a minute per account at most (a farm of flagged accounts calling
    // directly included); beyond that the document answers them too.
    const state = await readQueueState(c, id);
    const early = !!state && !state.soldOut && key > state.threshold;
    if (early && (blockOf(key) !== "flagged" || !(await flaggedCheckAllowed(c, id, accountId)))) {
      throw new ApiError(409, "not_admitted_yet", "Not your turn yet; keep watching the queue.");
    }
    const exchange = await (await lobbyShardOf(c.env, id, accountId)).stub.exchange(accountId, key);
    if (!exchange.ok) {
      const messages = {
        not_admitted_yet: "Not your turn yet; keep watching the queue.",
        not_in_lobby: "That ticket is no longer in this queue.",
        sold_out: "Sold out right now. Seats may come back: keep your place in line; the waitlist is offered returned seats first.",
      } as const;
      throw new ApiError(409, exchange.reason, messages[exchange.reason]);
    }
    const token = await signAdmissionToken(c.env.ADMISSION_TOKEN_KEY, { accountId, eventId: id, admissionId: exchange.admissionId, expiresAt: exchange.expiresAt });
    return c.json({ token, expiresAt: new Date(exchange.expiresAt).toISOString() }, 200);
  },
);

waitingRoom.use("/events/:id/pre-registration", requireFan());

waitingRoom.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/pre-registration",
    summary: "Register interest before the sale (the demand signal that can make an event hot)",
    request: { params: idParam },
    responses: {
      200: jsonResponse(z.object({ registrations: z.number(), expectedDemand: z.number(), demandClass: z.enum(["calm", "hot"]) }), "Registered (again is fine)."),
      ...errorResponses(400, 401, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const result = await preRegister(c.var.db, { eventId: id, accountId: c.var.fan.accountId, ratio: hotDemandRatio(c.env) });
    await forgetRouting(id);
    return c.json(result, 200);
  },
);
