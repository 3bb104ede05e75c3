/**
 * What the benchmark knows about processes, read from /proc: who descends from
 * whom, and how much CPU (user + system) each has used.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { descendantsOf } from "../../dev/processes.ts";

/** One process as /proc/<pid>/stat shows it. */
export interface ProcessStat {
  pid: number;
  parentPid: number;
  /** The executable's name (at most 15 characters), e.g. `workerd`. */
  name: string;
  /** User plus system CPU time so far, in milliseconds. */
  cpuMs: number;
  /** CPU milliseconds of its children that exited and were waited for. */
  reapedChildrenCpuMs: number;
}

const TICKS_PER_SECOND = clockTicks();

function clockTicks(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** One process's stat, or undefined when it is gone. */
export function processStat(pid: number): ProcessStat | undefined {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The name is in parentheses and may hold spaces; the numeric fields follow the last ')'.
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  const fields = line.slice(close + 2).split(" ");
  // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  if (fields[0] === "Z") return undefined;
  const ms = (a: number, b: number) => ((Number(fields[a]) + Number(fields[b])) * 1000) / TICKS_PER_SECOND;
  return { pid, parentPid: Number(fields[1]), name: line.slice(open + 1, close), cpuMs: ms(11, 12), reapedChildrenCpuMs: ms(13, 14) };
}

/** Every live process. */
export function listProcesses(): ProcessStat[] {
  return readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    return processStat(Number(entry)) ?? [];
  });
}

/** Every process below `rootPid` (not the root itself). */
export function descendants(rootPid: number, all = listProcesses()): ProcessStat[] {
  return descendantsOf(rootPid, all);
}

/**
 * CPU milliseconds used so far by the root and every process below it, by
 * executable name; a process counts with its children that already exited
 * (Postgres backends of closed connections, for one).
 */
export function treeCpuByName(rootPid: number): Map<string, number> {
  const all = listProcesses();
  const root = all.find((p) => p.pid === rootPid);
  const totals = new Map<string, number>();
  for (const p of [...(root ? [root] : []), ...descendants(rootPid, all)]) {
    totals.set(p.name, (totals.get(p.name) ?? 0) + p.cpuMs + p.reapedChildrenCpuMs);
  }
  return totals;
}

/** Sum of a name-to-milliseconds map. */
export function totalCpu(byName: Map<string, number>): number {
  let sum = 0;
  for (const ms of byName.values()) sum += ms;
  return sum;
}

/** Busy and total CPU milliseconds of the whole machine so far (all cores), from /proc/stat. */
export function machineCpuMs(): { busyMs: number; totalMs: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busyMs: ((total - idle) * 1000) / TICKS_PER_SECOND, totalMs: (total * 1000) / TICKS_PER_SECOND };
}
