/**
 * The reference design's booking API (the seed's "Booking API Servers"): a
 * plain `node:http` server in front of Redis, serving the one route the
 * `holds` bench drives, `POST /api/events/:id/holds/best`, with the same
 * admission tokens, body and answers as ours. Per hold: verify the admission
 * token (HS256, `ADMISSION_TOKEN_KEY`), validate the body (the same zod schema
 * shape as our route), run `hold-best.lua` with EVALSHA (ioredis pipelines
 * concurrent calls into one write), answer its JSON. `GET /api/trivial` does
 * nothing, as the bench's no-I/O baseline.
 *
 * Run as its own process, so its CPU is counted apart:
 *   node --import tsx bench/reference/server.ts <port> <redisUrl> <envFile>
 * (the env file holds ADMISSION_TOKEN_KEY). Prints `READY <url>`; stops on SIGTERM.
 *
 * The token check is node:crypto's synchronous HMAC rather than jose: in Node
 * jose verifies through WebCrypto's thread pool (45 µs of CPU per token
 * measured, against 10 µs inside workerd), which would handicap the reference.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { v7 as uuidv7 } from "uuid";
import { z } from "zod";
import { MAX_BEST_AVAILABLE } from "../../core/holds/contract.ts";
import { connectReference, eventPrefix, holdArguments } from "./inventory.ts";

const [port, redisUrl, envFile] = process.argv.slice(2);
if (!port || !redisUrl || !envFile) {
  console.error("usage: server.ts <port> <redisUrl> <envFile>");
  process.exit(2);
}

const HOLD_PATH = /^\/api\/events\/([0-9a-f-]{36})\/holds\/best$/;
const MAX_BODY = 4_096;

const bodySchema = z.strictObject({
  requestId: z
    .string()
    .min(8)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/),
  quantity: z.number().int().min(1).max(MAX_BEST_AVAILABLE),
  allowSplit: z.boolean().default(false),
});

/** ADMISSION_TOKEN_KEY's secrets by kid (a JWK or a JWK set, as the Worker reads it). */
function admissionSecrets(raw: string): Map<string, Buffer> {
  const parsed = z.union([z.object({ keys: z.array(z.unknown()) }), z.unknown()]).parse(JSON.parse(raw));
  const list = typeof parsed === "object" && parsed !== null && "keys" in parsed && Array.isArray(parsed.keys) ? parsed.keys : [parsed];
  const jwk = z.object({ kty: z.literal("oct"), kid: z.string(), k: z.string() });
  return new Map(list.map((key) => jwk.parse(key)).map((key) => [key.kid, Buffer.from(key.k, "base64url")]));
}

const envLine = readFileSync(envFile, "utf8")
  .split("\n")
  .find((line) => line.startsWith("ADMISSION_TOKEN_KEY="));
if (!envLine) throw new Error(`${envFile} has no ADMISSION_TOKEN_KEY`);
const secrets = admissionSecrets(envLine.slice("ADMISSION_TOKEN_KEY=".length).replace(/^'(.*)'$/, "$1"));

const headerSchema = z.object({ alg: z.literal("HS256"), kid: z.string() });
const claimsSchema = z.object({ iss: z.literal("edge-tickets"), aud: z.literal("admission"), sub: z.string(), jti: z.string(), eid: z.string(), exp: z.number() });

/** The claims of a valid admission token; undefined for anything else. */
function admissionClaims(token: string): z.infer<typeof claimsSchema> | undefined {
  const [header, payload, signature, extra] = token.split(".");
  if (!header || !payload || !signature || extra !== undefined) return undefined;
  const parsedHeader = headerSchema.safeParse(parseSegment(header));
  const secret = parsedHeader.success ? secrets.get(parsedHeader.data.kid) : undefined;
  if (!secret) return undefined;
  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const claims = claimsSchema.safeParse(parseSegment(payload));
  if (!claims.success || claims.data.exp * 1000 <= Date.now()) return undefined;
  return claims.data;
}

function parseSegment(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

const redis = await connectReference(redisUrl, { autoPipelining: true });

function send(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  response.end(body);
}

function error(response: ServerResponse, status: number, code: string): void {
  send(response, status, JSON.stringify({ error: { code, message: code } }));
}

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk instanceof Buffer ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function holdBest(request: IncomingMessage, response: ServerResponse, eventId: string): Promise<void> {
  const authorization = request.headers.authorization ?? "";
  const claims = authorization.startsWith("Bearer ") ? admissionClaims(authorization.slice("Bearer ".length)) : undefined;
  if (!claims) return error(response, 401, "invalid_token");
  if (claims.eid !== eventId) return error(response, 403, "admission_required");
  const text = await readBody(request);
  let json: unknown;
  try {
    json = JSON.parse(text ?? "");
  } catch {
    return error(response, 400, "invalid_request");
  }
  const body = bodySchema.safeParse(json);
  if (!body.success) return error(response, 400, "invalid_request");
  const hold = { accountId: claims.sub, attemptKey: claims.jti, requestId: body.data.requestId, quantity: body.data.quantity, holdId: uuidv7() };
  const [status, answer] = await redis.holdBest(eventPrefix(eventId), ...holdArguments(hold, Date.now()));
  send(response, status, answer);
}

const server = createServer((request, response) => {
  const url = request.url ?? "";
  const hold = request.method === "POST" ? HOLD_PATH.exec(url) : null;
  const work = hold?.[1]
    ? holdBest(request, response, hold[1])
    : request.method === "GET" && (url === "/api/trivial" || url === "/api/health")
      ? Promise.resolve(send(response, 200, '{"ok":true}'))
      : Promise.resolve(error(response, 404, "not_found"));
  work.catch((failure: unknown) => {
    console.error(`reference: ${failure instanceof Error ? failure.message : String(failure)}`);
    if (!response.headersSent) error(response, 500, "internal_error");
  });
});
server.keepAliveTimeout = 120_000;
server.listen(Number(port), "127.0.0.1", () => console.log(`READY http://127.0.0.1:${port}`));

const stop = () => {
  server.close();
  redis.disconnect();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
