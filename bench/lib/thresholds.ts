/**
 * A scenario's bars: each printed in its JSON line (`thresholds`) with the
 * value measured and whether it was met, so a run is judged from its line
 * alone. A missed bar fails the run (non-zero exit code), speed bars
 * included: they are the issue's acceptance bars, stated for a quiet machine,
 * and the line carries the load average to tell a busy machine from a slow
 * design.
 */
import { say } from "./scenario.ts";

/** One bar: the value measured, the bound it must keep, whether it did. */
export interface Threshold {
  value: number;
  min?: number;
  max?: number;
  met: boolean;
}

/** The value must be at least `min`. */
export function atLeast(value: number, min: number): Threshold {
  return { value, min, met: value >= min };
}

/** The value must be at most `max`. */
export function atMost(value: number, max: number): Threshold {
  return { value, max, met: value <= max };
}

/** Whether every bar was met; says on stderr which were not. */
export function thresholdsMet(thresholds: Record<string, Threshold>): boolean {
  const missed = Object.entries(thresholds).filter(([, bar]) => !bar.met);
  for (const [name, bar] of missed) say(`MISSED ${name}: ${bar.value}, ${bar.min !== undefined ? `at least ${bar.min}` : `at most ${bar.max}`} wanted`);
  return missed.length === 0;
}
