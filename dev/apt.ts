/** Commands the local stack and the benchmarks need from Debian's packages. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * The path of `command`; when it is missing and apt-get exists, installs the
 * Debian package `aptPackage` first (through sudo unless we are root; apt's
 * output goes to stderr, so stdout stays the caller's). Throws `missing`
 * when it is not there after all.
 */
export function ensureCommand(command: string, aptPackage: string, missing: string): string {
  const found = which(command);
  if (found) return found;
  if (existsSync("/usr/bin/apt-get")) {
    process.stderr.write(`${command} is missing: installing Debian's ${aptPackage} package\n`);
    const asRoot = process.getuid?.() === 0;
    const apt = (...args: string[]) =>
      execFileSync(asRoot ? "apt-get" : "sudo", asRoot ? args : ["apt-get", ...args], {
        stdio: ["ignore", process.stderr, process.stderr],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    apt("update", "-qq");
    apt("install", "-y", "-qq", aptPackage);
    const installed = which(command);
    if (installed) return installed;
  }
  throw new Error(missing);
}

function which(command: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}
