/**
 * Load from `wrk` (Debian's package, installed with apt when missing). Its Lua
 * script (built on bench/lib/crowd.lua) reports what it counted in one line
 * starting with `RESULT_MARKER`;
 * everything else wrk prints goes to stderr. wrk runs for its whole duration
 * even when every thread has stopped, so a script marks each stopped thread
 * with a `THREAD_DONE_MARKER` line and wrk is interrupted (SIGINT: it still
 * reports) once all of them have.
 */
import { spawn } from "node:child_process";
import { ensureCommand } from "../../dev/apt.ts";

/** The prefix of the line a wrk script prints its JSON result on. */
export const RESULT_MARKER = "BENCH_RESULT ";
/** The line a wrk script prints when one of its threads stops for good. */
export const THREAD_DONE_MARKER = "BENCH_THREAD_DONE";

/** One wrk run. */
export interface WrkRun {
  /** The script's result line, parsed as JSON (the caller validates it). */
  result: Promise<unknown>;
  /** Stops wrk early (clean-up); harmless once it exited. */
  kill(): void;
}

/** Runs wrk; the result line must appear or the run fails. */
export function runWrk(options: { url: string; script: string; threads: number; connections: number; durationSeconds: number; timeoutSeconds: number; scriptArgs: string[] }): WrkRun {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationSeconds}s`,
    "--timeout",
    `${options.timeoutSeconds}s`,
    "--latency",
    "-s",
    options.script,
    options.url,
    "--",
    ...options.scriptArgs,
  ];
  const child = spawn(ensureCommand("wrk", "wrk", "wrk was not found. Install it (Debian/Ubuntu: apt-get install wrk)."), args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let threadsDone = 0;
  let scanned = 0;
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    const end = stdout.lastIndexOf("\n") + 1;
    for (const line of stdout.slice(scanned, end).split("\n")) if (line === THREAD_DONE_MARKER) threadsDone++;
    scanned = end;
    if (threadsDone >= options.threads && child.exitCode === null) child.kill("SIGINT");
  });
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(`[wrk] ${chunk.toString()}`));
  const result = new Promise<unknown>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      const lines = stdout.split("\n");
      for (const line of lines) if (line.trim() !== "" && !line.startsWith(RESULT_MARKER) && line !== THREAD_DONE_MARKER) process.stderr.write(`[wrk] ${line}\n`);
      const marked = lines.find((line) => line.startsWith(RESULT_MARKER));
      if (code !== 0 || !marked) return reject(new Error(`wrk ended (${signal ?? `code ${code}`}) without a result line`));
      try {
        resolve(JSON.parse(marked.slice(RESULT_MARKER.length)));
      } catch (error) {
        reject(new Error(`wrk's result line is not JSON: ${String(error)}`));
      }
    });
  });
  return {
    result,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
  };
}
