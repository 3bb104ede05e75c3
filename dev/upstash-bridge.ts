import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { IncomingMessage } from "node:http";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { text } from "node:stream/consumers";
import { z } from "zod";
import { listenOnLoopback, sendJson, type LoopbackServer } from "./http-server.ts";

/** A running bridge: where `@upstash/redis` should point and how to stop it. */
export type UpstashBridge = LoopbackServer;

/** A RESP2 reply. Status replies are `string`, bulk strings are `Buffer`, so each is encoded as Upstash does. */
type Reply = string | Buffer | number | null | ErrorReply | Reply[];
type Json = string | number | null | Json[];
type Item = { result: Json } | { error: string };

/** An error reply from Redis (`-ERR ...`). Not thrown: it travels as a value like any other reply. */
class ErrorReply {
  constructor(readonly message: string) {}
}

/** A request the bridge refuses before it reaches Redis; answered with 400. */
class BadRequest extends Error {}

/** Upstash accepts strings, numbers and booleans as arguments; Redis gets them all as bulk strings. */
const CommandSchema = z.array(z.union([z.string(), z.number(), z.boolean()]).transform(String)).min(1);
const BatchSchema = z.array(CommandSchema).min(1);

/** They would change the state of a connection every request shares. */
const CONNECTION_STATE_COMMANDS = new Set([
  "AUTH", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE", "PSYNC", "PUNSUBSCRIBE",
  "QUIT", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE", "SYNC", "UNSUBSCRIBE", "UNWATCH", "WATCH",
]);
/** They may wait for other clients, so they get a connection of their own instead of stalling the shared one. */
const BLOCKING_COMMANDS = new Set(["BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX", "BZPOPMIN", "WAIT", "WAITAOF"]);
/** `@upstash/ratelimit` scripts start with `#!lua flags=allow-key-locking`, a flag plain Redis rejects. */
const LUA_SHEBANG = /^#!lua[^\n]*/;

/**
 * Starts the bridge on 127.0.0.1:port (0 = ephemeral) in front of `redisUrl`
 * (redis://host:port), requiring `Authorization: Bearer <token>`. It speaks
 * Upstash's REST protocol (`/`, `/pipeline`, `/multi-exec`, path-style
 * `/set/key/value`) so `@upstash/redis` and `@upstash/ratelimit` work unmodified.
 * Requests share connections, so commands that change a connection's state
 * (MULTI, WATCH, SELECT, SUBSCRIBE, CLIENT, ...) are refused with 400.
 */
export async function startUpstashBridge(options: { port: number; redisUrl: string; token: string }): Promise<UpstashBridge> {
  const redis = await createRedisClient(new URL(options.redisUrl));
  const scripts = new ScriptShas();
  const server = createServer((request, response) => {
    handle(request, redis, scripts, options.token).then(
      ([status, body]) => sendJson(response, status, body),
      (error: unknown) => sendJson(response, error instanceof BadRequest || error instanceof URIError ? 400 : 500, { error: String(error instanceof Error ? error.message : error) }),
    );
  });
  try {
    return await listenOnLoopback(server, options.port, () => redis.close());
  } catch (error) {
    redis.close();
    throw error;
  }
}

async function handle(request: IncomingMessage, redis: RedisClient, scripts: ScriptShas, token: string): Promise<[number, unknown]> {
  if (request.headers.authorization !== `Bearer ${token}`) return [401, { error: "Unauthorized" }];
  const base64 = request.headers["upstash-encoding"] === "base64";
  const url = new URL(request.url ?? "/", "http://bridge");
  const body = await text(request);
  const jsonEndpoint = ["/", "/pipeline", "/multi-exec"].includes(url.pathname);
  if (jsonEndpoint && request.method !== "POST") return [405, { error: "ERR use POST" }];

  if (url.pathname === "/pipeline") {
    const commands = parseJson(BatchSchema, body).map(checkCommand);
    const replies = await redis.run(commands.map((command) => scripts.rewrite(command)));
    return [200, replies.map((reply, index) => toItem(scripts.adjustReply(commands[index], reply), base64))];
  }
  if (url.pathname === "/multi-exec") {
    const commands = parseJson(BatchSchema, body).map(checkCommand);
    const replies = await redis.run([["MULTI"], ...commands.map((command) => scripts.rewrite(command)), ["EXEC"]]);
    const results = replies.at(-1);
    if (!Array.isArray(results)) return [400, { error: transactionError(replies) }];
    return [200, results.map((reply, index) => toItem(scripts.adjustReply(commands[index], reply), base64))];
  }
  const command = checkCommand(url.pathname === "/" ? parseJson(CommandSchema, body) : commandFromPath(url, body));
  const [reply = null] = await redis.run([scripts.rewrite(command)]);
  if (reply instanceof ErrorReply) return [400, { error: reply.message }];
  return [200, { result: toJson(scripts.adjustReply(command, reply), base64) }];
}

function parseJson<T>(schema: z.ZodType<T>, body: string): T {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new BadRequest("ERR failed to parse the request body as JSON");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new BadRequest(`ERR invalid command: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** `/set/key/value?EX=100` is `SET key value EX 100`; a request body is one more, final argument. */
function commandFromPath(url: URL, body: string): string[] {
  const command = url.pathname.split("/").filter((segment) => segment !== "").map(decodeURIComponent);
  for (const [name, value] of url.searchParams) command.push(name, ...(value === "" ? [] : [value]));
  if (body !== "") command.push(body);
  return command;
}

function checkCommand(command: string[]): string[] {
  const name = command[0]?.toUpperCase() ?? "";
  if (name === "") throw new BadRequest("ERR empty command");
  if (CONNECTION_STATE_COMMANDS.has(name)) throw new BadRequest(`ERR ${name} is not supported by the bridge`);
  return command;
}

function transactionError(replies: Reply[]): string {
  const queueError = replies.find((reply) => reply instanceof ErrorReply);
  const exec = replies.at(-1);
  const message = exec instanceof ErrorReply ? exec.message : "EXECABORT Transaction discarded";
  return queueError instanceof ErrorReply ? `${message} First error: ${queueError.message}` : message;
}

function toItem(reply: Reply, base64: boolean): Item {
  return reply instanceof ErrorReply ? { error: reply.message } : { result: toJson(reply, base64) };
}

/** With `Upstash-Encoding: base64` every string but a bare `OK` is base64, as the client expects. */
function toJson(reply: Reply, base64: boolean): Json {
  if (Buffer.isBuffer(reply)) return reply.toString(base64 ? "base64" : "utf8");
  if (typeof reply === "string") return base64 && reply !== "OK" ? Buffer.from(reply).toString("base64") : reply;
  if (reply instanceof ErrorReply) return toJson(reply.message, base64);
  if (Array.isArray(reply)) return reply.map((item) => toJson(item, base64));
  return reply;
}

/**
 * Strips Lua shebangs and remembers, for each stripped script, the sha the
 * client computed (of the script it sent) and the sha Redis knows, so the
 * client's EVALSHA hits instead of failing with NOSCRIPT on every call.
 */
class ScriptShas {
  private readonly redisShaOf = new Map<string, string>();

  rewrite(command: string[]): string[] {
    const [name = "", first = "", ...rest] = command;
    switch (name.toUpperCase()) {
      case "EVAL":
      case "EVAL_RO":
        return [name, this.strip(first), ...rest];
      case "EVALSHA":
      case "EVALSHA_RO":
        return [name, this.redisShaOf.get(first) ?? first, ...rest];
      case "SCRIPT": {
        const subcommand = first.toUpperCase();
        if (subcommand === "LOAD" && rest[0] !== undefined) return [name, first, this.strip(rest[0]), ...rest.slice(1)];
        if (subcommand === "EXISTS") return [name, first, ...rest.map((sha) => this.redisShaOf.get(sha) ?? sha)];
        return command;
      }
      default:
        return command;
    }
  }

  /** SCRIPT LOAD answers with the sha of the script as the client sent it. */
  adjustReply(command: string[] | undefined, reply: Reply): Reply {
    const [name, subcommand, script] = command ?? [];
    const isScriptLoad = name?.toUpperCase() === "SCRIPT" && subcommand?.toUpperCase() === "LOAD";
    return isScriptLoad && script !== undefined && Buffer.isBuffer(reply) ? Buffer.from(sha1(script)) : reply;
  }

  private strip(script: string): string {
    // Keeps the line break, so line numbers in Lua errors still match the client's script.
    const stripped = script.replace(LUA_SHEBANG, "");
    if (stripped !== script) this.redisShaOf.set(sha1(script), sha1(stripped));
    return stripped;
  }
}

function sha1(script: string): string {
  return createHash("sha1").update(script).digest("hex");
}

/** Runs batches of commands on one shared, pipelined connection; blocking commands get their own. */
interface RedisClient {
  run(commands: string[][]): Promise<Reply[]>;
  close(): void;
}

async function createRedisClient(target: URL): Promise<RedisClient> {
  const open = new Set<RedisConnection>();
  const connectTracked = async () => {
    const connection = await connectRedis(target, () => open.delete(connection));
    open.add(connection);
    return connection;
  };
  let shared = await connectTracked();
  let reconnecting: Promise<RedisConnection> | undefined;
  const sharedConnection = async () => {
    if (!shared.closed) return shared;
    reconnecting ??= connectTracked().finally(() => (reconnecting = undefined));
    return (shared = await reconnecting);
  };

  return {
    async run(commands) {
      if (!commands.some(isBlocking)) return (await sharedConnection()).send(commands);
      const own = await connectTracked();
      try {
        return await own.send(commands);
      } finally {
        own.close();
      }
    },
    close() {
      for (const connection of open) connection.close();
    },
  };
}

function isBlocking(command: string[]): boolean {
  const name = command[0]?.toUpperCase() ?? "";
  if (name === "XREAD" || name === "XREADGROUP") return command.some((arg) => arg.toUpperCase() === "BLOCK");
  return BLOCKING_COMMANDS.has(name);
}

async function connectRedis(target: URL, onClose: () => void): Promise<RedisConnection> {
  const socket = connect(Number(target.port || 6379), target.hostname.replace(/^\[|\]$/g, ""));
  try {
    await once(socket, "connect");
  } catch (error) {
    socket.destroy();
    throw new Error(`upstash bridge: cannot reach Redis at ${target.host}: ${String(error)}`);
  }
  socket.setNoDelay(true);
  const connection = new RedisConnection(socket, onClose);
  const setup: string[][] = [];
  if (target.password) setup.push(["AUTH", ...(target.username ? [decodeURIComponent(target.username)] : []), decodeURIComponent(target.password)]);
  if (/^\/\d+$/.test(target.pathname)) setup.push(["SELECT", target.pathname.slice(1)]);
  const refused = setup.length > 0 ? (await connection.send(setup)).find((reply) => reply instanceof ErrorReply) : undefined;
  if (refused instanceof ErrorReply) {
    connection.close();
    throw new Error(`upstash bridge: Redis refused the connection: ${refused.message}`);
  }
  return connection;
}

interface Waiter {
  expected: number;
  replies: Reply[];
  resolve(replies: Reply[]): void;
  reject(error: Error): void;
}

/**
 * One TCP connection speaking RESP2. Each batch goes out in a single write, so
 * a MULTI ... EXEC batch never interleaves with other requests' commands, and
 * replies come back in the order the batches were written.
 */
class RedisConnection {
  private readonly waiters: Waiter[] = [];
  private unread: Buffer = Buffer.alloc(0);

  constructor(
    private readonly socket: Socket,
    onClose: () => void,
  ) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", () => {}); // "close" follows and fails the waiters
    socket.on("close", () => {
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error("upstash bridge: connection to Redis closed"));
      onClose();
    });
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  send(commands: string[][]): Promise<Reply[]> {
    if (this.closed) return Promise.reject(new Error("upstash bridge: connection to Redis closed"));
    return new Promise((resolve, reject) => {
      this.waiters.push({ expected: commands.length, replies: [], resolve, reject });
      this.socket.write(commands.map(encodeCommand).join(""));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.unread = this.unread.length === 0 ? chunk : Buffer.concat([this.unread, chunk]);
    let offset = 0;
    try {
      for (let parsed = parseReply(this.unread, 0); parsed; parsed = parseReply(this.unread, offset)) {
        offset = parsed.end;
        this.deliver(parsed.reply);
      }
    } catch (error) {
      this.socket.destroy(error instanceof Error ? error : new Error(String(error)));
    }
    this.unread = this.unread.subarray(offset);
  }

  private deliver(reply: Reply): void {
    const waiter = this.waiters[0];
    if (!waiter) throw new Error("upstash bridge: Redis sent a reply nobody asked for");
    waiter.replies.push(reply);
    if (waiter.replies.length < waiter.expected) return;
    this.waiters.shift();
    waiter.resolve(waiter.replies);
  }
}

function encodeCommand(command: string[]): string {
  return `*${command.length}\r\n${command.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")}`;
}

/** Parses one RESP2 reply starting at `start`; undefined when it has not fully arrived yet. */
function parseReply(buffer: Buffer, start: number): { reply: Reply; end: number } | undefined {
  const lineEnd = buffer.indexOf("\r\n", start);
  if (lineEnd === -1) return undefined;
  const line = buffer.toString("utf8", start + 1, lineEnd);
  let end = lineEnd + 2;
  switch (String.fromCharCode(buffer[start] ?? 0)) {
    case "+":
      return { reply: line, end };
    case "-":
      return { reply: new ErrorReply(line), end };
    case ":":
      return { reply: Number(line), end };
    case "$": {
      const length = Number(line);
      if (length < 0) return { reply: null, end };
      if (buffer.length < end + length + 2) return undefined;
      return { reply: buffer.subarray(end, end + length), end: end + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { reply: null, end };
      const items: Reply[] = [];
      for (let index = 0; index < count; index++) {
        const item = parseReply(buffer, end);
        if (!item) return undefined;
        items.push(item.reply);
        end = item.end;
      }
      return { reply: items, end };
    }
    default:
      throw new Error(`upstash bridge: unexpected RESP reply ${JSON.stringify(buffer.toString("utf8", start, lineEnd))}`);
  }
}
