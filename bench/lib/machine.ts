/**
 * What the machine was like during a run: its processor, its load, the CPU
 * time the hypervisor stole, and how long a fixed piece of work took here
 * (`calibrate`), so a slower machine shows in the output, not only in the rates.
 */
import { createHash } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";

/** The processor and core count. */
export function machineInfo(): { cpu_model: string; cores: number } {
  const list = cpus();
  return { cpu_model: list[0]?.model ?? "unknown", cores: list.length };
}

/** The 1-minute load average. */
export function load1(): number {
  return Math.round(100 * (loadavg()[0] ?? 0)) / 100;
}

/** Stolen and total CPU ticks of the machine so far (/proc/stat). */
export function stealTicks(): { steal: number; total: number } {
  const ticks = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  return { steal: ticks[7] ?? 0, total: ticks.reduce((sum, t) => sum + t, 0) };
}

/** The share of the machine's CPU stolen between two readings, in percent. */
export function stealPct(before: { steal: number; total: number }, after: { steal: number; total: number }): number {
  return Math.round((1000 * (after.steal - before.steal)) / Math.max(after.total - before.total, 1)) / 10;
}

/**
 * A fixed piece of work (20,000 SHA-256 digests of 1 KB) on this process's
 * thread: its CPU and wall time. On a quiet machine the two agree; CPU time
 * above a quiet run's means a slower processor (or a busy sibling core), wall
 * above CPU means the process waited for a core.
 */
export function calibrate(): { calibration_cpu_ms: number; calibration_wall_ms: number } {
  const block = Buffer.alloc(1024, 7);
  const cpu = process.cpuUsage();
  const wall = performance.now();
  let digest = Buffer.alloc(32);
  for (let i = 0; i < 20_000; i++) digest = createHash("sha256").update(block).update(digest).digest();
  const used = process.cpuUsage(cpu);
  return { calibration_cpu_ms: Math.round((used.user + used.system) / 100) / 10, calibration_wall_ms: Math.round(10 * (performance.now() - wall)) / 10 };
}
