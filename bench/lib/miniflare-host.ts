/**
 * Runs the Worker for a benchmark the way production serves it: workerd, the
 * production bundle (`wrangler deploy --dry-run`, built once by lib/app.ts),
 * the bindings of wrangler.toml via wrangler's own
 * `unstable_getMiniflareWorkerOptions`, driven by Miniflare. `wrangler dev`
 * puts a second workerd in front of the Worker (its reload proxy), which cost
 * as much CPU per request as the Worker itself here; production has no such hop.
 *
 * One host is one workerd process. In the split topology (lib/topology.ts)
 * one host runs the Durable Objects (`role: "objects"`) and others run the
 * stateless Worker with every Durable Object binding pointing at the objects'
 * Worker through Miniflare's dev registry (`scriptName` plus a shared
 * `unsafeDevRegistryPath`): calls cross processes over workerd's debug port,
 * as production's Worker isolates reach the one object of an event.
 *
 * Run as its own process (lib/app.ts starts it) so its CPU is counted apart
 * from the benchmark's:
 *   node --import tsx bench/lib/miniflare-host.ts '<HostConfig as JSON>'
 * Prints `READY <url>` once the Worker answers; stops on SIGTERM.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { z } from "zod";

/** What one host runs. */
export const hostConfigSchema = z.object({
  projectDir: z.string(),
  /** The built bundle: a folder holding one `.js` module (lib/app.ts `buildBundle`). */
  bundle: z.string(),
  envFile: z.string(),
  port: z.number().int(),
  inspectorPort: z.number().int(),
  /** Durable Object storage and logs. */
  runDir: z.string(),
  /** The Worker's name (the dev registry's key, and the inspector's target). */
  workerName: z.string(),
  /** Split topology: the Worker whose objects this one's bindings use (`bindings`: only these, e.g. ["LOBBY_SHARD"]; all when absent), and the registry both share. */
  objectsFrom: z.object({ workerName: z.string(), registryDir: z.string(), bindings: z.array(z.string()).optional() }).optional(),
  /** Split topology, the objects' host: the registry it announces itself in. */
  registryDir: z.string().optional(),
});
export type HostConfig = z.infer<typeof hostConfigSchema>;

/** The env file's `NAME=value` lines (values in single quotes taken literally). */
function readSecrets(envFile: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(envFile, "utf8")
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => {
        const at = line.indexOf("=");
        const value = line.slice(at + 1);
        return [line.slice(0, at), value.startsWith("'") && value.endsWith("'") ? value.slice(1, -1) : value];
      }),
  );
}

/** wrangler.toml's Durable Object bindings, those named in `only` (all when absent) pointed at `scriptName`'s classes. */
function bindingsElsewhere(durableObjects: unknown, scriptName: string, only: string[] | undefined): Record<string, string | { className: string; scriptName?: string }> {
  // Kept whole where not pointed elsewhere: wrangler's options carry more than the class (its SQLite storage, from the migrations).
  const bindings = z.record(z.string(), z.union([z.string(), z.looseObject({ className: z.string() })])).parse(durableObjects ?? {});
  return Object.fromEntries(
    Object.entries(bindings).map(([name, binding]) => [name, only && !only.includes(name) ? binding : { className: typeof binding === "string" ? binding : binding.className, scriptName }]),
  );
}

async function main(config: HostConfig): Promise<void> {
  const { projectDir, bundle } = config;
  const scriptFile = readdirSync(bundle).find((file) => file.endsWith(".js"));
  if (!scriptFile) throw new Error(`no bundle in ${bundle}`);
  // modulesRules describe wrangler's own bundling; the bundle is already built.
  const { modulesRules: _bundled, ...workerOptions } = unstable_getMiniflareWorkerOptions(path.join(projectDir, "wrangler.toml")).workerOptions;
  const registryDir = config.objectsFrom?.registryDir ?? config.registryDir;
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      ...workerOptions,
      ...(config.objectsFrom ? { durableObjects: bindingsElsewhere(workerOptions.durableObjects, config.objectsFrom.workerName, config.objectsFrom.bindings) } : {}),
      name: config.workerName,
      modules: true,
      scriptPath: path.join(bundle, scriptFile),
      modulesRoot: bundle,
      bindings: { ...(workerOptions.bindings ?? {}), ...readSecrets(config.envFile) },
      host: "127.0.0.1",
      port: config.port,
      inspectorPort: config.inspectorPort,
      resourcePersistencePath: path.join(config.runDir, "state"),
      // /cdn-cgi/local/scheduled?time=: tests run the cron at a time of their choosing, as `wrangler dev` lets the dev stack run it.
      unsafeTriggerHandlers: true,
      ...(registryDir ? { unsafeDevRegistryPath: registryDir } : {}),
    } as Parameters<typeof convertV4MiniflareOptions>[0]),
  );
  const url = await mf.ready;
  console.log(`READY ${url.origin}`);
  const stop = async () => {
    await mf.dispose().catch(() => undefined);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

const parsed = hostConfigSchema.safeParse(JSON.parse(process.argv[2] ?? "null"));
if (!parsed.success) {
  console.error("usage: miniflare-host.ts '<HostConfig as JSON>'");
  process.exit(2);
}
main(parsed.data).catch((error: unknown) => {
  console.error(`host failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
