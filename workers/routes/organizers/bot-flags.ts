/**
 * Accounts flagged in a hot event's lobby, and the organizer's decision on
 * each: clear (a normal fan from now on) or confirm (kept out).
 */
import { z } from "@hono/zod-openapi";
import { notFound } from "../../../core/errors";
import { getEvent } from "../../events/events";
import { auditedChange } from "../../organizers/audit-log";
import { botFlagDecision, listBotFlags, recordBotFlagDecision } from "../../waiting-room/bot-flags";
import { lobbyShardOf } from "../../waiting-room/lobby";
import { errorResponses, idParam, jsonBody, jsonResponse, organizerRoute, pathId } from "../openapi";
import { routeGroup } from "../route-group";
import { auditActor } from "./audit";

export const botFlagRoutes = routeGroup();

const decisionSchema = z.enum(["clear", "confirm"]);

botFlagRoutes.openapi(
  organizerRoute("read", {
    method: "get",
    path: "/events/{id}/bot-flags",
    summary: "Accounts flagged in this event's lobby, and the decision on each",
    request: { params: idParam },
    responses: {
      200: jsonResponse(
        z.object({
          flags: z.array(
            z.object({
              accountId: z.uuid(),
              email: z.string(),
              reason: z.string(),
              deprioritized: z.boolean(),
              detail: z.record(z.string(), z.unknown()),
              decision: decisionSchema.nullable().openapi({ description: "The organizer's decision on the account (every flag of it carries it); null until one is made." }),
              decidedAt: z.string().nullable(),
              createdAt: z.string(),
            }),
          ),
        }),
        "Flags, newest first (one per account and reason).",
      ),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    return c.json({ flags: await listBotFlags(c.var.db, id) }, 200);
  },
);

botFlagRoutes.openapi(
  organizerRoute("admin", {
    method: "post",
    path: "/events/{id}/bot-flags/{accountId}",
    summary: "Clear or confirm a flagged account",
    description: [
      "`clear`: the account is a normal fan from now on. Its penalty goes: its place in line becomes the one an unflagged fan joining when it joined would have had",
      "(a fresh uniform draw in the lobby if it joined before the sale, its own arrival time after), so it never passes a fan who arrived before it, and new bot evidence no longer moves it.",
      "A refused account (policy `refuse`) may join again and is placed like any other fan.",
      "`confirm`: the account stays behind everyone and is never admitted (an admission it already holds stays valid until it expires).",
      "Deciding the same again changes nothing; a decision can be changed later.",
    ].join(" "),
    request: {
      params: idParam.extend({ accountId: pathId("accountId") }),
      body: jsonBody(z.strictObject({ decision: decisionSchema })),
    },
    responses: {
      200: jsonResponse(
        z.object({
          accountId: z.uuid(),
          decision: decisionSchema,
          line: z.enum(["moved", "unchanged", "absent"]).openapi({ description: "What the decision did to the account's place in line (`absent`: not in line now; the decision holds when it joins)." }),
        }),
        "The decision, recorded.",
      ),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { id, accountId } = c.req.valid("param");
    const { decision } = c.req.valid("json");
    await getEvent(c.var.db, { organizerId: c.var.organizer.id, eventId: id });
    const before = await botFlagDecision(c.var.db, id, accountId);
    if (!before) throw notFound("A flag of this account at this event");
    const shard = await lobbyShardOf(c.env, id, accountId);
    // The shard first: a retry after Postgres failed finds it decided and moves nothing.
    const line = await shard.stub.decide(id, shard.index, accountId, decision);
    if (before.decision !== decision) {
      await auditedChange(c.var.db, auditActor(c), async (tx) => {
        await recordBotFlagDecision(tx, id, accountId, decision, new Date());
        return { result: null, audit: { targetId: accountId, eventId: id, before, after: { decision } } };
      });
    }
    return c.json({ accountId, decision, line }, 200);
  },
);
