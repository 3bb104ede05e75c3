/**
 * `npm run organizer:create -- "Name"`: creates an organizer in DATABASE_URL
 * and prints its first API key, the only time it is shown in clear.
 * NEON_WS_PROXY (host:port of a relay) is used when set; a plain Postgres
 * without one is reached through a relay started for the run.
 */
import { createOrganizer } from "../workers/organizers/api-keys.ts";
import { isMain, runMain } from "./cli.ts";
import { openDb } from "./seed.ts";

const USAGE = 'usage: DATABASE_URL=postgres://... npm run organizer:create -- "Organizer name"';

async function main(argv: string[]): Promise<void> {
  const name = argv.join(" ").trim();
  if (name === "" || name.startsWith("-") || name.length > 200) throw new Error(USAGE);
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error(`DATABASE_URL is not set (npm run dev prints the local one).\n${USAGE}`);
  const { db, close } = await openDb(databaseUrl, process.env.NEON_WS_PROXY || undefined);
  try {
    const { organizerId, apiKey } = await createOrganizer(db, name);
    process.stdout.write(
      `Created organizer "${name}" (${organizerId}).\n` +
        `API key (shown once, store it now): ${apiKey}\n` +
        `Use it as: Authorization: Bearer ${apiKey}\n`,
    );
  } finally {
    await close();
  }
}

if (isMain(import.meta.url)) runMain("organizer:create", () => main(process.argv.slice(2)));
