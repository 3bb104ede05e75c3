/** CPU accounting of a load run: the Worker's workerd, wrangler, Postgres, the relay, wrk and the machine. */
import type { BenchApp } from "./app.ts";
import { machineCpuMs, processStat, totalCpu, treeCpuByName } from "./processes.ts";

/** CPU milliseconds used so far, by the parts of the benchmark and by the whole machine. */
export interface CpuSnapshot {
  workerd: number;
  wrangler: number;
  postgres: number;
  /** This process: the Neon relay and the Upstash bridge run here. */
  relay: number;
  /** Children of this process that exited: wrk, once it is done. */
  wrk: number;
  machineBusy: number;
  machineTotal: number;
}

/** Reads every CPU counter now. */
export function cpuSnapshot(app: BenchApp, postgresPid: number | undefined): CpuSnapshot {
  const own = processStat(process.pid);
  const machine = machineCpuMs();
  const { workerd, wrangler } = app.cpuMs();
  return {
    workerd,
    wrangler,
    postgres: postgresPid === undefined ? 0 : totalCpu(treeCpuByName(postgresPid)),
    relay: own?.cpuMs ?? 0,
    wrk: own?.reapedChildrenCpuMs ?? 0,
    machineBusy: machine.busyMs,
    machineTotal: machine.totalMs,
  };
}

/** What was used between two snapshots. */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  const delta = (key: keyof CpuSnapshot) => after[key] - before[key];
  return {
    workerd: delta("workerd"),
    wrangler: delta("wrangler"),
    postgres: delta("postgres"),
    relay: delta("relay"),
    wrk: delta("wrk"),
    machineBusy: delta("machineBusy"),
    machineTotal: delta("machineTotal"),
  };
}

/** CPU milliseconds used so far by named groups of processes, and by the whole machine. */
export interface GroupCpu {
  groups: Record<string, number>;
  machineBusy: number;
  machineTotal: number;
}

/**
 * Reads `groups` (group name to CPU ms so far) with the processes every run
 * has: Postgres, this process (the Neon relay, the Upstash bridge, the
 * observer; reported as `bench`) and its children that exited (wrk, once done).
 */
export function readGroups(groups: Record<string, number>, postgresPid: number | undefined): GroupCpu {
  const own = processStat(process.pid);
  const machine = machineCpuMs();
  return {
    groups: {
      ...groups,
      postgres: postgresPid === undefined ? 0 : totalCpu(treeCpuByName(postgresPid)),
      bench: own?.cpuMs ?? 0,
      wrk: own?.reapedChildrenCpuMs ?? 0,
    },
    machineBusy: machine.busyMs,
    machineTotal: machine.totalMs,
  };
}

/** What each group (and the machine) used between two readings, with the machine's busy share and what ran outside the groups. */
export function groupDelta(before: GroupCpu, after: GroupCpu): { groups: Record<string, number>; machineBusyPct: number; outsideMs: number } {
  const groups: Record<string, number> = {};
  for (const [name, ms] of Object.entries(after.groups)) groups[name] = Math.round(ms - (before.groups[name] ?? 0));
  const busy = after.machineBusy - before.machineBusy;
  const ours = Object.values(groups).reduce((sum, ms) => sum + ms, 0);
  return {
    groups,
    machineBusyPct: Math.round((100 * busy) / Math.max(after.machineTotal - before.machineTotal, 1)),
    outsideMs: Math.round(Math.max(0, busy - ours)),
  };
}
