/**
 * The sellout bench's Worker entry (written into the bench snapshot only, as
 * lib/room-probe.ts writes its own, which this one wraps): the app unchanged
 * plus two fault hooks the chaos mode needs that production has no route for,
 * guarded by a random secret:
 *
 * - `wipe/<eventId>`: deletes the event's inventory object's whole storage
 *   and resets the object (`ctx.abort()`), as a lost disk would: the next
 *   request finds it unprepared and rebuilds it from Postgres
 *   (`ensurePrepared` → `prepare` → the mirror's `load`);
 * - `fail-consumer/<n>`: the next `n` invocations of the ticket-sales
 *   consumer hand only the first half of their batch to the app's handler,
 *   then throw, as an invocation that dies mid-batch: Queues redelivers every
 *   message not acknowledged (the handler must be idempotent).
 *
 * The repository's own files are not touched.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { ROOM_PROBE_ENTRY } from "./room-probe.ts";

/** The entry's file name in the snapshot (pass it to startApp as `entry`, after writeRoomProbe). */
export const SELLOUT_PROBE_ENTRY = "bench-sellout-probe.ts";
/** Under /admin/*, like the room probe's paths. */
const PROBE_PATH = "/admin/__sellout/";

/** Writes the entry into the snapshot; its paths want the room probe's secret. */
export async function writeSelloutProbe(projectDir: string, secret: string): Promise<void> {
  const roomEntry = `./${ROOM_PROBE_ENTRY.replace(/\.ts$/, "")}`;
  const source = `// Written by bench/lib/sellout-probe.ts into the bench snapshot only.
import roomProbe from ${JSON.stringify(roomEntry)};
import { EventInventory as AppEventInventory } from "./durable-objects/event-inventory";
export * from ${JSON.stringify(roomEntry)};

/** The app's inventory, plus a storage wipe. */
export class EventInventory extends AppEventInventory {
  async benchWipe(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.ctx.abort("bench: storage wiped");
  }
}

const PROBE = ${JSON.stringify(PROBE_PATH)};
/** Consumer invocations still to fail (this isolate runs both the fetch and the queue handlers). */
let failConsumer = 0;

export default {
  ...roomProbe,
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const at = request.url.indexOf(PROBE);
    if (at < 0) return roomProbe.fetch(request, env, ctx);
    if (request.headers.get("x-bench-probe") !== ${JSON.stringify("__SECRET__")}) return new Response("forbidden", { status: 403 });
    const [kind, arg = ""] = request.url.slice(at + PROBE.length).split(/[?#]/)[0]?.split("/") ?? [];
    if (kind === "wipe") {
      const stub = env.EVENT_INVENTORY.getByName(arg) as unknown as DurableObjectStub<EventInventory>;
      await stub.benchWipe().catch(() => undefined);
      return Response.json({ wiped: arg });
    }
    if (kind === "fail-consumer") {
      failConsumer += Number(arg);
      return Response.json({ failConsumer });
    }
    return new Response("no such probe", { status: 404 });
  },
  async queue(batch: MessageBatch, env: Env, ctx: ExecutionContext): Promise<void> {
    if (batch.queue !== "ticket-sales" || failConsumer <= 0 || batch.messages.length < 2) return roomProbe.queue(batch, env, ctx);
    failConsumer--;
    const half = batch.messages.slice(0, Math.ceil(batch.messages.length / 2));
    const partial = {
      queue: batch.queue,
      messages: half,
      ackAll: () => half.forEach((message) => message.ack()),
      retryAll: (options?: QueueRetryOptions) => half.forEach((message) => message.retry(options)),
    };
    await roomProbe.queue(partial as MessageBatch, env, ctx);
    throw new Error(\`bench: the consumer died after \${half.length} of \${batch.messages.length} messages\`);
  },
} satisfies ExportedHandler<Env>;
`;
  await writeFile(path.join(projectDir, SELLOUT_PROBE_ENTRY), source.replace("__SECRET__", secret));
}

/** Calls one of the entry's paths. */
export async function selloutProbe(appUrl: string, secret: string, route: string): Promise<void> {
  const response = await fetch(`${appUrl}${PROBE_PATH}${route}`, { method: "POST", headers: { "x-bench-probe": secret }, signal: AbortSignal.timeout(60_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`the sellout probe answered ${response.status}: ${text.slice(0, 300)}`);
}
