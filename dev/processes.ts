/** Who descends from whom: for stopping what a child process left behind. */
import { execFileSync } from "node:child_process";

/** A process, its parent and its command line. */
export interface ProcessInfo {
  pid: number;
  parentPid: number;
  command: string;
}

/** Every process of `all` below `rootPid` (not the root itself). */
export function descendantsOf<P extends { pid: number; parentPid: number }>(rootPid: number, all: readonly P[]): P[] {
  const found: P[] = [];
  const parents = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.parentPid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** Every live process, from `ps` (Linux and macOS); none when there is no `ps`. */
export function listProcesses(): ProcessInfo[] {
  try {
    const output = execFileSync("ps", ["-A", "-o", "pid=,ppid=,stat=,args="], { encoding: "utf8" });
    return output.split("\n").flatMap((line) => {
      const match = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
      // Zombies (stat Z) have already exited; only their parent can reap them.
      if (!match || match[3]?.startsWith("Z")) return [];
      return [{ pid: Number(match[1]), parentPid: Number(match[2]), command: match[4] ?? "" }];
    });
  } catch {
    return [];
  }
}
