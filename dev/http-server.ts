/** What the local stand-ins' HTTP servers share: listening on loopback, closing with held requests, JSON answers. */
import { once } from "node:events";
import type { Server, ServerResponse } from "node:http";

/** A server listening on 127.0.0.1. */
export interface LoopbackServer {
  url: string;
  port: number;
  /** Runs the stand-in's own clean-up, drops every open connection (held requests included) and waits for the server to close. */
  close(): Promise<void>;
}

/** Starts `server` on 127.0.0.1:`port` (0 = ephemeral); `beforeClose` is the stand-in's own clean-up, run by `close()`. */
export async function listenOnLoopback(server: Server, port: number, beforeClose: () => void = () => undefined): Promise<LoopbackServer> {
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`the server on port ${port} has no TCP address`);
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    async close() {
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      beforeClose();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Answers `body` as JSON. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}
