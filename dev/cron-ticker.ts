/**
 * The cron, for `npm run dev`: production runs the Worker's scheduled handler
 * every minute (wrangler.toml `crons = ["* * * * *"]`), but `wrangler dev`
 * never fires it by itself. This ticker does, at the start of every minute,
 * through Miniflare's `/cdn-cgi/local/scheduled` route, so holds expire,
 * payments are reconciled and waitlist offers move locally as they would in
 * production.
 */

/** What the ticker needs: where the app answers and the cron expression to pass. */
export interface CronTickerOptions {
  appUrl: string;
  cron: string;
  /** Told of a failed run (said, never thrown: the next minute tries again). */
  log: (line: string) => void;
  /** Called after each run with the handler's outcome ("ok", or what went wrong). */
  onRun?: (outcome: string) => void;
}

/** A running ticker; `stop` ends it (an in-flight run finishes on its own). */
export interface CronTicker {
  stop(): void;
}

const MINUTE_MS = 60_000;

/** Starts calling the scheduled handler at the start of every minute of the clock. */
export function startCronTicker(options: CronTickerOptions): CronTicker {
  const url = new URL("/cdn-cgi/local/scheduled", options.appUrl);
  url.searchParams.set("cron", options.cron);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(run, MINUTE_MS - (Date.now() % MINUTE_MS));
  };
  const run = () => {
    fetch(url, { method: "GET" })
      .then(async (response) => {
        const body = await response.text();
        if (!response.ok) throw new Error(`answered ${response.status}: ${body.slice(0, 200)}`);
        return body;
      })
      .catch((error: unknown) => {
        const outcome = `cron run failed: ${error instanceof Error ? error.message : String(error)}`;
        options.log(outcome);
        return outcome;
      })
      .then((outcome) => {
        options.onRun?.(outcome);
        schedule();
      });
  };

  schedule();
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
