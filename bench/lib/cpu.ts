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
