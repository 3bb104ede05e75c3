/**
 * What `npm run event:prepare` does, over the admin API only (and the fans'
 * published queue document), so it works the same against `npm run dev` and
 * production: checks the event (published, class, prices, times, admission
 * rate, venue), loads a hot event's inventory into its object
 * (`POST /admin/events/:id/prepare`, which also configures the room), warms
 * the room and its published queue state (`PATCH /admin/events/:id/admission`
 * with no change publishes the document; `GET /api/events/:id/queue` reads it
 * back as fans will), and checks the live view agrees. Every item checked is
 * a line of the checklist; the first failed one stops the run.
 *
 * No Node APIs here: the workers tests run it against the Worker under test.
 */
import { z } from "zod";

/** One line of the checklist. */
export interface ChecklistItem {
  item: string;
  ok: boolean;
  detail: string;
}

/** How the checklist reaches the Worker: its origin, an organizer's API key, and a fetch. */
export interface PrepareTarget {
  baseUrl: string;
  apiKey: string;
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** Epoch ms now (the tests pass a fake clock's). */
  now?: () => number;
}

/** A failed item: the checklist so far, the failed line last. */
export class ChecklistFailed extends Error {
  constructor(readonly items: ChecklistItem[]) {
    const failed = items[items.length - 1];
    super(failed ? `${failed.item}: ${failed.detail}` : "checklist failed");
  }
}

const eventSchema = z.object({
  id: z.string(),
  name: z.string(),
  venueId: z.string(),
  status: z.string(),
  demandClass: z.enum(["calm", "hot"]),
  expectedDemand: z.number(),
  capacity: z.number(),
  startsAt: z.string(),
  saleStartsAt: z.string(),
  saleEndsAt: z.string().nullable(),
  lobbyOpensMinutes: z.number(),
  admissionRatePerSecond: z.number(),
  prices: z.array(z.object({ priceTier: z.string(), priceCents: z.number() })),
});
const venueSchema = z.object({ name: z.string(), capacity: z.number(), seatCount: z.number(), priceTiers: z.array(z.string()), sections: z.array(z.object({ label: z.string() })) });
const preparedSchema = z.object({ seatCount: z.number(), available: z.number(), holdsRecovered: z.number(), holdsExpired: z.number(), rebuilt: z.boolean() });
const admissionSchema = z.object({ ratePerSecond: z.number(), paused: z.boolean() });
const queueSchema = z.object({ eventId: z.string(), ratePerSecond: z.number(), paused: z.boolean(), soldOut: z.boolean(), saleStartsAt: z.number() });
const liveSchema = z.object({
  totals: z.object({ capacity: z.number(), available: z.number(), held: z.number(), sold: z.number() }),
  queue: z.object({ ratePerSecond: z.number() }).nullable(),
});

const MINUTE_MS = 60_000;

/** Runs the checklist; resolves with every item (all passed), rejects with ChecklistFailed at the first failure. */
export async function prepareEvent(target: PrepareTarget, eventId: string, onItem: (item: ChecklistItem) => void = () => {}): Promise<ChecklistItem[]> {
  const items: ChecklistItem[] = [];
  const check = (item: string, ok: boolean, detail: string) => {
    const line = { item, ok, detail };
    items.push(line);
    onItem(line);
    if (!ok) throw new ChecklistFailed(items);
  };
  const call = async <T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${target.apiKey}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await target.fetch(`${target.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      check(`${method} ${path}`, false, `the Worker at ${target.baseUrl} did not answer (${String(error)})`);
      throw error;
    }
    const text = await response.text();
    if (!response.ok) check(`${method} ${path}`, false, `answered ${response.status}: ${text.slice(0, 300)}`);
    return schema.parse(JSON.parse(text));
  };
  const now = target.now?.() ?? Date.now();

  const event = await call("GET", `/admin/events/${encodeURIComponent(eventId)}`, eventSchema);
  check("event", event.status === "published", `${event.name} (${event.id}) is ${event.status}${event.status === "published" ? "" : ": publish it first"}`);

  const venue = await call("GET", `/admin/venues/${event.venueId}`, venueSchema);
  check(
    "venue",
    venue.capacity === event.capacity && venue.sections.length > 0,
    `${venue.name}: ${venue.sections.length} sections, ${venue.seatCount} seats, capacity ${venue.capacity} (event capacity ${event.capacity})`,
  );

  const ratio = event.capacity > 0 ? event.expectedDemand / event.capacity : 0;
  check("class", true, `${event.demandClass} (expected demand ${event.expectedDemand} / capacity ${event.capacity} = ${ratio.toFixed(1)}x)`);

  const priced = new Map(event.prices.map((p) => [p.priceTier, p.priceCents]));
  const unpriced = venue.priceTiers.filter((tier) => !((priced.get(tier) ?? 0) > 0));
  check(
    "prices",
    unpriced.length === 0,
    unpriced.length === 0 ? event.prices.map((p) => `${p.priceTier} ${(p.priceCents / 100).toFixed(2)}`).join(", ") : `tiers without a price above 0: ${unpriced.join(", ")}`,
  );

  const saleStartsAt = Date.parse(event.saleStartsAt);
  const saleEndsAt = event.saleEndsAt === null ? Date.parse(event.startsAt) : Date.parse(event.saleEndsAt);
  const lobbyOpensAt = saleStartsAt - event.lobbyOpensMinutes * MINUTE_MS;
  const timesProblem =
    saleEndsAt <= saleStartsAt ? "the sale ends before it starts" : saleEndsAt <= now ? "the sale has ended" : Date.parse(event.startsAt) <= now ? "the event has started" : null;
  check(
    "times",
    timesProblem === null,
    timesProblem ??
      `lobby opens ${new Date(lobbyOpensAt).toISOString()}, sale ${new Date(saleStartsAt).toISOString()} to ${new Date(saleEndsAt).toISOString()}` +
        (saleStartsAt <= now ? " (on sale now)" : ` (in ${Math.round((saleStartsAt - now) / MINUTE_MS)} min)`),
  );

  if (event.demandClass === "calm") {
    check("inventory", true, "calm event: it sells from Postgres, no object to load and no waiting room");
    const live = await call("GET", `/admin/events/${event.id}/live`, liveSchema);
    check("live view", live.totals.capacity === event.capacity, liveLine(live.totals));
    return items;
  }

  const rate = event.admissionRatePerSecond;
  check(
    "admission rate",
    rate >= 1 && rate <= event.capacity,
    `${rate} fans/s${rate > event.capacity ? `: more than the capacity (${event.capacity}) every second, lower it` : `; the expected ${event.expectedDemand} fans pass in ~${Math.ceil(event.expectedDemand / rate / 60)} min`}`,
  );

  const prepared = await call("POST", `/admin/events/${event.id}/prepare`, preparedSchema, { promote: false });
  check(
    "inventory loaded",
    prepared.seatCount === venue.seatCount,
    `${prepared.seatCount} seats in the object, ${prepared.available} places available, ${prepared.holdsRecovered} holds recovered${prepared.holdsExpired > 0 ? `, ${prepared.holdsExpired} lapsed holds marked expired` : ""}${prepared.rebuilt ? ", rebuilt from Postgres" : ""}`,
  );

  const room = await call("PATCH", `/admin/events/${event.id}/admission`, admissionSchema, {});
  check("waiting room", room.ratePerSecond === rate, `configured: ${room.ratePerSecond} fans/s, ${room.paused ? "paused" : "running"}`);

  const queue = await call("GET", `/api/events/${event.id}/queue`, queueSchema);
  check(
    "published queue state",
    queue.eventId === event.id && queue.ratePerSecond === rate && queue.saleStartsAt === saleStartsAt,
    `fans read ${queue.ratePerSecond} fans/s, sale at ${new Date(queue.saleStartsAt).toISOString()}, ${queue.paused ? "paused" : "not paused"}, ${queue.soldOut ? "sold out" : "places free"}`,
  );

  const live = await call("GET", `/admin/events/${event.id}/live`, liveSchema);
  const { capacity, available, held, sold } = live.totals;
  check("live view", capacity === event.capacity && available + held + sold === capacity, liveLine(live.totals));
  return items;
}

function liveLine(totals: { capacity: number; available: number; held: number; sold: number }): string {
  return `capacity ${totals.capacity}: ${totals.available} available, ${totals.held} held, ${totals.sold} sold`;
}

/** The checklist as printed: one line an item. */
export function formatItem(item: ChecklistItem): string {
  return `${item.ok ? "[x]" : "[ ] FAILED"} ${item.item}: ${item.detail}`;
}
