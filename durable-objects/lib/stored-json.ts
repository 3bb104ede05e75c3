/**
 * JSON read back from an object's own storage, checked against its schema
 * rather than cast: a row that does not match is corrupt or written by other
 * code, and the caller hears of it at once instead of acting on a wrong shape.
 */
import type { z } from "zod";

/** Parses `text` (a stored JSON column named `what`) and checks it against `schema`; throws when it does not match. */
export function readStoredJson<S extends z.ZodType>(schema: S, text: string, what: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`stored ${what} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`stored ${what} does not match its schema: ${parsed.error.message}`);
  return parsed.data;
}
