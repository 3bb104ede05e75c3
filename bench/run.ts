/**
 * `npm run bench [-- scenario ... [--flag value ...]]`: runs each named
 * scenario (all of them when none is named), one after another, each in its
 * own process as `bench/<scenario>.ts`, with the flags that follow the names
 * (e.g. `npm run bench -- lobby --fans 2000000`, `npm run bench -- sellout --chaos`). Scenarios print their JSON
 * result lines on stdout and their progress on stderr; the exit code is
 * non-zero when any failed.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Every scenario: the .ts files beside this one (helpers live in lib/). */
function allScenarios(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((file) => file.endsWith(".ts") && file !== "run.ts")
    .map((file) => file.slice(0, -".ts".length))
    .sort();
}

async function main(args: string[]): Promise<number> {
  const firstFlag = args.findIndex((arg) => arg.startsWith("--"));
  const names = firstFlag < 0 ? args : args.slice(0, firstFlag);
  const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
  const known = allScenarios();
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown bench scenario ${unknown.join(", ")}; known: ${known.join(", ")}\n`);
    return 2;
  }
  let interrupted = false;
  let running: ReturnType<typeof spawn> | undefined;
  // The scenario cleans up on its own signal; wait for it rather than dying first.
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      interrupted = true;
      running?.kill(signal);
    });
  }
  let failed = 0;
  for (const name of names.length > 0 ? names : known) {
    if (interrupted) break;
    process.stderr.write(`[bench] scenario ${name}\n`);
    running = spawn(process.execPath, ["--import", "tsx", path.join(BENCH_DIR, `${name}.ts`), ...flags], { stdio: "inherit" });
    const [code, signal] = (await once(running, "exit")) as [number | null, NodeJS.Signals | null];
    running = undefined;
    if (code !== 0) {
      failed++;
      process.stderr.write(`[bench] scenario ${name} failed (${signal ?? `exit code ${code}`})\n`);
    }
  }
  if (interrupted) return 130;
  return failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`[bench] ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
