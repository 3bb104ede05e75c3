/** The `sql` tag over a real object's SQLite: values are bound, never spliced into the statement. */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sqlOver, statementOf } from "../../../durable-objects/lib/sql";

describe("sql tag", () => {
  it("binds every value as a parameter, so a value cannot change the statement", async () => {
    const hostile = "x'); DROP TABLE probes; --";
    const rows = await runInDurableObject(env.SEAT_MAP_FEED.getByName(crypto.randomUUID()), (_feed, state) => {
      const sql = sqlOver(state.storage.sql);
      sql`CREATE TABLE probes (id INTEGER PRIMARY KEY, name TEXT, size REAL, data BLOB)`;
      for (const [name, size] of [[hostile, 1.5], ["plain", null]] as const) sql`INSERT INTO probes (name, size, data) VALUES (${name}, ${size}, ${new Uint8Array([1, 2]).buffer})`;
      return sql<{ name: string; size: number | null; n: number }>`SELECT name, size, (SELECT count(*) FROM probes WHERE name = ${hostile}) AS n FROM probes ORDER BY id`.toArray();
    });
    expect(rows).toEqual([
      { name: hostile, size: 1.5, n: 1 },
      { name: "plain", size: null, n: 1 },
    ]);
  });

  it("turns a call site into one statement, with ? where each value goes", () => {
    const site = (value: number) => ((strings: TemplateStringsArray, ..._values: unknown[]) => strings)`SELECT ${value} AS a, ${value + 1} AS b`;
    const first = site(1);
    expect(site(2)).toBe(first); // one strings array per call site
    expect(statementOf(first)).toBe("SELECT ? AS a, ? AS b");
    expect(statementOf(first)).toBe(statementOf(site(3)));
  });
});
