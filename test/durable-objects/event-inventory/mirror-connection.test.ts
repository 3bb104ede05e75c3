/**
 * The inventory's write-through to Postgres over one kept connection
 * (durable-objects/lib/kept-db.ts): sends reuse it, and one broken under a
 * send is replaced at once, so the hold still reaches Postgres.
 *
 * Through PgBouncer in transaction mode (as through Neon's pooler) a
 * connection has no backend of its own between statements: terminating a
 * backend then only costs the pooler a server connection. What breaks the
 * object's connection is its backend dying under a statement: the pooler
 * closes the client too. The test holds that statement on a row lock while
 * it terminates the backend.
 */
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { HoldResult } from "../../../core/holds/contract";
import { mirrorConnectionName } from "../../../durable-objects/event-inventory/postgres-mirror";
import { blockedBy, lockAccountRow, withDb } from "../../fixtures/db";
import { bestRequest, held } from "../../fixtures/holds";
import { inventoryOf } from "../../fixtures/objects";
import { poolerClients } from "../../fixtures/pooler";
import { openEvent } from "../../fixtures/seeding";

function mirroredHoldIds(eventId: string): Promise<string[]> {
  return withDb(async (db) => {
    const rows = await db.execute<{ id: string }>(sql`select id from holds where event_id = ${eventId} order by created_at`);
    return rows.rows.map((row) => row.id);
  });
}

describe("EventInventory's connection to Postgres", () => {
  it("sends every hold over the one connection the first statement opened", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 4 });
    const stub = inventoryOf(event.id);
    await stub.prepare(event.id);
    const holdIds: string[] = [];
    const seen: string[][] = [];
    for (const accountId of accounts) {
      holdIds.push(held(await stub.hold(bestRequest(accountId, 1, { priceTier: "A" }))).holdId);
      seen.push((await poolerClients(mirrorConnectionName(event.id))).map((client) => client.identity));
    }
    expect(await mirroredHoldIds(event.id)).toEqual(holdIds);
    const [first] = seen;
    expect(first).toHaveLength(1);
    expect(seen).toEqual(accounts.map(() => first));
  });

  it("replaces a connection broken under a send, and the hold still reaches Postgres", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 3 });
    const [first = "", blocked = "", later = ""] = accounts;
    const stub = inventoryOf(event.id);
    await stub.prepare(event.id);
    const holdIds = [held(await stub.hold(bestRequest(first, 1, { priceTier: "A" }))).holdId];
    const before = await poolerClients(mirrorConnectionName(event.id));
    expect(before).toHaveLength(1);

    // The next send waits on a lock of this account's row (the hold's foreign key); its backend is terminated meanwhile.
    let answer: Promise<HoldResult> | undefined;
    const terminated = await withDb((db) =>
      db.transaction(async (tx) => {
        const lockPid = await lockAccountRow(tx, blocked);
        answer = Promise.resolve(stub.hold(bestRequest(blocked, 1, { priceTier: "A" })));
        const waiting = await blockedBy(tx, lockPid);
        for (const pid of waiting) await tx.execute(sql`select pg_terminate_backend(${pid})`);
        return waiting.length;
      }),
    );
    expect(terminated).toBe(1);
    if (!answer) throw new Error("the hold was not sent");
    holdIds.push(held(await answer).holdId);
    expect(await mirroredHoldIds(event.id)).toEqual(holdIds);

    // A fresh connection replaced the broken one, and is kept in turn.
    const after = await poolerClients(mirrorConnectionName(event.id));
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    holdIds.push(held(await stub.hold(bestRequest(later, 1, { priceTier: "A" }))).holdId);
    expect(await mirroredHoldIds(event.id)).toEqual(holdIds);
    expect(await poolerClients(mirrorConnectionName(event.id))).toEqual(after);
  });
});
