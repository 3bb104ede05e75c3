import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { Client, Pool, neonConfig } from "@neondatabase/serverless";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-serverless";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import fc from "fast-check";
import pg from "pg";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { neonRelayConfig, startNeonRelay, terminateScanner } from "../../dev/neon-relay.ts";
import type { NeonRelay } from "../../dev/neon-relay.ts";

const postgresUrl = inject("postgresUrl");
const postgresPort = inject("postgresPort");
const database = new URL(postgresUrl).pathname.slice(1);

let relay: NeonRelay;
let direct: pg.Pool;
/** Errors the driver raised outside a rejected promise; any of them fails the test. */
let unexpectedErrors: Error[] = [];

beforeAll(async () => {
  relay = await startNeonRelay({ port: 0 });
  Object.assign(neonConfig, neonRelayConfig(relay.port), { webSocketConstructor: WebSocket, coalesceWrites: false });
  direct = new pg.Pool({ connectionString: postgresUrl });
});

afterAll(async () => {
  await direct.end();
  await relay.close();
});

afterEach(() => {
  expect(unexpectedErrors).toEqual([]);
  unexpectedErrors = [];
});

function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "")}`;
}

function neonClient(applicationName = uniqueName("relay_test")): Client {
  const client = new Client({ connectionString: postgresUrl, application_name: applicationName });
  client.on("error", (error) => unexpectedErrors.push(error));
  return client;
}

function neonPool(): Pool {
  const pool = new Pool({ connectionString: postgresUrl, max: 4 });
  pool.on("error", (error: Error) => unexpectedErrors.push(error));
  return pool;
}

async function backendCount(applicationName: string): Promise<number> {
  const { rows } = await direct.query<{ count: number }>(
    "select count(*)::int as count from pg_stat_activity where application_name = $1",
    [applicationName],
  );
  return rows[0]?.count ?? -1;
}

/** Polls until `check` holds, for at most ~5 s, so the test never rests on a fixed sleep. */
async function waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}

function relayUrl(query: string): string {
  return `ws://127.0.0.1:${relay.port}/v2${query}`;
}

/** Resolves with the HTTP status the relay answered an upgrade with, or 101 if it accepted. */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.on("error", (error) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

/** Opens a raw WebSocket through the relay to `address` and collects what it receives. */
async function openRelaySocket(address: string): Promise<{ ws: WebSocket; received: Buffer[]; closed: Promise<number> }> {
  const ws = new WebSocket(relayUrl(`?address=${address}`));
  const received: Buffer[] = [];
  ws.on("message", (data: Buffer) => received.push(data));
  const closed = new Promise<number>((resolve) => ws.once("close", resolve));
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  return { ws, received, closed };
}

/** A protocol 3.0 StartupMessage (no type byte: int32 length, int32 version, key/value pairs). */
function startupMessage(parameters: Record<string, string>): Buffer {
  const pairs = Object.entries(parameters).flatMap(([key, value]) => [key, value]);
  const body = Buffer.from(`${pairs.join("\0")}\0\0`);
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + body.length, 0);
  header.writeInt32BE(196_608, 4);
  return Buffer.concat([header, body]);
}

const TERMINATE_MESSAGE = Buffer.from([0x58, 0, 0, 0, 4]);

/** A TCP server for one connection that never closes it itself; `endedWith` resolves with all bytes once the client ends it. */
async function listenForOneConnection(): Promise<{
  port: number;
  connection: Promise<Socket>;
  endedWith: Promise<Buffer>;
  close(): void;
}> {
  const server = createServer();
  const connection = new Promise<Socket>((resolve) => server.once("connection", resolve));
  const endedWith = connection.then(
    (socket) =>
      new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        socket.on("error", () => undefined); // a reset after the test is not what it checks
        socket.on("data", (chunk: Buffer) => chunks.push(chunk));
        socket.on("end", () => resolve(Buffer.concat(chunks)));
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { port: address.port, connection, endedWith, close: () => server.close() };
}

describe("the Neon driver through the relay", () => {
  it("runs simple queries through Client", async () => {
    const client = neonClient();
    await client.connect();
    const { rows } = await client.query<{ answer: number; port: number }>(
      "select 40 + $1::int as answer, inet_server_port() as port",
      [2],
    );
    await client.end();
    expect(rows).toEqual([{ answer: 42, port: postgresPort }]);
  });

  it("runs queries through Pool, including on a checked-out client", async () => {
    const pool = neonPool();
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => pool.query<{ n: number }>("select $1::int * 10 as n", [n])));
    const checkedOut = await pool.connect();
    const { rows } = await checkedOut.query<{ database: string }>("select current_database() as database");
    checkedOut.release();
    await pool.end();
    expect(results.map((result) => result.rows[0]?.n)).toEqual([10, 20, 30, 40, 50, 60]);
    expect(rows).toEqual([{ database }]);
  });

  it("commits one transaction and rolls back another", async () => {
    const table = uniqueName("relay_tx");
    await direct.query(`create table ${table} (id int primary key, note text not null)`);
    const client = neonClient();
    await client.connect();
    await client.query("begin");
    await client.query(`insert into ${table} values (1, 'kept')`);
    await client.query("commit");
    await client.query("begin");
    await client.query(`insert into ${table} values (2, 'discarded')`);
    await client.query("rollback");
    await client.end();

    const { rows } = await direct.query(`select id, note from ${table} order by id`);
    expect(rows).toEqual([{ id: 1, note: "kept" }]);
  });

  it("serves concurrent clients on separate connections without mixing their bytes", async () => {
    const clients = Array.from({ length: 12 }, () => neonClient());
    await Promise.all(clients.map((client) => client.connect()));
    // Large payloads span many frames and TCP segments in both directions.
    const payloads = clients.map(() => randomBytes(150_000).toString("base64"));
    const results = await Promise.all(
      clients.map((client, index) =>
        client.query<{ pid: number; echo: string }>("select pg_backend_pid() as pid, $1::text as echo", [payloads[index]]),
      ),
    );
    await Promise.all(clients.map((client) => client.end()));

    expect(results.map((result) => result.rows[0]?.echo)).toEqual(payloads);
    expect(new Set(results.map((result) => result.rows[0]?.pid)).size).toBe(clients.length);
  });

  it("streams a result far larger than the relay's WebSocket buffer", async () => {
    const client = neonClient();
    await client.connect();
    const seed = randomUUID();
    const { rows } = await client.query<{ big: string }>("select repeat(md5($1), 300000) as big", [seed]);
    await client.end();
    const expected = createHash("md5").update(seed).digest("hex").repeat(300_000);
    expect(rows[0]?.big.length).toBe(expected.length);
    expect(rows[0]?.big === expected).toBe(true);
  });

  it("closes the Postgres connection when the client ends", async () => {
    const applicationName = uniqueName("relay_end");
    const client = neonClient(applicationName);
    await client.connect();
    expect(await backendCount(applicationName)).toBe(1);
    await client.end();
    await waitUntil(async () => (await backendCount(applicationName)) === 0, "the backend is gone");
  });

  it("ends the client when Postgres drops the connection", async () => {
    const client = new Client({ connectionString: postgresUrl });
    const errors: Error[] = [];
    client.on("error", (error) => errors.push(error));
    await client.connect();
    const ended = new Promise<void>((resolve) => client.once("end", resolve));
    const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
    await direct.query("select pg_terminate_backend($1)", [rows[0]?.pid]);
    await ended;
    await expect(client.query("select 1")).rejects.toThrow();
    expect(errors.map((error) => error.message)).toEqual([
      "terminating connection due to administrator command",
      "Connection terminated unexpectedly",
    ]);
  });

  it("works with drizzle-orm's neon-serverless driver", async () => {
    const tableName = uniqueName("relay_drizzle");
    await direct.query(`create table ${tableName} (id int primary key, seat text not null)`);
    const seats = pgTable(tableName, { id: integer("id").primaryKey(), seat: text("seat").notNull() });
    const pool = neonPool();
    const db = drizzle({ client: pool });

    await db.insert(seats).values([{ id: 1, seat: "A1" }, { id: 2, seat: "A2" }]);
    await db.transaction(async (tx) => {
      await tx.update(seats).set({ seat: "B1" }).where(eq(seats.id, 1));
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.delete(seats);
        throw new Error("abandon");
      }),
    ).rejects.toThrow("abandon");
    const selected = await db.select().from(seats).orderBy(seats.id);
    await pool.end();

    expect(selected).toEqual([{ id: 1, seat: "B1" }, { id: 2, seat: "A2" }]);
    const { rows } = await direct.query(`select id, seat from ${tableName} order by id`);
    expect(rows).toEqual(selected);
  });
});

describe("the relay itself", () => {
  // The Neon driver sends Terminate on client.end() but never closes its WebSocket, and a
  // server need not hang up first, so the relay itself must end both sides.
  it("ends the upstream after forwarding Terminate, then closes the WebSocket", async () => {
    const upstream = await listenForOneConnection();
    const socket = await openRelaySocket(`127.0.0.1:${upstream.port}`);
    const query = Buffer.from("Q\0\0\0\x0dselect 1\0");
    const conversation = Buffer.concat([startupMessage({ user: "postgres" }), query, TERMINATE_MESSAGE]);
    // One frame, with bytes after Terminate that must never reach the server.
    socket.ws.send(Buffer.concat([conversation, Buffer.from("Qjunk")]));

    expect(await upstream.endedWith).toEqual(conversation);
    expect(await socket.closed).toBe(1000);
    upstream.close();
  });

  it("ends the upstream when the WebSocket drops without Terminate", async () => {
    const upstream = await listenForOneConnection();
    const socket = await openRelaySocket(`127.0.0.1:${upstream.port}`);
    const startup = startupMessage({ user: "postgres" });
    socket.ws.send(startup, () => socket.ws.terminate());

    expect(await upstream.endedWith).toEqual(startup);
    upstream.close();
  });

  it("stops reading from the server while the client is not reading, and loses nothing", async () => {
    const total = 64 * 1024 * 1024;
    const upstream = await listenForOneConnection();
    const socket = await openRelaySocket(`127.0.0.1:${upstream.port}`);
    socket.ws.pause();
    const server = await upstream.connection;

    let written = 0;
    const pump = (): void => {
      while (written < total) {
        const chunk = Buffer.alloc(64 * 1024, written / (64 * 1024));
        written += chunk.length;
        if (!server.write(chunk)) return void server.once("drain", pump);
      }
    };
    pump();
    let previous = -1;
    await waitUntil(async () => {
      const stalled = written === previous;
      previous = written;
      return stalled;
    }, "the server can no longer write");
    expect(written).toBeLessThan(total / 2);

    socket.ws.resume();
    await waitUntil(async () => socket.received.reduce((sum, data) => sum + data.length, 0) === total, "every byte arrives");
    const received = Buffer.concat(socket.received);
    const chunkIndexes = Array.from({ length: total / (64 * 1024) }, (_, index) => received[index * 64 * 1024 + 100]);
    expect(chunkIndexes).toEqual(Array.from({ length: total / (64 * 1024) }, (_, index) => index % 256));
    socket.ws.close();
    upstream.close();
  });

  it("refuses a missing or disallowed address", async () => {
    expect(await upgradeStatus(relayUrl(""))).toBe(400);
    expect(await upgradeStatus(relayUrl("?address=127.0.0.1"))).toBe(400);
    expect(await upgradeStatus(relayUrl("?address=10.0.0.1:5432"))).toBe(403);
    expect(await upgradeStatus(relayUrl("?address=db.example.com:5432"))).toBe(403);
    expect(await upgradeStatus(`ws://127.0.0.1:${relay.port}/v1?address=localhost:${postgresPort}`)).toBe(404);
    expect(await upgradeStatus(relayUrl(`?address=localhost:${postgresPort}`))).toBe(101);

    const client = new Client({ connectionString: postgresUrl.replace("127.0.0.1", "db.example.com") });
    client.on("error", () => undefined);
    await expect(client.connect()).rejects.toBeDefined();
  });

  it("honours a custom allow-list", async () => {
    const strict = await startNeonRelay({ port: 0, allowedHosts: ["localhost"] });
    const url = (host: string) => `ws://127.0.0.1:${strict.port}/v2?address=${host}:${postgresPort}`;
    try {
      expect(await upgradeStatus(url("127.0.0.1"))).toBe(403);
      expect(await upgradeStatus(url("localhost"))).toBe(101);
    } finally {
      await strict.close();
    }
  });

  it("ends the connections it relays when closed", async () => {
    const own = await startNeonRelay({ port: 0 });
    const upstream = await listenForOneConnection();
    const ws = new WebSocket(`ws://127.0.0.1:${own.port}/v2?address=127.0.0.1:${upstream.port}`);
    const closed = new Promise<number>((resolve) => ws.once("close", resolve));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    await upstream.connection;

    await own.close();
    expect(await upstream.endedWith).toEqual(Buffer.alloc(0));
    expect(await closed).toBe(1006);
    upstream.close();
  });
});

describe("terminateScanner", () => {
  const typedMessage = fc
    .tuple(fc.integer({ min: 0x41, max: 0x7a }).filter((type) => type !== 0x58), fc.uint8Array({ maxLength: 40 }))
    .map(([type, body]) => {
      const header = Buffer.alloc(5);
      header.writeUInt8(type, 0);
      header.writeInt32BE(4 + body.length, 1);
      return Buffer.concat([header, body]);
    });
  // Bodies are random, so they contain 'X' 0 0 0 4 sequences that must not count.
  const sneakyBody = fc.constant(Buffer.from([0x51, 0, 0, 0, 9, 0x58, 0, 0, 0, 4]));

  function splitAt(stream: Buffer, cuts: number[]): Buffer[] {
    const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
    return [0, ...points].map((start, index) => stream.subarray(start, points[index] ?? stream.length));
  }

  it("finds the Terminate at a message boundary however the stream is chunked", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(typedMessage, sneakyBody), { maxLength: 12 }),
        fc.uint8Array({ maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (messages, trailing, cuts) => {
          const before = Buffer.concat([startupMessage({ user: "postgres" }), ...messages]);
          const stream = Buffer.concat([before, TERMINATE_MESSAGE, trailing]);
          const scan = terminateScanner();
          let consumed = 0;
          let foundAt = -1;
          for (const chunk of splitAt(stream, cuts)) {
            const end = scan(chunk);
            if (end >= 0) {
              foundAt = consumed + end;
              break;
            }
            consumed += chunk.length;
          }
          expect(foundAt).toBe(before.length + TERMINATE_MESSAGE.length);
        },
      ),
    );
  });

  it("stops looking once the client asks for encryption", () => {
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(80_877_103, 4);
    const scan = terminateScanner();
    expect(scan(Buffer.concat([sslRequest, TERMINATE_MESSAGE]))).toBe(-1);
  });
});
