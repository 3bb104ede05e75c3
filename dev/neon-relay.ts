import { createServer, STATUS_CODES } from "node:http";
import type { IncomingMessage } from "node:http";
import { createConnection } from "node:net";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { RawData, WebSocket } from "ws";
import { listenOnLoopback } from "./http-server.ts";

/** A running relay: the port it listens on and how to stop it. */
export interface NeonRelay {
  port: number;
  close(): Promise<void>;
}

/** The `neonConfig` settings that send the Neon driver through a relay. */
export interface NeonRelayConfig {
  wsProxy: (host: string, port: number | string) => string;
  useSecureWebSocket: false;
  pipelineTLS: false;
  pipelineConnect: false;
}

const DEFAULT_ALLOWED_HOSTS = ["127.0.0.1", "localhost"];
/** Above this many bytes queued for the client WebSocket, stop reading from Postgres. */
const WEBSOCKET_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Starts the relay on 127.0.0.1:port (port 0 = ephemeral). It plays the part of
 * Neon's WebSocket proxy: `ws://127.0.0.1:port/v2?address=host:port` becomes a
 * TCP connection to that Postgres. Only relays to hosts in `allowedHosts`
 * (default ["127.0.0.1","localhost"]).
 */
export async function startNeonRelay(options: { port: number; allowedHosts?: string[] }): Promise<NeonRelay> {
  const allowedHosts = new Set(options.allowedHosts ?? DEFAULT_ALLOWED_HOSTS);
  const upstreams = new Set<Socket>();
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_request, response) => {
    response.writeHead(426, { "content-type": "text/plain" }).end("WebSocket upgrade required\n");
  });

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const target = parseTarget(request);
    if ("status" in target) return rejectUpgrade(socket, target.status, target.message);
    if (!allowedHosts.has(target.host)) return rejectUpgrade(socket, 403, `host ${target.host} is not allowed`);
    wss.handleUpgrade(request, socket, head, (ws) => {
      const tcp = createConnection({ host: target.host, port: target.port });
      upstreams.add(tcp);
      tcp.on("close", () => upstreams.delete(tcp));
      relay(ws, tcp);
    });
  });

  const listening = await listenOnLoopback(server, options.port, () => {
    for (const ws of wss.clients) ws.terminate();
    for (const tcp of upstreams) tcp.destroy();
  });
  return { port: listening.port, close: listening.close };
}

/** The neonConfig settings a client uses to go through a relay on `relayPort`. */
export function neonRelayConfig(relayPort: number): NeonRelayConfig {
  return {
    // The driver opens `ws://` + this string when useSecureWebSocket is false.
    wsProxy: (host, port) => `127.0.0.1:${relayPort}/v2?address=${host}:${port}`,
    useSecureWebSocket: false,
    pipelineTLS: false,
    pipelineConnect: false,
  };
}

type Target = { host: string; port: number } | { status: 400 | 404; message: string };

function parseTarget(request: IncomingMessage): Target {
  const url = new URL(request.url ?? "/", "http://relay");
  if (url.pathname !== "/v2") return { status: 404, message: "use /v2?address=host:port" };
  const address = url.searchParams.get("address");
  const colon = address?.lastIndexOf(":") ?? -1;
  if (address == null || colon <= 0) return { status: 400, message: "address=host:port is required" };
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return { status: 400, message: "address has an invalid port" };
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port };
}

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** Pipes bytes both ways with back-pressure; either side closing closes the other. */
function relay(ws: WebSocket, tcp: Socket): void {
  const findTerminate = terminateScanner();
  let terminated = false;

  ws.on("message", (data) => {
    if (terminated) return;
    const chunk = toBuffer(data);
    const end = findTerminate(chunk);
    if (end >= 0) {
      // The Neon driver sends Terminate on client.end() but never closes its WebSocket.
      terminated = true;
      tcp.end(chunk.subarray(0, end), () => ws.close(1000));
    } else if (!tcp.write(chunk)) {
      ws.pause();
    }
  });
  tcp.on("drain", () => ws.resume());

  tcp.on("data", (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, () => {
      if (tcp.isPaused() && ws.bufferedAmount < WEBSOCKET_HIGH_WATER_MARK) tcp.resume();
    });
    if (ws.bufferedAmount >= WEBSOCKET_HIGH_WATER_MARK) tcp.pause();
  });

  // Errors are followed by 'close' on both sides, which is where we clean up.
  ws.on("error", () => undefined);
  tcp.on("error", () => undefined);
  // Resume so a paused socket can still read the server's FIN and close.
  ws.on("close", () => tcp.end().resume());
  tcp.on("close", (hadError) => ws.close(hadError ? 1011 : 1000));
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const TERMINATE = 0x58; // 'X'

/**
 * Follows the client→server Postgres message stream across arbitrary chunk
 * boundaries. Each call returns the offset just past a Terminate message in
 * that chunk, or -1. The first message has no type byte (int32 length, int32
 * protocol code); later ones are a type byte then an int32 length that counts
 * itself. After an SSL or GSSAPI encryption request, or a malformed length,
 * the stream may be encrypted or unparseable, so it stops looking.
 */
export function terminateScanner(): (chunk: Uint8Array) => number {
  const header = Buffer.alloc(8);
  let headerLength = 0;
  let bodyLeft = 0;
  let inStartup = true;
  let watching = true;

  return (chunk) => {
    let offset = 0;
    while (watching && offset < chunk.length) {
      if (bodyLeft > 0) {
        const skipped = Math.min(bodyLeft, chunk.length - offset);
        bodyLeft -= skipped;
        offset += skipped;
        continue;
      }
      header[headerLength++] = chunk[offset++] ?? 0;
      if (headerLength < (inStartup ? 8 : 5)) continue;
      headerLength = 0;
      if (inStartup) {
        const length = header.readInt32BE(0);
        const code = header.readInt32BE(4);
        watching = length >= 8 && code !== SSL_REQUEST_CODE && code !== GSSENC_REQUEST_CODE;
        bodyLeft = length - 8;
        inStartup = false;
      } else {
        const length = header.readInt32BE(1);
        if (header[0] === TERMINATE && length === 4) return offset;
        watching = length >= 4;
        bodyLeft = length - 4;
      }
    }
    return -1;
  };
}
