/**
 * Where the Worker runs during a load: `single`, one workerd for the Worker
 * and its Durable Objects (workerd runs both on one thread); or `split`, as in
 * production, the stateless Worker in several workerd processes behind a load
 * balancer (lib/nginx.ts), and the objects in one process of their own, which
 * the Workers reach through Miniflare's dev registry (lib/miniflare-host.ts).
 */
import path from "node:path";
import { startHost, WORKER_NAME, type BenchApp, type WorkerSource } from "./app.ts";
import { startLoadBalancer, type LoadBalancer } from "./nginx.ts";

export type TopologyKind = "single" | "split";

/** The objects' Worker in the split topology. */
const OBJECTS_WORKER = `${WORKER_NAME}-objects`;

/** A running topology. */
export interface Topology {
  kind: TopologyKind;
  /** Where clients send requests: the one Worker, or the load balancer. */
  url: string;
  /** The hosts that serve requests. */
  workers: BenchApp[];
  /** The host whose workerd runs the Durable Objects (single: the one host). */
  objects: BenchApp;
  balancer: LoadBalancer | undefined;
  /** CPU milliseconds used so far, by process group. */
  cpuMs(): Record<string, number>;
  stop(): Promise<void>;
}


/** Starts `kind` with its hosts' storage under `runDir`; `statelessProcesses` Workers in the split topology. */
export async function startTopology(kind: TopologyKind, source: WorkerSource, runDir: string, statelessProcesses: number): Promise<Topology> {
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const part of started.splice(0).reverse()) await part.stop().catch(() => undefined);
  };
  const host = async (workerName: string, extra: { objectsFrom?: { workerName: string; registryDir: string }; registryDir?: string } = {}) => {
    const app = await startHost(source.repoRoot, { projectDir: source.projectDir, bundle: source.bundle, envFile: source.envFile, runDir: path.join(runDir, workerName), workerName, ...extra });
    started.push(app);
    return app;
  };
  try {
    if (kind === "single") {
      const app = await host(WORKER_NAME);
      return { kind, url: app.url, workers: [app], objects: app, balancer: undefined, cpuMs: () => hostCpu([app], "workerd", "hosts"), stop: stopAll };
    }
    const registryDir = path.join(runDir, "registry");
    const objects = await host(OBJECTS_WORKER, { registryDir });
    const workers = await Promise.all(Array.from({ length: statelessProcesses }, (_, i) => host(`${WORKER_NAME}-${i + 1}`, { objectsFrom: { workerName: OBJECTS_WORKER, registryDir } })));
    const balancer = await startLoadBalancer(
      path.join(runDir, "nginx"),
      workers.map((worker) => Number(new URL(worker.url).port)),
    );
    started.push(balancer);
    return {
      kind,
      url: balancer.url,
      workers,
      objects,
      balancer,
      cpuMs: () => ({ ...hostCpu(workers, "workerd_workers", "hosts"), workerd_objects: objects.cpuMs().workerd, hosts_objects: objects.cpuMs().wrangler, nginx: balancer.cpuMs() }),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The workerd and host-process CPU of `apps`, summed, under the given group names. */
function hostCpu(apps: BenchApp[], workerdGroup: string, hostGroup: string): Record<string, number> {
  let workerd = 0;
  let hosts = 0;
  for (const app of apps) {
    const cpu = app.cpuMs();
    workerd += cpu.workerd;
    hosts += cpu.wrangler;
  }
  return { [workerdGroup]: workerd, [hostGroup]: hosts };
}
