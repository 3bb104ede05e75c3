import path from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { isMain, runMain } from "./cli.ts";

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "migrations");

/** Applies the committed drizzle-kit migrations to `databaseUrl` (idempotent). */
export async function applyMigrations(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await migrate(drizzle({ client }), { migrationsFolder });
  } finally {
    await client.end();
  }
}

if (isMain(import.meta.url)) {
  runMain("db:migrate", async () => {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error("DATABASE_URL is not set: point it at the Postgres to migrate (npm run dev prints the local one).");
    await applyMigrations(url);
    process.stdout.write("migrations applied\n");
  });
}
