/** Fan accounts and their tokens, made in bulk for load tests. */
import { open } from "node:fs/promises";
import { sql } from "drizzle-orm";
import type { Db } from "../../core/db/client.ts";

/** Tokens signed at once (the signing is asynchronous WebCrypto). */
const SIGN_BATCH = 500;

/** Creates `count` fan accounts in one statement; returns their ids. */
export async function createFanAccounts(db: Db, count: number, emailPrefix: string): Promise<string[]> {
  const result = await db.execute<{ id: string }>(sql`
    insert into accounts (email)
    select ${emailPrefix} || n || '@bench.invalid' from generate_series(1, ${count}::int) as n
    returning id`);
  if (result.rows.length !== count) throw new Error(`created ${result.rows.length} of ${count} fan accounts`);
  return result.rows.map((row) => row.id);
}

/** Signs one fresh token per account with `sign` and writes them to `file`, one per line, in account order. */
export async function writeTokens(file: string, accountIds: string[], sign: (accountId: string) => Promise<string>): Promise<void> {
  const handle = await open(file, "w", 0o600);
  try {
    for (let start = 0; start < accountIds.length; start += SIGN_BATCH) {
      const tokens = await Promise.all(accountIds.slice(start, start + SIGN_BATCH).map(sign));
      await handle.write(`${tokens.join("\n")}\n`);
    }
  } finally {
    await handle.close();
  }
}
