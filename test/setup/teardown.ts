/**
 * Teardown for a vitest global setup. Vitest logs an error thrown by a global
 * teardown ("error during close") but still exits 0, and skips the teardowns
 * of the setups listed before it; so every step runs even after one fails,
 * and a failure marks the run failed through `process.exitCode` before it is
 * rethrown.
 */
export async function runTeardown(steps: readonly (readonly [name: string, stop: () => Promise<unknown>])[]): Promise<void> {
  const failures: string[] = [];
  for (const [name, stop] of steps) {
    await stop().catch((error: unknown) => failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`));
  }
  if (failures.length === 0) return;
  process.exitCode = 1;
  throw new Error(`global teardown failed: ${failures.join("; ")}`);
}
