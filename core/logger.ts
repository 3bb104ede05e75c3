/**
 * Structured logs: one JSON object per line, `{ level, event, ...fields }`,
 * which Workers Logs indexes field by field. Errors in fields are reduced to
 * their message, so no stack trace reaches the logs by accident either.
 */

/** How bad a line is; `warn` and `error` go to the console's error stream. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Extra fields of a log line. */
export type LogFields = Record<string, unknown>;

/** Writes log lines for one component, with fields every line carries. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger whose lines also carry `fields` (a request id, an event id...). */
  with(fields: LogFields): Logger;
}

const MAX_STRING = 500;

function plain(value: unknown): unknown {
  if (value instanceof Error) return value.message.slice(0, MAX_STRING);
  if (typeof value === "string") return value.slice(0, MAX_STRING);
  return value;
}

function write(level: LogLevel, event: string, base: LogFields, fields: LogFields | undefined): void {
  const line: LogFields = { level, event };
  for (const [key, value] of Object.entries({ ...base, ...fields })) line[key] = plain(value);
  const text = JSON.stringify(line);
  if (level === "warn" || level === "error") console.error(text);
  else console.log(text);
}

/** A logger whose lines carry `base` fields. */
export function createLogger(base: LogFields = {}): Logger {
  return {
    debug: (event, fields) => write("debug", event, base, fields),
    info: (event, fields) => write("info", event, base, fields),
    warn: (event, fields) => write("warn", event, base, fields),
    error: (event, fields) => write("error", event, base, fields),
    with: (fields) => createLogger({ ...base, ...fields }),
  };
}

/** The logger for code with no request of its own (queues, cron, objects). */
export const log = createLogger();
