/** The fans' API: public event data and health. Mounted at /api. */
import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { routeGroup, type AppEnv } from "../app";
import type { Context } from "hono";
import { eventViewSchema, getEvent, listEvents } from "../events";
import { requireFan } from "../fan-auth";
import { ATTEMPT_INTERVAL_MS, FAILURE_MESSAGES, MAX_BEST_AVAILABLE, MAX_SEATS_PER_HOLD } from "../../core/holds/contract";
import { ApiError, conflict, notFound } from "../../core/errors";
import { holdJson, holdOrThrow, holdSchema, toBase64 } from "../inventory/http";
import { eventRouting, inventoryFor } from "../inventory";
import { errorResponses, errorSchema, jsonBody, jsonResponse } from "../openapi";
import { createRedis } from "../redis";
import { createMailer } from "../mailer";
import { clientIp, redeemSignInCode, requestSignInCode, SIGN_IN_CODE_TTL_MS, type SignInDeps } from "../sign-in";

/** Public event data may be a little stale; the edge absorbs the crowd. */
const PUBLIC_CACHE = "public, max-age=10, s-maxage=30, stale-while-revalidate=60";

export const fans = routeGroup();

const checkSchema = z.object({ ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() });

async function timed(check: () => Promise<unknown>): Promise<z.infer<typeof checkSchema>> {
  const started = Date.now();
  try {
    await check();
    return { ok: true, latencyMs: Date.now() - started };
  } catch (error) {
    return { ok: false, latencyMs: Date.now() - started, error: error instanceof Error ? error.message.slice(0, 200) : "unreachable" };
  }
}

fans.openapi(
  createRoute({
    method: "get",
    path: "/health",
    summary: "Reachability of Postgres and Redis",
    responses: {
      200: jsonResponse(z.object({ ok: z.boolean(), postgres: checkSchema, redis: checkSchema }), "Everything is reachable."),
      503: jsonResponse(z.object({ ok: z.boolean(), postgres: checkSchema, redis: checkSchema }), "Something is not."),
    },
  }),
  async (c) => {
    const [postgres, redis] = await Promise.all([
      timed(() => c.var.db.execute(sql`select 1`)),
      timed(() => createRedis(c.var.config).ping()),
    ]);
    const ok = postgres.ok && redis.ok;
    c.header("Cache-Control", "no-store");
    return ok ? c.json({ ok, postgres, redis }, 200) : c.json({ ok, postgres, redis }, 503);
  },
);

fans.openapi(
  createRoute({
    method: "get",
    path: "/events",
    summary: "Published upcoming events",
    responses: { 200: jsonResponse(z.object({ events: z.array(eventViewSchema) }), "The events.") },
  }),
  async (c) => {
    const events = await listEvents(c.var.db, {});
    c.header("Cache-Control", PUBLIC_CACHE);
    return c.json({ events }, 200);
  },
);

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}",
    summary: "One published event",
    request: { params: z.object({ id: z.uuid() }) },
    responses: { 200: jsonResponse(eventViewSchema, "The event."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const event = await getEvent(c.var.db, { eventId: c.req.valid("param").id });
    c.header("Cache-Control", PUBLIC_CACHE);
    return c.json(event, 200);
  },
);

// ------------------------------------------------------------------ availability and holds

/** Availability may be 1-2 s stale: the seat map polls it and the edge absorbs the polls. */
const AVAILABILITY_CACHE = "public, max-age=1, s-maxage=2";

const eventParam = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });
const holdParams = eventParam.extend({ holdId: z.uuid().openapi({ param: { name: "holdId", in: "path" } }) });
const requestId = z
  .string()
  .min(8)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/)
  .openapi({ description: "Unique per attempt; a retry with the same id gets the first result.", example: "b7f0c1d2-hold-1" });

function inventory(c: Context<AppEnv>, eventId: string) {
  return inventoryFor({ env: c.env, db: c.var.db, eventId, keepAlive: (promise) => c.executionCtx.waitUntil(promise) });
}

/** Holding seats of a hot event takes an admission token for that event (the waiting room's). */
async function inventoryForHold(c: Context<AppEnv>, eventId: string) {
  const routing = await eventRouting(c.var.db, eventId);
  if (routing.demandClass === "hot" && c.var.fan.admittedEventId !== eventId) {
    throw new ApiError(403, "admission_required", "This sale runs through its waiting room: hold seats with the admission token you get when your turn comes.");
  }
  if (routing.demandClass === "calm" && c.var.fan.admittedEventId !== undefined && c.var.fan.admittedEventId !== eventId) {
    throw new ApiError(403, "wrong_event", "That admission token is for another event.");
  }
  return inventory(c, eventId);
}

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

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/availability",
    summary: "Per-section counts and a seat bitmap (1 bit per seat)",
    request: { params: eventParam },
    responses: { 200: jsonResponse(availabilitySchema, "Availability, cacheable for 1-2 s."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const cache = await caches.open("availability");
    const cacheKey = new Request(new URL(`/api/events/${id}/availability`, c.req.url).toString());
    const hit = await cache.match(cacheKey);
    if (hit) return hit as unknown as ReturnType<typeof c.json<z.infer<typeof availabilitySchema>, 200>>;
    const availability = await (await inventory(c, id)).availability();
    const response = c.json(
      { ...availability, generatedAt: new Date(availability.generatedAt).toISOString(), bitmap: toBase64(availability.bitmap) },
      200,
      { "Cache-Control": AVAILABILITY_CACHE },
    );
    c.executionCtx.waitUntil(cache.put(cacheKey, response.clone()));
    return response;
  },
);

const holdResponses = {
  201: jsonResponse(z.object({ hold: holdSchema }), "The hold: pay before expiresAt."),
  ...errorResponses(400, 401, 404, 409),
  429: jsonResponse(z.object({ error: z.object({ code: z.string(), message: z.string() }) }), "One attempt per 5 s."),
};

fans.use("/events/:id/holds", requireFan);
fans.use("/events/:id/holds/*", requireFan);

fans.openapi(
  createRoute({
    method: "post",
    path: "/events/{id}/holds",
    summary: "Hold specific seats (all or nothing)",
    security: [{ fanSession: [] }],
    request: {
      params: eventParam,
      body: jsonBody(z.strictObject({ requestId, seats: z.array(z.number().int().min(0)).min(1).max(MAX_SEATS_PER_HOLD) })),
    },
    responses: holdResponses,
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const fan = c.var.fan;
    const result = await (await inventoryForHold(c, id)).hold({ kind: "seats", accountId: fan.accountId, attemptKey: fan.attemptKey, requestId: body.requestId, seatIndexes: body.seats });
    if (!result.ok && result.reason === "too_fast") c.header("Retry-After", String(ATTEMPT_INTERVAL_MS / 1000));
    return c.json({ hold: holdJson(holdOrThrow(result)) }, 201);
  },
);

fans.openapi(
  createRoute({
    method: "post",
    path: "/events/{id}/holds/best",
    summary: "Hold the best available places in a price tier or section",
    security: [{ fanSession: [] }],
    request: {
      params: eventParam,
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
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const fan = c.var.fan;
    const result = await (await inventoryForHold(c, id)).hold({
      kind: "best",
      accountId: fan.accountId,
      attemptKey: fan.attemptKey,
      requestId: body.requestId,
      quantity: body.quantity,
      priceTier: body.priceTier,
      sectionId: body.sectionId,
      allowSplit: body.allowSplit,
    });
    if (!result.ok && result.reason === "too_fast") c.header("Retry-After", String(ATTEMPT_INTERVAL_MS / 1000));
    return c.json({ hold: holdJson(holdOrThrow(result)) }, 201);
  },
);

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/holds",
    summary: "Your holds at this event",
    security: [{ fanSession: [] }],
    request: { params: eventParam },
    responses: { 200: jsonResponse(z.object({ holds: z.array(holdSchema) }), "Your holds, newest first."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const holds = await (await inventory(c, c.req.valid("param").id)).accountHolds(c.var.fan.accountId);
    c.header("Cache-Control", "no-store");
    return c.json({ holds: holds.map(holdJson) }, 200);
  },
);

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/holds/{holdId}",
    summary: "One of your holds",
    security: [{ fanSession: [] }],
    request: { params: holdParams },
    responses: { 200: jsonResponse(z.object({ hold: holdSchema }), "The hold."), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const { id, holdId } = c.req.valid("param");
    const hold = await (await inventory(c, id)).getHold(holdId, c.var.fan.accountId);
    if (!hold) throw new ApiError(404, "hold_not_found", FAILURE_MESSAGES.hold_not_found);
    c.header("Cache-Control", "no-store");
    return c.json({ hold: holdJson(hold) }, 200);
  },
);

fans.openapi(
  createRoute({
    method: "delete",
    path: "/events/{id}/holds/{holdId}",
    summary: "Release one of your holds",
    security: [{ fanSession: [] }],
    request: { params: holdParams },
    responses: { 200: jsonResponse(z.object({ hold: holdSchema }), "The released hold."), ...errorResponses(400, 401, 404, 409) },
  }),
  async (c) => {
    const { id, holdId } = c.req.valid("param");
    const result = await (await inventory(c, id)).release({ accountId: c.var.fan.accountId, requestId: crypto.randomUUID(), holdId });
    return c.json({ hold: holdJson(holdOrThrow(result)) }, 200);
  },
);

// ------------------------------------------------------------------ live seat map

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/seat-feed",
    summary: "Live seat changes of a calm event (WebSocket)",
    description:
      'Send `Upgrade: websocket`. The first message is `{"type":"hello","at":ms,"recent":[[seatIndex,0|1],...]}`: fetch the availability bitmap, ' +
      'overlay `recent`, then apply each `{"type":"seats","changes":[[seatIndex,0|1],...],"at":ms}` (1 = available), at most about 10 a second. ' +
      'Send "ping" to get "pong". Hot events have no feed: poll availability.',
    request: { params: eventParam },
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

// ------------------------------------------------------------------ sign-in by emailed code

const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email().max(254))
  .openapi({ format: "email", example: "fan@example.com", description: "Trimmed and lower-cased before use." });

const tooManySignIns = jsonResponse(errorSchema, "`rate_limited`: too many requests from this address or for this email; see Retry-After.");

function signInDeps(c: Context<AppEnv>): SignInDeps {
  return { redis: createRedis(c.var.config), db: c.var.db, mailer: createMailer(c.var.config), signingKey: c.env.TOKEN_SIGNING_KEY };
}

function rateLimited(c: Context<AppEnv>, retryAfterSeconds: number): never {
  c.header("Retry-After", String(retryAfterSeconds));
  throw new ApiError(429, "rate_limited", `Too many sign-in requests; try again in ${retryAfterSeconds} s.`);
}

fans.openapi(
  createRoute({
    method: "post",
    path: "/auth/code",
    summary: "Email a one-time sign-in code",
    description:
      "Always 202 for a well-formed address, whether or not it has an account (accounts are created on first sign-in). " +
      "The 6-digit code works once, for 10 minutes; 5 wrong tries burn it; asking again replaces it.",
    request: { body: jsonBody(z.strictObject({ email: emailSchema })) },
    responses: {
      202: jsonResponse(z.object({ expiresInSeconds: z.number() }), "A code is on its way."),
      ...errorResponses(400),
      429: tooManySignIns,
      503: jsonResponse(errorSchema, "`mail_unavailable`: the email could not be sent; try again."),
    },
  }),
  async (c) => {
    const result = await requestSignInCode(signInDeps(c), { email: c.req.valid("json").email, ip: clientIp(c.req.raw.headers) });
    c.header("Cache-Control", "no-store");
    if (!result.ok && result.reason === "rate_limited") rateLimited(c, result.retryAfterSeconds);
    if (!result.ok) throw new ApiError(503, "mail_unavailable", "We could not send the code just now; please try again in a minute.");
    return c.json({ expiresInSeconds: SIGN_IN_CODE_TTL_MS / 1000 }, 202);
  },
);

fans.openapi(
  createRoute({
    method: "post",
    path: "/auth/session",
    summary: "Exchange an emailed code for a fan session",
    description: "Send the token as `Authorization: Bearer <token>` to the fan routes.",
    request: {
      body: jsonBody(z.strictObject({ email: emailSchema, code: z.string().trim().regex(/^\d{6}$/, "Expected the 6 digits from the email.").openapi({ example: "042817" }) })),
    },
    responses: {
      200: jsonResponse(z.object({ token: z.string(), accountId: z.uuid(), expiresAt: z.string() }), "Signed in."),
      ...errorResponses(400),
      401: jsonResponse(errorSchema, "`invalid_code`: wrong, expired or used up; ask for a new code."),
      429: tooManySignIns,
    },
  }),
  async (c) => {
    const { email, code } = c.req.valid("json");
    const result = await redeemSignInCode(signInDeps(c), { email, code, ip: clientIp(c.req.raw.headers) });
    c.header("Cache-Control", "no-store");
    if (!result.ok && result.reason === "rate_limited") rateLimited(c, result.retryAfterSeconds);
    if (!result.ok) throw new ApiError(401, "invalid_code", "That code is wrong, expired or used up; ask for a new one.");
    return c.json({ token: result.token, accountId: result.accountId, expiresAt: new Date(result.expiresAt).toISOString() }, 200);
  },
);

// ------------------------------------------------------------------ seat layout (the seat map's drawing)

/** A venue's chart never changes once imported, so its layout may sit in the edge cache for minutes. */
const SEAT_LAYOUT_CACHE = "public, max-age=300";

const seatLayoutSchema = z
  .object({
    eventId: z.uuid(),
    venueId: z.uuid(),
    seatCount: z.number().openapi({ description: "Seats are numbered 0..seatCount-1, as in the availability bitmap." }),
    sections: z.array(
      z.object({
        id: z.uuid(),
        label: z.string(),
        name: z.string(),
        kind: z.enum(["seated", "general_admission"]),
        priceTier: z.string().nullable().openapi({ description: "The section's tier; null when its rows set their own." }),
        capacity: z.number(),
      }),
    ),
    rows: z.array(
      z.object({
        section: z.uuid().openapi({ description: "The row's section id." }),
        label: z.string(),
        priceTier: z.string(),
        firstSeat: z.number().openapi({ description: "Seat index of the row's first seat; its seats are firstSeat..firstSeat+count-1, left to right." }),
        count: z.number(),
        seatLabels: z.array(z.string()).optional().openapi({ description: "Present only when the seats are not labelled 1..count." }),
      }),
    ),
  })
  .openapi("SeatLayout");

type SeatLayout = z.infer<typeof seatLayoutSchema>;

interface LayoutRow extends Record<string, unknown> {
  section: string;
  label: string;
  price_tier: string;
  first_seat: number;
  count: number;
  consecutive: boolean;
  seat_labels: string[] | null;
}

/** The layout of a published event's venue: sections, then rows in chart order, each a run of seat indexes. */
async function seatLayout(db: AppEnv["Variables"]["db"], eventId: string): Promise<SeatLayout> {
  const [event] = (
    await db.execute<{ venue_id: string; seat_count: number }>(sql`
      select e.venue_id, v.seat_count from events e join venues v on v.id = e.venue_id where e.id = ${eventId} and e.status = 'published'`)
  ).rows;
  if (!event) throw notFound("Event");
  const [sectionRows, rowRows] = await Promise.all([
    db.execute<{ id: string; label: string; name: string; kind: "seated" | "general_admission"; price_tier: string | null; capacity: number }>(sql`
      select s.id, s.label, s.name, s.kind, s.price_tier,
        coalesce(s.ga_capacity, (select count(*)::int from seats where seats.section_id = s.id)) as capacity
      from sections s where s.venue_id = ${event.venue_id} order by s.sort_order`),
    // planChart numbers a row's seats consecutively in position order; `consecutive` checks that the stored data still says so.
    db.execute<LayoutRow>(sql`
      select r.section_id as section, r.label, r.price_tier,
        min(st.seat_index)::int as first_seat, count(*)::int as count,
        (min(st.seat_index - st.position) = max(st.seat_index - st.position) and min(st.position) = 0 and max(st.position) = count(*) - 1) as consecutive,
        case when bool_and(st.label = (st.position + 1)::text) then null else json_agg(st.label order by st.position) end as seat_labels
      from seats st
      join seat_rows r on r.id = st.row_id
      join sections s on s.id = r.section_id
      where st.venue_id = ${event.venue_id}
      group by r.id, r.section_id, r.label, r.price_tier, s.sort_order, r.sort_order
      order by s.sort_order, r.sort_order`),
  ]);
  const rows = rowRows.rows.map((row) => {
    if (!row.consecutive) throw new Error(`seat layout: row ${row.label} of section ${row.section} is not numbered consecutively`);
    const base = { section: row.section, label: row.label, priceTier: row.price_tier, firstSeat: row.first_seat, count: row.count };
    return row.seat_labels ? { ...base, seatLabels: row.seat_labels } : base;
  });
  return {
    eventId,
    venueId: event.venue_id,
    seatCount: event.seat_count,
    sections: sectionRows.rows.map((s) => ({ id: s.id, label: s.label, name: s.name, kind: s.kind, priceTier: s.price_tier, capacity: s.capacity })),
    rows,
  };
}

fans.openapi(
  createRoute({
    method: "get",
    path: "/events/{id}/seats",
    summary: "The seat map's layout: sections, rows and the seat indexes of each row",
    description:
      "Static per event (cacheable for 5 minutes). Combine with the availability bitmap: seat `firstSeat + k` of a row is its k-th seat from the left, " +
      "labelled `seatLabels[k]` when given, else `k + 1`. General-admission sections have no rows.",
    request: { params: eventParam },
    responses: { 200: jsonResponse(seatLayoutSchema, "The layout."), ...errorResponses(400, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const cache = await caches.open("seat-layout");
    const cacheKey = new Request(new URL(`/api/events/${id}/seats`, c.req.url).toString());
    const hit = await cache.match(cacheKey);
    if (hit) return hit as unknown as ReturnType<typeof c.json<SeatLayout, 200>>;
    const response = c.json(await seatLayout(c.var.db, id), 200, { "Cache-Control": SEAT_LAYOUT_CACHE });
    c.executionCtx.waitUntil(cache.put(cacheKey, response.clone()));
    return response;
  },
);
