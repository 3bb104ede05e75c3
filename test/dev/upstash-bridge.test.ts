import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { startRedis } from "../../dev/redis.ts";
import { startUpstashBridge } from "../../dev/upstash-bridge.ts";
import type { UpstashBridge } from "../../dev/upstash-bridge.ts";

const TOKEN = "bridge-test-token";
let bridge: UpstashBridge;

beforeAll(async () => {
  bridge = await startUpstashBridge({ port: 0, redisUrl: inject("redisUrl"), token: TOKEN });
});

afterAll(async () => {
  await bridge.close();
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** A key prefix no other test (or test file) uses. */
function uniquePrefix(): string {
  return `bridge-test:${randomUUID()}:`;
}

/**
 * The real client. Its defaults: base64 responses, automatic JSON deserialization,
 * and auto-pipelining (the commands of one tick go to /pipeline together).
 */
function upstash(options: { token?: string; automaticDeserialization?: boolean; responseEncoding?: false; enableAutoPipelining?: boolean } = {}): Redis {
  return new Redis({ url: bridge.url, token: TOKEN, retry: false, enableTelemetry: false, ...options });
}

/** A raw REST call, to check the wire format itself. */
async function rest(route: string, init: { body?: unknown; base64?: boolean; token?: string; method?: string } = {}): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? TOKEN}` };
  if (init.base64) headers["upstash-encoding"] = "base64";
  const body = init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body);
  const response = await fetch(`${bridge.url}${route}`, { method: init.method ?? "POST", headers, body });
  const json: unknown = await response.json();
  return { status: response.status, body: json };
}

function base64(text: string): string {
  return Buffer.from(text).toString("base64");
}

function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

describe.each([
  { mode: "auto-pipelined", options: {} },
  { mode: "one request per command", options: { enableAutoPipelining: false } },
])("single commands through @upstash/redis, $mode", ({ options }) => {
  it("round-trips strings, JSON values, counters, hashes and sorted sets", async () => {
    const redis = upstash(options);
    const key = uniquePrefix();
    expect(await redis.set(`${key}greeting`, "héllo, wörld ✓")).toBe("OK");
    expect(await redis.get(`${key}greeting`)).toBe("héllo, wörld ✓");
    await redis.set(`${key}order`, { seats: ["A1", "A2"], total: 120 });
    expect(await redis.get(`${key}order`)).toEqual({ seats: ["A1", "A2"], total: 120 });
    expect(await redis.get(`${key}missing`)).toBeNull();

    expect(await redis.incr(`${key}counter`)).toBe(1);
    expect(await redis.incrby(`${key}counter`, 41)).toBe(42);
    expect(await redis.get(`${key}counter`)).toBe(42);

    expect(await redis.hset(`${key}hold`, { seat: "B7", fan: "ada", price: 55 })).toBe(3);
    expect(await redis.hget(`${key}hold`, "seat")).toBe("B7");
    expect(await redis.hgetall(`${key}hold`)).toEqual({ seat: "B7", fan: "ada", price: 55 });

    await redis.zadd(`${key}queue`, { score: 3, member: "carol" }, { score: 1, member: "alice" }, { score: 2, member: "bob" });
    expect(await redis.zrange(`${key}queue`, 0, -1)).toEqual(["alice", "bob", "carol"]);
    expect(await redis.zrange(`${key}queue`, 0, 0, { withScores: true })).toEqual(["alice", 1]);
    expect(await redis.zscore(`${key}queue`, "bob")).toBe(2);
    expect(await redis.zrank(`${key}queue`, "carol")).toBe(2);
    expect(await redis.mget(`${key}greeting`, `${key}missing`)).toEqual(["héllo, wörld ✓", null]);
    expect(await redis.type(`${key}queue`)).toBe("zset");
  });

  it("returns raw strings without automatic deserialization or base64", async () => {
    const key = uniquePrefix();
    for (const redis of [upstash({ ...options, automaticDeserialization: false }), upstash({ ...options, automaticDeserialization: false, responseEncoding: false })]) {
      await redis.set(`${key}n`, 7);
      expect(await redis.get(`${key}n`)).toBe("7");
      expect(await redis.incr(`${key}n`)).toBe(8);
      await redis.rpush(`${key}list`, "x", "ü");
      expect(await redis.lrange(`${key}list`, 0, -1)).toEqual(["x", "ü"]);
      await redis.del(`${key}list`);
    }
  });

  it("maps Redis errors to rejected promises carrying the Redis message", async () => {
    const redis = upstash(options);
    const key = uniquePrefix();
    await redis.set(`${key}word`, "not-a-number");
    await expect(redis.incr(`${key}word`)).rejects.toThrow(/ERR value is not an integer or out of range/);
    await expect(redis.hget(`${key}word`, "field")).rejects.toThrow(/WRONGTYPE/);
  });

  it("rejects a wrong or missing token", async () => {
    await expect(upstash({ ...options, token: "wrong" }).get("anything")).rejects.toThrow(/Unauthorized/);
    const missing = await fetch(bridge.url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: "Unauthorized" });
    expect(await rest("/", { body: ["PING"], token: "wrong" })).toEqual({ status: 401, body: { error: "Unauthorized" } });
  });
});

describe("the REST wire format", () => {
  it("encodes every string, including inside arrays, as base64 when asked, and leaves integers and nulls", async () => {
    const key = uniquePrefix();
    expect(await rest("/", { body: ["SET", `${key}s`, "héllo"], base64: true })).toEqual({ status: 200, body: { result: "OK" } });
    expect(await rest("/", { body: ["GET", `${key}s`], base64: true })).toEqual({ status: 200, body: { result: base64("héllo") } });
    expect(await rest("/", { body: ["GET", `${key}s`] })).toEqual({ status: 200, body: { result: "héllo" } });
    expect(await rest("/", { body: ["GET", `${key}none`], base64: true })).toEqual({ status: 200, body: { result: null } });
    expect(await rest("/", { body: ["RPUSH", `${key}l`, "a", "ö"], base64: true })).toEqual({ status: 200, body: { result: 2 } });
    expect(await rest("/", { body: ["LRANGE", `${key}l`, 0, -1], base64: true })).toEqual({ status: 200, body: { result: [base64("a"), base64("ö")] } });
    expect(await rest("/", { body: ["MGET", `${key}s`, `${key}none`], base64: true })).toEqual({ status: 200, body: { result: [base64("héllo"), null] } });
    expect(await rest("/", { body: ["TYPE", `${key}l`], base64: true })).toEqual({ status: 200, body: { result: base64("list") } });
  });

  it("turns numbers and booleans into bulk strings", async () => {
    const key = uniquePrefix();
    await rest("/", { body: ["SET", `${key}n`, 12.5, "EX", 60] });
    await rest("/", { body: ["SET", `${key}b`, true] });
    expect(await rest("/", { body: ["MGET", `${key}n`, `${key}b`] })).toEqual({ status: 200, body: { result: ["12.5", "true"] } });
    expect(await rest("/", { body: ["TTL", `${key}n`] })).toEqual({ status: 200, body: { result: 60 } });
  });

  it("answers Redis errors with 400 and malformed requests with 400", async () => {
    expect(await rest("/", { body: ["NOSUCHCOMMAND", "x"] })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^ERR unknown command/) } });
    expect(await rest("/", { body: ["SET", "only-a-key"] })).toEqual({ status: 400, body: { error: "ERR wrong number of arguments for 'set' command" } });
    expect(await rest("/", { body: "not json" })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^ERR/) } });
    expect(await rest("/", { body: [] })).toMatchObject({ status: 400 });
    expect(await rest("/", { body: ["SET", "k", { nested: true }] })).toMatchObject({ status: 400 });
    expect(await rest("/", { body: ["MULTI"] })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/MULTI is not supported/) } });
    expect(await rest("/", { body: ["SELECT", 2] })).toMatchObject({ status: 400 });
  });

  it("accepts the path style, with query parameters and a body as the last argument", async () => {
    const key = encodeURIComponent(`${uniquePrefix()}path key`);
    expect(await rest(`/set/${key}/v1?EX=100`, { method: "GET" })).toEqual({ status: 200, body: { result: "OK" } });
    expect(await rest(`/get/${key}`, { method: "GET" })).toEqual({ status: 200, body: { result: "v1" } });
    expect(await rest(`/ttl/${key}`, { method: "GET" })).toEqual({ status: 200, body: { result: 100 } });
    expect(await rest(`/set/${key}`, { body: "a body value, with / and spaces" })).toEqual({ status: 200, body: { result: "OK" } });
    expect(await rest(`/get/${key}`, { base64: true })).toEqual({ status: 200, body: { result: base64("a body value, with / and spaces") } });
  });
});

describe("pipelines and transactions", () => {
  it("runs a pipeline and keeps going past a failed command", async () => {
    const redis = upstash();
    const key = uniquePrefix();
    const results = await redis.pipeline().set(`${key}a`, "one").incr(`${key}n`).incr(`${key}n`).get(`${key}a`).hset(`${key}h`, { f: 1 }).exec();
    expect(results).toEqual(["OK", 1, 2, "one", 1]);

    await expect(redis.pipeline().set(`${key}s`, "text").incr(`${key}s`).set(`${key}after`, "ran").exec()).rejects.toThrow(/Command 2 \[ incr \] failed: ERR value is not an integer/);
    expect(await redis.get(`${key}after`)).toBe("ran");

    const kept = await redis.pipeline().incr(`${key}s`).get(`${key}after`).exec({ keepErrors: true });
    expect(kept[0].error).toMatch(/ERR value is not an integer/);
    expect(kept[1]).toEqual({ result: "ran", error: undefined });
  });

  it("returns per-command items on the wire for /pipeline and /multi-exec", async () => {
    const key = uniquePrefix();
    const commands = [["SET", `${key}s`, "x"], ["INCR", `${key}s`], ["GET", `${key}s`]];
    const pipeline = await rest("/pipeline", { body: commands, base64: true });
    expect(pipeline).toEqual({ status: 200, body: [{ result: "OK" }, { error: "ERR value is not an integer or out of range" }, { result: base64("x") }] });
    const transaction = await rest("/multi-exec", { body: commands });
    expect(transaction).toEqual({ status: 200, body: [{ result: "OK" }, { error: "ERR value is not an integer or out of range" }, { result: "x" }] });
  });

  it("runs redis.multi() as one transaction", async () => {
    const redis = upstash();
    const key = uniquePrefix();
    const results = await redis.multi().set(`${key}a`, { seat: "C3" }).incr(`${key}n`).get(`${key}a`).zadd(`${key}z`, { score: 1, member: "m" }).exec();
    expect(results).toEqual(["OK", 1, { seat: "C3" }, 1]);
  });

  it("discards the whole transaction when a command is rejected while queueing", async () => {
    const key = uniquePrefix();
    const response = await rest("/multi-exec", { body: [["SET", `${key}a`, "1"], ["SET", `${key}b`]] });
    expect(response).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^EXECABORT .*wrong number of arguments/) } });
    expect(await upstash().get(`${key}a`)).toBeNull();
    await expect(upstash().multi().set(`${key}a`, 1).exec()).resolves.toEqual(["OK"]);
  });

  it("never interleaves other requests into a transaction (randomized concurrent load)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom("multi", "pipeline-write", "write", "incr"), { minLength: 20, maxLength: 80 }), async (operations) => {
        const redis = upstash({ automaticDeserialization: false });
        const key = uniquePrefix();
        const shared = `${key}shared`;
        const outcomes = await Promise.all(
          operations.map(async (operation, index) => {
            const mine = `value-${index}`;
            switch (operation) {
              case "multi": {
                const [, seen] = await redis.multi().set(shared, mine).get(shared).incr(`${key}transactions`).exec();
                return seen === mine;
              }
              case "pipeline-write":
                await redis.pipeline().set(shared, mine).incr(`${key}others`).exec();
                return true;
              case "write":
                return (await redis.set(shared, mine)) === "OK";
              case "incr":
                return (await redis.incr(`${key}others`)) > 0;
            }
          }),
        );
        expect(outcomes.every(Boolean)).toBe(true);
        const transactions = operations.filter((operation) => operation === "multi").length;
        expect(Number((await redis.get(`${key}transactions`)) ?? 0)).toBe(transactions);
        expect(Number((await redis.get(`${key}others`)) ?? 0)).toBe(operations.length - transactions - operations.filter((operation) => operation === "write").length);
      }),
      { numRuns: 15 },
    );
  });
});

describe("Lua scripts", () => {
  /** A script Redis has never seen (unique comment), with the shebang Upstash's scripts carry. */
  function freshScript(): string {
    return `#!lua flags=allow-key-locking\n-- ${randomUUID()}\nreturn {redis.call("INCRBY", KEYS[1], ARGV[1]), "ok"}`;
  }

  it("strips the #!lua shebang for EVAL, SCRIPT LOAD and EVALSHA", async () => {
    const redis = upstash();
    const key = uniquePrefix();
    const script = freshScript();
    expect(await redis.eval(script, [`${key}n`], [5])).toEqual([5, "ok"]);
    expect(await redis.evalsha(sha1(script), [`${key}n`], [2])).toEqual([7, "ok"]);

    const loaded = freshScript();
    expect(await redis.scriptLoad(loaded)).toBe(sha1(loaded));
    expect(await redis.scriptExists(sha1(loaded), "0".repeat(40))).toEqual([1, 0]);
    expect(await redis.evalsha(sha1(loaded), [`${key}n`], [3])).toEqual([10, "ok"]);
  });

  it("answers NOSCRIPT for an unknown script, so the client's EVALSHA → EVAL fallback works and later calls hit", async () => {
    const key = uniquePrefix();
    const script = freshScript();
    expect(await rest("/", { body: ["EVALSHA", sha1(script), 1, `${key}n`, 1] })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^NOSCRIPT/) } });

    const commands = recordCommands();
    const created = upstash().createScript<[number, string]>(script);
    expect(await created.exec([`${key}n`], ["1"])).toEqual([1, "ok"]);
    expect(await created.exec([`${key}n`], ["1"])).toEqual([2, "ok"]);
    expect(commands).toEqual(["EVALSHA error", "EVAL ok", "EVALSHA ok"]);
  });

  it("reports Lua errors with the line number of the script as sent", async () => {
    const script = "#!lua flags=allow-key-locking\nlocal x = 1\nreturn redis.call('NOSUCHCOMMAND')";
    await expect(upstash().eval(script, [], [])).rejects.toThrow(/@user_script:3\b/);
  });
});

describe("@upstash/ratelimit", () => {
  const algorithms = {
    fixedWindow: Ratelimit.fixedWindow(5, "30 s"),
    slidingWindow: Ratelimit.slidingWindow(5, "30 s"),
    tokenBucket: Ratelimit.tokenBucket(1, "30 s", 5),
  };

  for (const [name, limiter] of Object.entries(algorithms)) {
    it(`${name}: allows 5 requests per window and denies the 6th`, async () => {
      const ratelimit = new Ratelimit({ redis: upstash(), limiter, prefix: uniquePrefix(), ephemeralCache: false, timeout: 0 });
      const outcomes = [];
      for (let call = 0; call < 6; call++) outcomes.push(await ratelimit.limit("fan-1"));
      expect(outcomes.map((outcome) => outcome.success)).toEqual([true, true, true, true, true, false]);
      expect(outcomes.map((outcome) => outcome.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
      expect((await ratelimit.limit("fan-2")).success).toBe(true);
      expect(await ratelimit.getRemaining("fan-2")).toMatchObject({ remaining: 4 });
    });
  }

  it("admits exactly the limit under concurrent requests", async () => {
    const ratelimit = new Ratelimit({ redis: upstash(), limiter: Ratelimit.slidingWindow(5, "30 s"), prefix: uniquePrefix(), ephemeralCache: false, timeout: 0 });
    const outcomes = await Promise.all(Array.from({ length: 40 }, () => ratelimit.limit("crowd")));
    expect(outcomes.filter((outcome) => outcome.success)).toHaveLength(5);
  });

  it("runs its #!lua scripts through EVALSHA once they are known", async () => {
    const ratelimit = new Ratelimit({ redis: upstash(), limiter: Ratelimit.fixedWindow(5, "30 s"), prefix: uniquePrefix(), ephemeralCache: false, timeout: 0 });
    await ratelimit.limit("warm-up"); // EVALSHA misses unless this bridge has already seen the script, then EVAL
    const commands = recordCommands();
    await ratelimit.limit("fan");
    await ratelimit.limit("fan");
    expect(commands).toEqual(["EVALSHA ok", "EVALSHA ok"]);
  });
});

describe("lifecycle", () => {
  it("serves many concurrent requests and closes with keep-alive connections open", async () => {
    const own = await startUpstashBridge({ port: 0, redisUrl: inject("redisUrl"), token: TOKEN });
    const redis = new Redis({ url: own.url, token: TOKEN, retry: false, enableTelemetry: false });
    const key = uniquePrefix();
    const values = await Promise.all(Array.from({ length: 500 }, () => redis.incr(key)));
    expect(new Set(values).size).toBe(500);
    expect(Math.max(...values)).toBe(500);
    await own.close();
    await expect(redis.get(key)).rejects.toThrow();
  });

  it("gives blocking commands a connection of their own, so they stall nobody", async () => {
    const key = uniquePrefix();
    const popped = rest("/", { body: ["BLPOP", key, 20] });
    // INFO is answered on the shared connection while BLPOP waits (no other test blocks a client).
    while ((await blockedClients()) === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(await rest("/", { body: ["RPUSH", key, "seat-9"] })).toEqual({ status: 200, body: { result: 1 } });
    expect(await popped).toEqual({ status: 200, body: { result: [key, "seat-9"] } });
  });

  it("reconnects when Redis comes back after a restart", async () => {
    const port = await freePort();
    const dataDir = await mkdtemp(path.join(tmpdir(), "bridge-test-redis-"));
    let redisServer = await startRedis({ dataDir, port, persist: false });
    const own = await startUpstashBridge({ port: 0, redisUrl: redisServer.url, token: TOKEN });
    try {
      const redis = new Redis({ url: own.url, token: TOKEN, retry: false, enableTelemetry: false });
      expect(await redis.set("k", "before")).toBe("OK");
      await redisServer.stop();
      await expect(redis.get("k")).rejects.toThrow(/upstash bridge/);
      redisServer = await startRedis({ dataDir, port, persist: false });
      expect(await redis.set("k", "after")).toBe("OK");
      expect(await redis.get("k")).toBe("after");
    } finally {
      await own.close();
      await redisServer.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("fails to start when Redis is unreachable", async () => {
    await expect(startUpstashBridge({ port: 0, redisUrl: "redis://127.0.0.1:1", token: TOKEN })).rejects.toThrow(/cannot reach Redis/);
  });
});

/**
 * Records, from now on, each command the client sends (one entry per command,
 * also inside pipelines) as "NAME ok" or "NAME error".
 */
function recordCommands(): string[] {
  const recorded: string[] = [];
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const response = await realFetch(input, init);
    const sent = asList(typeof init?.body === "string" ? JSON.parse(init.body) : undefined);
    const commands = sent.every(Array.isArray) ? sent : [sent];
    const items = asList(await response.clone().json());
    commands.forEach((command, index) => {
      const [name] = asList(command);
      const failed = response.status !== 200 || hasError(items[index]);
      recorded.push(`${String(name).toUpperCase()} ${failed ? "error" : "ok"}`);
    });
    return response;
  });
  return recorded;
}

async function blockedClients(): Promise<number> {
  const { body } = await rest("/", { body: ["INFO", "clients"] });
  return Number(/blocked_clients:(\d+)/.exec(JSON.stringify(body))?.[1] ?? 0);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function hasError(item: unknown): boolean {
  return typeof item === "object" && item !== null && "error" in item && item.error !== undefined;
}
