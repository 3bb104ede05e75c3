/**
 * Runs the Worker for a benchmark the way production serves it: one workerd,
 * the production bundle (`wrangler deploy --dry-run`), the bindings of
 * wrangler.toml via wrangler's own `unstable_getMiniflareWorkerOptions`,
 * driven by Miniflare. `wrangler dev` puts a second workerd in front of the
 * Worker (its reload proxy), which cost as much CPU per request as the Worker
 * itself here; production has no such hop.
 *
 * Run as its own process (lib/app.ts starts it) so its CPU is counted apart
 * from the benchmark's:
 *   node --import tsx bench/lib/miniflare-host.ts <projectDir> <envFile> <port> <inspectorPort> <runDir> [entry]
 * (entry: a Worker module to bundle instead of wrangler.toml's `main`).
 * Prints `READY <url>` once the Worker answers; stops on SIGTERM.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const [projectDir, envFile, port, inspectorPort, runDir, entry] = process.argv.slice(2);
if (!projectDir || !envFile || !port || !inspectorPort || !runDir) {
  console.error("usage: miniflare-host.ts <projectDir> <envFile> <port> <inspectorPort> <runDir>");
  process.exit(2);
}

const outDir = path.join(runDir, "dist");
const built = spawnSync(path.join(projectDir, "node_modules", ".bin", "wrangler"), ["deploy", ...(entry ? [entry] : []), "--dry-run", "--outdir", outDir], {
  cwd: projectDir,
  stdio: ["ignore", "inherit", "inherit"],
  env: process.env,
});
if (built.status !== 0) {
  console.error("Build failed: wrangler deploy --dry-run exited with", built.status);
  process.exit(1);
}

// The bundle is named after its entry (index.js for wrangler.toml's main).
const bundle = readdirSync(outDir).find((file) => file.endsWith(".js"));
if (!bundle) {
  console.error(`Build failed: no bundle in ${outDir}`);
  process.exit(1);
}

// modulesRules describe wrangler's own bundling; the bundle is already built.
const { modulesRules: _bundled, ...workerOptions } = unstable_getMiniflareWorkerOptions(path.join(projectDir, "wrangler.toml")).workerOptions;
const secrets = Object.fromEntries(
  readFileSync(envFile, "utf8")
    .split("\n")
    .filter((line) => line.includes("="))
    .map((line) => {
      const at = line.indexOf("=");
      const value = line.slice(at + 1);
      return [line.slice(0, at), value.startsWith("'") && value.endsWith("'") ? value.slice(1, -1) : value];
    }),
);

const mf = new Miniflare(
  convertV4MiniflareOptions({
    ...workerOptions,
    name: "edge-tickets",
    modules: true,
    scriptPath: path.join(outDir, bundle),
    modulesRoot: outDir,
    bindings: { ...(workerOptions.bindings ?? {}), ...secrets },
    host: "127.0.0.1",
    port: Number(port),
    inspectorPort: Number(inspectorPort),
    resourcePersistencePath: path.join(runDir, "state"),
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
