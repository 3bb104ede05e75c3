/**
 * The Postgres handle an object keeps (durable-objects/lib/kept-db.ts): a
 * statement that gets no answer fails after the handle's timeout, and the
 * next runs on a fresh connection. The statement is stalled on an advisory
 * lock the test holds until it has seen the timeout.
 */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../core/config";
import { KeptDb, KeptDbTimeout } from "../../../durable-objects/lib/kept-db";
import { withDb } from "../../fixtures/db";
import { poolerClients } from "../../fixtures/pooler";

const TIMEOUT_MS = 300;

describe("KeptDb", () => {
  it("fails a statement that gets no answer in time, and runs the next on a fresh connection", async () => {
    const name = `kept-db ${crypto.randomUUID()}`;
    const kept = new KeptDb(() => loadConfig(env), name, TIMEOUT_MS);
    const lock = Math.floor(Math.random() * 2 ** 31);
    expect((await kept.run((db) => db.execute<{ one: number }>(sql`select 1 as one`))).rows).toEqual([{ one: 1 }]);
    const before = (await poolerClients(name)).map((client) => client.identity);
    expect(before).toHaveLength(1);

    await withDb((db) =>
      db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${lock})`);
        await expect(kept.run((stalled) => stalled.execute(sql`select pg_advisory_xact_lock(${lock})`))).rejects.toThrow(KeptDbTimeout);
      }),
    );

    expect((await kept.run((db) => db.execute<{ one: number }>(sql`select 1 as one`))).rows).toEqual([{ one: 1 }]);
    const after = (await poolerClients(name)).map((client) => client.identity);
    expect(after.filter((identity) => !before.includes(identity))).toHaveLength(1);
  });
});
