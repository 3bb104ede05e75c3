/** The hono app's one request context: the Worker's bindings and the variables its middleware sets. */
import type { Context } from "hono";
import type { DatabaseVariables } from "./middleware/database";
import type { LoggerVariables } from "./middleware/request-logger";
import type { FanVariables } from "./middleware/require-fan";
import type { OrganizerVariables } from "./middleware/require-organizer";
import type { WorkContext } from "./work-context";

/**
 * Hono's environment for every route. `fan` and `organizer` are set only
 * behind `requireFan()` and `requireOrganizer()`: routes read them where
 * those run.
 */
export interface AppEnv {
  Bindings: Env;
  Variables: DatabaseVariables & LoggerVariables & FanVariables & OrganizerVariables;
}

/** The capability context of a request: its env, db handle and `waitUntil`. */
export function workContext(c: Context<AppEnv>): WorkContext {
  return { env: c.env, db: c.var.db, keepAlive: (promise) => c.executionCtx.waitUntil(promise) };
}
