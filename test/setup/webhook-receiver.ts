/**
 * Organizer webhook receivers for the tests: real HTTP on loopback, so the
 * Worker's consumer makes real requests. Each test names its own receiver
 * (`/hooks/<name>`), tells it how to answer (`PUT /__receivers/<name>`: fail
 * the first `failures` requests, or all, with a status; a 3xx redirects to
 * `/hooks/<name>-target`), and reads what it
 * got (`GET /__receivers/<name>`: headers and raw body of every request).
 */
import { createServer } from "node:http";
import { text } from "node:stream/consumers";
import { z } from "zod";
import { listenOnLoopback, sendJson, type LoopbackServer } from "../../dev/http-server.ts";

const BehaviourSchema = z.strictObject({
  /** Requests answered with `failStatus` before the receiver accepts; null: every request fails. */
  failures: z.number().int().min(0).nullable(),
  failStatus: z.number().int().min(300).max(599).default(500),
});
type Behaviour = z.infer<typeof BehaviourSchema>;

interface Received {
  headers: Record<string, string>;
  body: string;
  answered: number;
}

/** Starts the receivers' server on 127.0.0.1:`port`. */
export async function startWebhookReceiver(options: { port: number }): Promise<LoopbackServer> {
  const behaviours = new Map<string, Behaviour>();
  const received = new Map<string, Received[]>();
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? "/", "http://receiver");
    const body = await text(request);
    const control = /^\/__receivers\/([\w-]{1,100})$/.exec(url.pathname);
    if (control?.[1]) {
      const name = control[1];
      if (request.method === "GET") return sendJson(response, 200, { received: received.get(name) ?? [] });
      const parsed = BehaviourSchema.safeParse(JSON.parse(body || "{}"));
      if (request.method !== "PUT" || !parsed.success) return sendJson(response, 400, { error: "PUT a behaviour" });
      behaviours.set(name, parsed.data);
      return sendJson(response, 200, { ok: true });
    }
    const hook = /^\/hooks\/([\w-]{1,100})$/.exec(url.pathname);
    if (!hook?.[1] || request.method !== "POST") return sendJson(response, 404, { error: "not a receiver" });
    const name = hook[1];
    const log = received.get(name) ?? [];
    received.set(name, log);
    const behaviour = behaviours.get(name) ?? { failures: 0, failStatus: 500 };
    const fails = behaviour.failures === null || log.length < behaviour.failures;
    const answered = fails ? behaviour.failStatus : 200;
    const headers = Object.fromEntries(Object.entries(request.headers).flatMap(([key, value]) => (typeof value === "string" ? [[key, value]] : [])));
    log.push({ headers, body, answered });
    // A redirect points at a receiver that accepts: only a client that follows it would deliver.
    const redirect: Record<string, string> = answered >= 300 && answered < 400 ? { location: `/hooks/${name}-target` } : {};
    sendJson(response, answered, fails ? { error: `receiver ${name} failing on purpose` } : { ok: true }, redirect);
  });
  return listenOnLoopback(server, options.port);
}
