/**
 * `npm run event:prepare -- <event-id> [--env staging|production] [--url <origin>]`:
 * the operator's one command before a hot sale (see ./event-prepare/checklist.ts
 * for what it checks and does). It talks to a running Worker's admin API with an
 * organizer API key (`EDGE_TICKETS_API_KEY`; `npm run dev` prints the demo
 * organizer's, `npm run organizer:create` mints one): locally the dev server
 * (`http://127.0.0.1:8787`, or `EDGE_TICKETS_URL`); with `--env <name>` the
 * `PUBLIC_ORIGIN` of that environment in wrangler.toml (read with wrangler's own
 * config reader); `--url` wins over both. Prints the checklist, one line an item,
 * and exits 1 at the first failed item.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { unstable_readConfig } from "wrangler";
import { z } from "zod";
import { isMain, runMain } from "./cli.ts";
import { ChecklistFailed, formatItem, prepareEvent } from "./event-prepare/checklist.ts";

const USAGE = "usage: EDGE_TICKETS_API_KEY=etk_... npm run event:prepare -- <event-id> [--env staging|production] [--url https://...]";
const LOCAL_URL = "http://127.0.0.1:8787";
const WRANGLER_TOML = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../wrangler.toml");

interface Options {
  eventId: string;
  env: string | undefined;
  url: string | undefined;
}

function parseArgs(argv: string[]): Options {
  let eventId: string | undefined;
  let env: string | undefined;
  let url: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--env") env = argv[++i];
    else if (arg === "--url") url = argv[++i];
    else if (!arg.startsWith("-") && eventId === undefined) eventId = arg;
    else throw new Error(`unexpected argument ${arg}\n${USAGE}`);
  }
  if (!eventId) throw new Error(USAGE);
  if (env !== undefined && !/^[a-z][a-z0-9-]*$/.test(env)) throw new Error(`--env needs an environment name\n${USAGE}`);
  return { eventId, env, url };
}

/** The environment's PUBLIC_ORIGIN in wrangler.toml. */
function originOf(env: string): string {
  const config: unknown = unstable_readConfig({ config: WRANGLER_TOML, env }, { hideWarnings: true });
  const origin = z.object({ vars: z.record(z.string(), z.unknown()) }).parse(config).vars.PUBLIC_ORIGIN;
  if (typeof origin !== "string" || !/^https?:\/\//.test(origin)) throw new Error(`wrangler.toml has no PUBLIC_ORIGIN for --env ${env}`);
  return origin;
}

async function main(argv: string[]): Promise<void> {
  const options = parseArgs(argv);
  const apiKey = process.env.EDGE_TICKETS_API_KEY;
  if (!apiKey) throw new Error(`EDGE_TICKETS_API_KEY is not set (an organizer API key of the event's organizer).\n${USAGE}`);
  const baseUrl = (options.url ?? (options.env ? originOf(options.env) : (process.env.EDGE_TICKETS_URL ?? LOCAL_URL))).replace(/\/+$/, "");
  process.stdout.write(`Preparing event ${options.eventId} at ${baseUrl}\n`);
  try {
    await prepareEvent({ baseUrl, apiKey, fetch: (url, init) => fetch(url, init) }, options.eventId, (item) => process.stdout.write(`${formatItem(item)}\n`));
  } catch (error) {
    if (error instanceof ChecklistFailed) throw new Error(`checklist failed at ${error.message}`);
    throw error;
  }
  process.stdout.write("Every item checked: the sale is ready to open.\n");
}

if (isMain(import.meta.url)) runMain("event:prepare", () => main(process.argv.slice(2)));
