/** What capability code works with, whether a request, a queue batch or the cron started the work. */
import type { Db } from "../core/db/client";

/** The Worker's env, a db handle, and a way to let work finish after the answer (a request's `waitUntil`). */
export interface WorkContext {
  env: Env;
  db: Db;
  keepAlive: (promise: Promise<unknown>) => void;
}
