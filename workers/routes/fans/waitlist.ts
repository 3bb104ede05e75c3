/** Fans on a sold-out event's waitlist: join, see your entry and offer, leave (waitlist/entries.ts). */
import { z } from "@hono/zod-openapi";
import { ApiError } from "../../../core/errors";
import { workContext } from "../../app-env";
import { holdJson, holdSchema } from "../../holds/http-mapping";
import { requireFan } from "../../middleware/require-fan";
import { joinWaitlist, leaveWaitlist, MAX_WAITLIST_QUANTITY, myWaitlistEntry, type WaitlistEntryView } from "../../waitlist/entries";
import { errorResponses, fanRoute, idParam, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const waitlist = routeGroup();

waitlist.use("/events/:id/waitlist", requireFan());

const entrySchema = z
  .object({
    entryId: z.uuid(),
    eventId: z.uuid(),
    quantity: z.number(),
    priceTier: z.string().nullable(),
    status: z.enum(["waiting", "offered", "fulfilled", "expired", "cancelled"]),
    position: z.number().nullable().openapi({ description: "Your place among the fans waiting (1 = next); null unless waiting." }),
    joinedAt: z.string(),
    offer: z
      .object({ hold: holdSchema, paymentPath: z.string().openapi({ description: "POST your payment method here, as for any hold." }) })
      .nullable()
      .openapi({ description: "Places held for you: pay before hold.expiresAt, or they pass to the next fan." }),
  })
  .openapi("WaitlistEntry");

function entryJson(entry: WaitlistEntryView): z.infer<typeof entrySchema> {
  return { ...entry, offer: entry.offer ? { hold: holdJson(entry.offer.hold), paymentPath: entry.offer.paymentPath } : null };
}

waitlist.openapi(
  fanRoute({
    method: "post",
    path: "/events/{id}/waitlist",
    summary: "Join a sold-out event's waitlist",
    description:
      "Only when the event (or the price tier) has fewer places on sale to you than you ask for: 409 `not_sold_out` otherwise. " +
      "At a hot event, places kept for the waitlist after a return and places promised to fans admitted before you are not on sale to you: whenever the queue document says `soldOut`, you can join. " +
      "One open entry per account (409 `already_waiting`). " +
      "When places return, the next fans in line get an offer: a hold in their name (the event's hold TTL) and an email; pay it like any hold.",
    request: {
      params: idParam,
      body: jsonBody(z.strictObject({ quantity: z.number().int().min(1).max(MAX_WAITLIST_QUANTITY), priceTier: z.string().trim().min(1).max(40).optional() })),
    },
    responses: { 201: jsonResponse(z.object({ entry: entrySchema }), "You are in line."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const entry = await joinWaitlist(workContext(c), { eventId: id, accountId: c.var.fan.accountId, quantity: body.quantity, priceTier: body.priceTier });
    return c.json({ entry: entryJson(entry) }, 201);
  },
);

/**
 * GET and DELETE answer alike: the fan's entry (`act` reads or closes it), or
 * 404 `not_waiting` with `notWaiting` when there is none.
 */
function entryRoute(method: "get" | "delete", summary: string, answer: string, act: typeof myWaitlistEntry, notWaiting: string): void {
  waitlist.openapi(
    fanRoute({
      method,
      path: "/events/{id}/waitlist",
      summary,
      request: { params: idParam },
      responses: { 200: jsonResponse(z.object({ entry: entrySchema }), answer), ...errorResponses(400, 401, 404) },
    }),
    async (c) => {
      const entry = await act(workContext(c), { eventId: c.req.valid("param").id, accountId: c.var.fan.accountId });
      if (!entry) throw new ApiError(404, "not_waiting", notWaiting);
      return c.json({ entry: entryJson(entry) }, 200);
    },
  );
}

entryRoute("get", "Your waitlist entry at this event: its place in line and any offer", "Your latest entry.", myWaitlistEntry, "You have not joined this event's waitlist.");
entryRoute("delete", "Leave the waitlist (an open offer is released to the next fan)", "The closed entry.", leaveWaitlist, "You are not on this event's waitlist.");
