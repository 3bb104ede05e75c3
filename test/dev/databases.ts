/** Databases of their own on the test run's Postgres, for the node project's tests. */
import pg from "pg";
import { afterAll, beforeAll, inject } from "vitest";

/** Runs `work` on a connection to `url`, closed afterwards. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database (`<prefix>_<uuid>`) for the calling test file: created before its tests, dropped after them. Returns its URL. */
export function useScratchDatabase(prefix: string): string {
  const serverUrl = new URL(inject("postgresUrl"));
  const name = `${prefix}_${crypto.randomUUID().replaceAll("-", "")}`;
  const adminUrl = Object.assign(new URL(serverUrl), { pathname: "/postgres" }).toString();
  beforeAll(() => withClient(adminUrl, (client) => client.query(`create database "${name}"`)));
  afterAll(() => withClient(adminUrl, (client) => client.query(`drop database if exists "${name}" with (force)`)));
  return Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString();
}
