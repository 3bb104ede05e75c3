/**
 * The Postgres handle an object keeps (durable-objects/lib/kept-db.ts): a
 * statement that gets no answer fails after the handle's timeout, and the
 * next runs on a fresh connection; a connection left unused is closed. The
 * statement is stalled on an advisory lock the test holds until it has seen
 * the timeout. Both limits are the handle's real timers, set short here.
 */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../core/config";
import { KeptDb, KeptDbTimeout } from "../../../durable-objects/lib/kept-db";
import { withDb } from "../../fixtures/db";
import { poolerClients } from "../../fixtures/pooler";

const LIMITS = { idleMs: 60_000, timeoutMs: 300 };

/** Asks the pooler (a query at a time, up to `ms`) until `done` holds for the clients named `name`; returns them. */
async function clientsOnceThey(name: string, done: (identities: string[]) => boolean, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const identities = (await poolerClients(name)).map((client) => client.identity);
    if (done(identities) || Date.now() > deadline) return identities;
  }
}

describe("KeptDb", () => {
  it("fails a statement that gets no answer in time, and runs the next on a fresh connection", async () => {
    const name = `kept-db ${crypto.randomUUID()}`;
    const kept = new KeptDb(() => loadConfig(env), name, LIMITS);
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

  it("closes the connection once it has been unused for its idle time, and opens one again when needed", async () => {
    const name = `kept-db ${crypto.randomUUID()}`;
    const kept = new KeptDb(() => loadConfig(env), name, { idleMs: 200, timeoutMs: 20_000 });
    await kept.run((db) => db.execute(sql`select 1`));
    const [first] = await clientsOnceThey(name, (identities) => identities.length === 1, 0);
    expect(first).toBeDefined();
    expect(await clientsOnceThey(name, (identities) => identities.length === 0, 10_000)).toEqual([]);
    await kept.run((db) => db.execute(sql`select 1`));
    const again = await clientsOnceThey(name, (identities) => identities.length === 1, 0);
    expect(again).toHaveLength(1);
    expect(again).not.toContain(first);
  });
});
