/**
 * `npm run dev` runs the Worker's cron every minute, as production does
 * (dev/cron-ticker.ts): at the start of each minute of the clock it triggers
 * the scheduled handler through Miniflare's `/cdn-cgi/local/scheduled`, which
 * `wrangler dev` enables. Here a Worker under Miniflare with the same trigger
 * route records each run in KV; the clock is faked, so no test waits a minute.
 */
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import { startCronTicker } from "../../dev/cron-ticker.ts";

const SCRIPT = `export default {
  async fetch() { return new Response("ok"); },
  async scheduled(controller, env) {
    if (env.FAIL === "yes") throw new Error("the handler failed");
    const runs = JSON.parse((await env.RUNS.get("runs")) ?? "[]");
    runs.push(controller.cron);
    await env.RUNS.put("runs", JSON.stringify(runs));
  },
};`;

let mf: Miniflare;

function options(fail: "yes" | "no") {
  // wrangler dev runs Miniflare with unsafeTriggerHandlers on, which is what serves /cdn-cgi/local/scheduled.
  return convertV4MiniflareOptions({ modules: true, script: SCRIPT, kvNamespaces: ["RUNS"], bindings: { FAIL: fail }, unsafeTriggerHandlers: true } as Parameters<typeof convertV4MiniflareOptions>[0]);
}
let appUrl: string;

beforeAll(async () => {
  mf = new Miniflare(options("no"));
  appUrl = (await mf.ready).href;
}, 60_000);

afterAll(async () => {
  await mf.dispose();
});

afterEach(() => {
  vi.useRealTimers();
});

async function runsRecorded(): Promise<string[]> {
  const kv = await mf.getKVNamespace("RUNS");
  return JSON.parse((await kv.get("runs", "text")) ?? "[]") as string[];
}

it("runs the scheduled handler at the start of every minute, and only then", async () => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  vi.setSystemTime(new Date("2026-12-06T12:00:40Z"));
  const outcomes: string[] = [];
  let ran: () => void = () => undefined;
  const ticker = startCronTicker({ appUrl, cron: "* * * * *", log: () => undefined, onRun: (outcome) => (outcomes.push(outcome), ran()) });
  try {
    await vi.advanceTimersByTimeAsync(19_000); // 12:00:59: not yet
    expect(outcomes).toEqual([]);
    expect(await runsRecorded()).toEqual([]);

    let done = new Promise<void>((resolve) => (ran = resolve));
    await vi.advanceTimersByTimeAsync(1_000); // 12:01:00
    await done;
    expect(outcomes).toEqual(["ok"]);
    expect(await runsRecorded()).toEqual(["* * * * *"]);

    done = new Promise<void>((resolve) => (ran = resolve));
    await vi.advanceTimersByTimeAsync(60_000); // 12:02:00
    await done;
    expect(outcomes).toEqual(["ok", "ok"]);
    expect(await runsRecorded()).toEqual(["* * * * *", "* * * * *"]);
  } finally {
    ticker.stop();
  }
}, 60_000);

it("says when a run fails and tries again the next minute", async () => {
  await mf.setOptions(options("yes"));
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  vi.setSystemTime(new Date("2026-12-06T13:00:00Z"));
  const said: string[] = [];
  let ran: () => void = () => undefined;
  const ticker = startCronTicker({ appUrl: (await mf.ready).href, cron: "* * * * *", log: (line) => said.push(line), onRun: () => ran() });
  try {
    const done = new Promise<void>((resolve) => (ran = resolve));
    await vi.advanceTimersByTimeAsync(60_000);
    await done;
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^cron run failed: answered 500/);
    ticker.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(said).toHaveLength(1);
  } finally {
    ticker.stop();
  }
}, 60_000);
