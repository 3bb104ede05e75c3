import pg from "pg";
import { expect, inject, it } from "vitest";

it("reaches the test Postgres", async () => {
  const client = new pg.Client(inject("postgresUrl"));
  await client.connect();
  const { rows } = await client.query("select 1 as one");
  await client.end();
  expect(rows[0].one).toBe(1);
});
