/** `requestLogger()`: a logger for the request, whose lines carry its id. */
import { createMiddleware } from "hono/factory";
import { log as rootLogger, type Logger } from "../../core/logger";

/** What `requestLogger` puts in the context. */
export interface LoggerVariables {
  /** Cloudflare's Ray ID when there is one (so our lines join Cloudflare's logs), else a random id. */
  requestId: string;
  log: Logger;
}

/** Sets `requestId` and `log`, the structured logger (core/logger.ts) with the request id on every line. */
export function requestLogger() {
  return createMiddleware<{ Bindings: Env; Variables: LoggerVariables }>(async (c, next) => {
    const requestId = c.req.header("CF-Ray") ?? crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("log", rootLogger.with({ requestId }));
    await next();
  });
}
