/**
 * Reads a waiting room's request counts (`requestCounts()`: the requests its
 * Durable Object served, per second and kind, kept in the object's own SQLite
 * so an object that workerd evicts and restarts loses none) from outside,
 * without that read counting as a request of any kind: the app has no HTTP
 * route for it, so the benchmark runs the Worker from a bench-only entry
 * written into the snapshot. It re-exports the app's entry unchanged (same
 * handlers, same Durable Object classes) and answers a few extra paths,
 * guarded by a random secret, before handing everything else to the app:
 *
 * - `waiting-room/<eventId>`: the room's counts, summed per kind;
 * - `lobby/<eventId>/join` (POST `{ accountIds }`): each account joins its
 *   lobby shard (by account hash, as the lobby route does after its checks)
 *   through the shard's own `join`, called inside the shard for a batch at a
 *   time (the entry's `LobbyShard` is the app's, plus `benchJoin`): one RPC
 *   per join costs 2-7 ms in the local runtime and an HTTP join ~5 ms of CPU,
 *   too slow for a lobby of millions here. Each join still counts as one
 *   `join` request in the shard's request log, as it would in production;
 * - `lobby/<eventId>/stats`: the room's counts and ticks, and every shard's
 *   counts and storage bytes;
 * - `kv-puts/<eventId>`: the KV writes the room made, per key and second
 *   (the entry's `WaitingRoom` is the app's with its KV binding wrapped to
 *   count each `put` in the object's own SQLite, failed ones included).
 *
 * The repository's own files are not touched. The objects count only when the
 * Worker runs with OBJECT_REQUEST_LOG=1 (pass ROOM_PROBE_VARS to startApp).
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { REPO_ROOT, type LocalStack } from "../../dev/stack.ts";
import { prepareWorker, snapshotProject, startApp, startHost, tokenKeys, WORKER_NAME, type BenchApp } from "./app.ts";
import { say, type Cleanup } from "./scenario.ts";

/** The probe entry's file name in the snapshot (pass it to startApp as `entry`). */
export const ROOM_PROBE_ENTRY = "bench-room-probe.ts";
/** The Worker vars the probe needs: the objects keep their request counts. */
export const ROOM_PROBE_VARS = { OBJECT_REQUEST_LOG: "1" } as const;
/** Under /admin/*: wrangler.toml's run_worker_first only sends /api, /admin, ... to the Worker. */
const PROBE_PATH = "/admin/__bench/";

/**
 * Where the room's objects run: `single`, the Worker and every object in one
 * workerd (one thread: a tick's visits to the shards run one after another);
 * or `shards_apart`, the lobby shards in a workerd of their own, reached
 * through Miniflare's dev registry as lib/topology.ts's split topology reaches
 * its objects, so a tick's visits run beside the room's own work, as in
 * production, where an event's shards are separate objects.
 */
export type RoomTopology = "single" | "shards_apart";

/** The shards' Worker in the `shards_apart` topology. */
const SHARDS_WORKER = `${WORKER_NAME}-shards`;

/**
 * Snapshots the repository into `workDir`/project, writes the probe entry into
 * the snapshot and starts the Worker from it (its objects counting their
 * requests) in `topology` (default `single`), stopped by `cleanup`. Returns
 * the app (the host of the Worker and the room) and the probe's secret.
 */
export async function startRoomProbeApp(options: {
  workDir: string;
  stack: LocalStack;
  signingKey: string;
  cleanup: Cleanup;
  topology?: RoomTopology;
}): Promise<{ app: BenchApp; secret: string; stop(): Promise<void> }> {
  const { workDir, stack, signingKey, cleanup } = options;
  const projectDir = path.join(workDir, "project");
  await snapshotProject(REPO_ROOT, projectDir);
  const secret = await writeRoomProbe(projectDir);
  if ((options.topology ?? "single") === "single") {
    const starting = startApp({ repoRoot: REPO_ROOT, projectDir, runDir: path.join(workDir, "wrangler"), stack, signingKey, entry: ROOM_PROBE_ENTRY, vars: ROOM_PROBE_VARS });
    cleanup.add("worker", async () => (await starting.catch(() => undefined))?.stop());
    const app = await starting;
    say(`Worker healthy at ${app.url}`);
    return { app, secret, stop: () => app.stop() };
  }
  const runDir = path.join(workDir, "wrangler");
  const { bundle, envFile } = await prepareWorker({
    repoRoot: REPO_ROOT,
    projectDir,
    stack,
    keys: await tokenKeys(signingKey),
    envDir: runDir,
    bundle: path.join(runDir, "dist"),
    entry: ROOM_PROBE_ENTRY,
    vars: ROOM_PROBE_VARS,
  });
  const registryDir = path.join(runDir, "registry");
  const source = { projectDir, bundle, envFile, registryDir };
  // Each host announces itself in the registry and points the other's bindings there: the shards call the room (a stale list), the room its shards.
  const shards = startHost(REPO_ROOT, { ...source, runDir: path.join(runDir, SHARDS_WORKER), workerName: SHARDS_WORKER, objectsFrom: { workerName: WORKER_NAME, registryDir, bindings: ["EVENT_INVENTORY", "SEAT_MAP_FEED", "WAITING_ROOM"] } });
  cleanup.add("shards' worker", async () => (await shards.catch(() => undefined))?.stop());
  await shards;
  const starting = startHost(REPO_ROOT, { ...source, runDir: path.join(runDir, WORKER_NAME), workerName: WORKER_NAME, objectsFrom: { workerName: SHARDS_WORKER, registryDir, bindings: ["LOBBY_SHARD"] } });
  cleanup.add("worker", async () => (await starting.catch(() => undefined))?.stop());
  const app = await starting;
  say(`Worker healthy at ${app.url}; its lobby shards in a workerd of their own`);
  const shardsHost = await shards;
  return { app, secret, stop: async () => void (await Promise.all([app.stop(), shardsHost.stop()])) };
}

/** Writes the probe entry into the snapshot; returns the secret its paths want. */
export async function writeRoomProbe(projectDir: string): Promise<string> {
  const secret = randomBytes(24).toString("hex");
  const source = `// Written by bench/lib/room-probe.ts into the bench snapshot only.
import worker from "./workers/index";
import { shardName, shardOf } from "./core/waiting-room/lobby-shards";
import { LobbyShard as AppLobbyShard, type ShardJoin } from "./durable-objects/waiting-room/lobby-shard";
import { WaitingRoom as AppWaitingRoom } from "./durable-objects/waiting-room";
export * from "./workers/index";

/** The app's room, with its KV binding counting each put (per key and second) in the room's own storage. */
export class WaitingRoom extends AppWaitingRoom {
  constructor(ctx: DurableObjectState, env: Env) {
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS bench_kv_puts (key TEXT NOT NULL, second INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (key, second))");
    const kv = env.QUEUE_STATE;
    const counted = new Proxy(kv, {
      get(target, property) {
        if (property === "put") {
          return (key: string, ...rest: unknown[]) => {
            ctx.storage.sql.exec("INSERT INTO bench_kv_puts (key, second, n) VALUES (?, ?, 1) ON CONFLICT (key, second) DO UPDATE SET n = n + 1", key, Math.floor(Date.now() / 1000));
            return (target.put as (...args: unknown[]) => Promise<void>)(key, ...rest);
          };
        }
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    super(ctx, { ...env, QUEUE_STATE: counted });
  }

  kvPuts(): { key: string; second: number; n: number }[] {
    return this.ctx.storage.sql.exec<{ key: string; second: number; n: number }>("SELECT key, second, n FROM bench_kv_puts ORDER BY second").toArray();
  }
}

/** The app's shard, plus joins in bulk inside the object (each still counted as a join request). */
export class LobbyShard extends AppLobbyShard {
  async benchJoin(requests: ShardJoin[]): Promise<number[]> {
    const keys: number[] = [];
    for (const request of requests) {
      const joined = await this.join(request);
      keys.push(joined.ok ? joined.orderKey : -1);
    }
    return keys;
  }
}

const PROBE = ${JSON.stringify(PROBE_PATH)};
const SECRET = ${JSON.stringify(secret)};

export default {
  ...worker,
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const at = request.url.indexOf(PROBE);
    if (at < 0) return worker.fetch(request, env, ctx);
    if (request.headers.get("x-bench-probe") !== SECRET) return new Response("forbidden", { status: 403 });
    const [kind, eventId = "", action = ""] = request.url.slice(at + PROBE.length).split(/[?#]/)[0]?.split("/") ?? [];
    const room = env.WAITING_ROOM.getByName(eventId);
    if (kind === "waiting-room") {
      const served: Record<string, number> = {};
      for (const row of await room.requestCounts()) served[row.kind] = (served[row.kind] ?? 0) + row.n;
      return Response.json(served);
    }
    if (kind === "lobby" && action === "join") {
      const { accountIds } = (await request.json()) as { accountIds: string[] };
      const shards = await room.lobbyShards(eventId);
      const byShard = new Map<number, number[]>();
      accountIds.forEach((accountId, i) => {
        const shard = shardOf(accountId, shards);
        byShard.set(shard, [...(byShard.get(shard) ?? []), i]);
      });
      const keys = new Array<number>(accountIds.length).fill(-1);
      await Promise.all(
        [...byShard].map(async ([shard, indexes]) => {
          const stub = env.LOBBY_SHARD.getByName(shardName(eventId, shard)) as unknown as DurableObjectStub<LobbyShard>;
          const joined = await stub.benchJoin(indexes.map((i) => ({ eventId, shard, accountId: accountIds[i] ?? "", evidence: null })));
          joined.forEach((key, j) => (keys[indexes[j] ?? 0] = key));
        }),
      );
      return Response.json({ keys });
    }
    if (kind === "kv-puts") {
      return Response.json(await (room as unknown as DurableObjectStub<WaitingRoom>).kvPuts());
    }
    if (kind === "lobby" && action === "stats") {
      const shards = await room.lobbyShards(eventId);
      const perShard = await Promise.all(
        Array.from({ length: shards }, async (_, shard) => {
          const stub = env.LOBBY_SHARD.getByName(shardName(eventId, shard));
          return { requests: await stub.requestCounts(), bytes: await stub.storageBytes() };
        }),
      );
      return Response.json({ room: { requests: await room.requestCounts(), ticks: await room.tickLog() }, shards: perShard });
    }
    return new Response("no such probe", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
`;
  await writeFile(path.join(projectDir, ROOM_PROBE_ENTRY), source);
  return secret;
}

async function probe(appUrl: string, secret: string, route: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${appUrl}${PROBE_PATH}${route}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "x-bench-probe": secret, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(300_000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`the room probe answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** The room's served requests by kind, through the probe (requestCounts() itself counts nothing). */
export async function servedRequests(appUrl: string, secret: string, eventId: string): Promise<Record<string, number>> {
  return z.record(z.string(), z.number()).parse(await probe(appUrl, secret, `waiting-room/${eventId}`));
}

/** Joins each account to its lobby shard through the shard's join RPC; their order keys, in the same order (-1: refused). */
export async function joinShards(appUrl: string, secret: string, eventId: string, accountIds: string[]): Promise<number[]> {
  return z.object({ keys: z.array(z.number()) }).parse(await probe(appUrl, secret, `lobby/${eventId}/join`, { accountIds })).keys;
}

const requestCountSchema = z.object({ second: z.number(), kind: z.string(), n: z.number() });
const lobbyStatsSchema = z.object({
  room: z.object({ requests: z.array(requestCountSchema), ticks: z.array(z.object({ at: z.number(), ms: z.number(), admitted: z.number(), waiting: z.number(), phases: z.object({ step: z.number(), grant: z.number(), record: z.number(), publish: z.number() }) })) }),
  shards: z.array(z.object({ requests: z.array(requestCountSchema), bytes: z.number() })),
});
export type LobbyStats = z.infer<typeof lobbyStatsSchema>;

/** The room's request counts and ticks, and each shard's request counts and storage bytes. */
export async function lobbyStats(appUrl: string, secret: string, eventId: string): Promise<LobbyStats> {
  return lobbyStatsSchema.parse(await probe(appUrl, secret, `lobby/${eventId}/stats`));
}

const kvPutsSchema = z.array(z.object({ key: z.string(), second: z.number(), n: z.number() }));

/** The KV writes an event's room made, per key and second (failed ones included). */
export async function kvPuts(appUrl: string, secret: string, eventId: string): Promise<z.infer<typeof kvPutsSchema>> {
  return kvPutsSchema.parse(await probe(appUrl, secret, `kv-puts/${eventId}`));
}

/** The most requests any one second saw, over all kinds, in `counts`. */
export function peakPerSecond(counts: { second: number; n: number }[]): number {
  const perSecond = new Map<number, number>();
  for (const { second, n } of counts) perSecond.set(second, (perSecond.get(second) ?? 0) + n);
  return Math.max(0, ...perSecond.values());
}

/** All requests of `after` not yet in `before`, summed over the kinds. */
export function servedDelta(before: Record<string, number>, after: Record<string, number>): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const kind of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const delta = (after[kind] ?? 0) - (before[kind] ?? 0);
    if (delta !== 0) byKind[kind] = delta;
    total += delta;
  }
  return { total, byKind };
}
