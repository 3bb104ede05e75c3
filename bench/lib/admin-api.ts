/** Small helpers the bench scenarios share: the admin API as an organizer calls it, and rounding for the JSON lines. */
import type { BenchApp } from "./app.ts";

/** Calls the admin API with an organizer's key; the parsed JSON answer, or an error naming the status. */
export async function adminJson(app: BenchApp, apiKey: string, method: string, route: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${app.url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${method} ${route} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** `value` rounded to `digits` decimals. */
export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
