/**
 * A CPU profile of the Worker under load, taken through the V8 inspector that
 * `wrangler dev` exposes (`--inspector-port`), summarised as self time per
 * function. Set `BENCH_PROFILE=<folder>` to have a benchmark write the raw
 * `.cpuprofile` (open it in Chrome DevTools) and the summary there.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import WebSocket from "ws";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

/** A finished profile's summary. */
export interface ProfileSummary {
  /** Self time per function, largest first, as text. */
  text: string;
  /** Profiled time (ms) spent in each named function and what it called, over the samples' time. */
  inclusiveMs(functionName: string): number;
  /** Profiled time (ms) that was not idle. */
  busyMs: number;
}

/** A started profile: `stop` ends it and writes it to `dir` under `name`. */
export interface RunningProfile {
  stop(dir: string, name: string): Promise<ProfileSummary>;
}

/** Starts profiling the Worker `workerName` behind `inspectorPort`. */
export async function startProfile(inspectorPort: number, workerName = "edge-tickets"): Promise<RunningProfile> {
  // workerd lists one target per Worker; ours is the one named after it.
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as { id: string; title?: string; webSocketDebuggerUrl: string }[];
  const target = targets.find((t) => t.id === `core:user:${workerName}`) ?? targets[0];
  if (!target) throw new Error(`the inspector on port ${inspectorPort} lists no Worker`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  });
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 200 });
  await send("Profiler.start");
  return {
    async stop(dir, name) {
      const { profile } = (await send("Profiler.stop")) as { profile: Profile };
      socket.close();
      await writeFile(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
      const summary = summarise(profile);
      await writeFile(path.join(dir, `${name}.txt`), summary.text);
      return summary;
    },
  };
}

/** Self time per function, and inclusive time by function name. */
function summarise(profile: Profile): ProfileSummary {
  const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const msPerSample = total > 0 ? (profile.endTime - profile.startTime) / 1000 / total : 0;
  const self = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (node.hitCount ?? 0));
  }
  const lines = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 80)
    .map(([key, hits]) => `${((100 * hits) / Math.max(total, 1)).toFixed(1).padStart(5)}%  ${key}`);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const subtreeHits = (node: ProfileNode): number => (node.hitCount ?? 0) + (node.children ?? []).reduce((sum, id) => sum + subtreeHits(byId.get(id) as ProfileNode), 0);
  const idle = profile.nodes.filter((node) => node.callFrame.functionName === "(idle)").reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  return {
    text: `${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s\n${lines.join("\n")}\n`,
    inclusiveMs(functionName) {
      // Outermost calls only, so recursion is not counted twice.
      let hits = 0;
      const visit = (node: ProfileNode, inside: boolean) => {
        const match = node.callFrame.functionName === functionName;
        if (match && !inside) hits += subtreeHits(node);
        for (const id of node.children ?? []) visit(byId.get(id) as ProfileNode, inside || match);
      };
      const root = profile.nodes[0];
      if (root) visit(root, false);
      return hits * msPerSample;
    },
    busyMs: (total - idle) * msPerSample,
  };
}
