/**
 * The frame of a benchmark scenario process: progress goes to stderr (stdout
 * carries only the result lines), and whatever the scenario started is
 * cleaned up, newest first, when it ends, fails, or gets Ctrl-C / SIGTERM.
 */
import { describeError } from "../../dev/cli.ts";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const STEP_TIMEOUT_MS = 20_000;

/** Writes one progress line to stderr. */
export function say(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** Clean-up steps, run newest first, each bounded in time; a failed step does not stop the others. */
export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];

  /** Registers a step; the last one registered runs first. Returns a function that drops the step again. */
  add(name: string, run: () => Promise<void> | void): () => void {
    const step = { name, run };
    this.steps.push(step);
    return () => {
      const at = this.steps.indexOf(step);
      if (at >= 0) this.steps.splice(at, 1);
    };
  }

  /** Runs every step once. */
  async runAll(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`gave up after ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS);
      });
      await Promise.race([Promise.resolve().then(step.run), timeout])
        .catch((error: unknown) => say(`clean-up: could not stop ${step.name}: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => clearTimeout(timer));
    }
  }
}

/** True once the scenario is stopping (a signal arrived or it finished): long waits should give up. */
export function stopping(): boolean {
  return finishing !== undefined;
}

let finishing: Promise<void> | undefined;

/**
 * Runs `main` as this process's scenario and exits with the code it returns
 * (1 when it throws, 130 on a signal) once the clean-up has run; says how
 * long it took.
 */
export function runScenario(main: (cleanup: Cleanup) => Promise<number>): void {
  const startedAt = Date.now();
  const cleanup = new Cleanup();
  const finish = (code: number, reason?: string) => {
    finishing ??= (async () => {
      if (reason) say(`${reason}: cleaning up...`);
      await cleanup.runAll();
      process.exit(code);
    })();
  };
  for (const signal of SIGNALS) process.on(signal, () => finish(130, `${signal} received`));
  main(cleanup).then(
    (code) => {
      if (!finishing) say(`done in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
      finish(code);
    },
    (error: unknown) => {
      if (!finishing) say(`failed: ${describeError(error, { stack: true })}`);
      finish(1);
    },
  );
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
