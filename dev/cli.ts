/** What the `npm run` scripts of dev/ share: run a script's main as this process, and report a failure as a failure. */
import { fileURLToPath } from "node:url";

/** True when the module at `moduleUrl` (its `import.meta.url`) is the script this process was started with. */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] === fileURLToPath(moduleUrl);
}

/**
 * Runs `main` and exits: 0 when it resolves, 1 when it throws, after writing
 * `<name> failed: <message>` and the error's causes to stderr (drizzle, for
 * one, keeps the database's own message in `cause`).
 */
export function runMain(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${name} failed: ${describeError(error)}\n`);
      process.exit(1);
    },
  );
}

/** An error's message and its causes, one a line; with `stack`, the first one's stack instead of its message. */
export function describeError(error: unknown, options: { stack?: boolean } = {}): string {
  const lines: string[] = [];
  for (let e: unknown = error, depth = 0; depth < 5 && e !== undefined; e = e instanceof Error ? e.cause : undefined, depth++) {
    if (e instanceof Error) lines.push(depth > 0 ? `caused by: ${e.message}` : options.stack ? (e.stack ?? e.message) : e.message);
    else lines.push(String(e));
  }
  return lines.join("\n");
}
