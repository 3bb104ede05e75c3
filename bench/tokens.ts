/**
 * `npm run bench -- tokens`: what a token costs, signed and verified with the
 * app's own functions, inside workerd (through a bench-only probe entry,
 * lib/bench-probe.ts: workerd's CPU read around one request doing `N` of one
 * operation) and in Node: admission tokens (HS256, checked on every hold) and
 * tickets (ES256, verifiable offline with the JWKS), and the PNG QR code a
 * ticket email draws for each ticket. One JSON line on stdout.
 *
 * No database is touched, but the Worker needs its configuration: the run
 * starts the local stack like the other scenarios.
 */
import path from "node:path";
import { REPO_ROOT } from "../dev/stack.ts";
import { generateAdmissionKey, generateSigningKey } from "../dev/signing-key.ts";
import { verifyFanToken } from "../workers/sign-in/fan-session.ts";
import { signTicketToken, verifyTicketToken } from "../workers/tickets/ticket-tokens.ts";
import { signCompactTicket } from "../workers/tickets/compact-tickets.ts";
import { ticketQrPng } from "../workers/tickets/qr-codes.ts";
import { benchTicket } from "./lib/bench-ticket.ts";
import { signAdmissionToken } from "../workers/waiting-room/tokens.ts";
import { prepareWorker, snapshotProject, startHost, WORKER_NAME, type TokenKeys } from "./lib/app.ts";
import { BENCH_PROBE_ENTRY, runTokenProbe, TOKEN_OPERATIONS, writeBenchProbe, type TokenOperation } from "./lib/bench-probe.ts";
import { calibrate, load1, machineInfo } from "./lib/machine.ts";
import { startBenchStack } from "./lib/stack.ts";
import { runScenario, say } from "./lib/scenario.ts";
import { atMost, thresholdsMet } from "./lib/thresholds.ts";

/** Operations per measurement (QR codes, a thousand times dearer than a token, fewer). */
const N = 20_000;
const N_QR = 500;
const runs = (operation: TokenOperation): number => (operation === "ticket_qr_png" ? N_QR : N);
/** The bar for a ticket email's QR code (one per ticket): at most this many ES256 signatures' worth of workerd CPU (drawn pixel by pixel with adaptive filtering it was ~25 ms, over a hundred). */
const MAX_QR_OF_TICKET_SIGN = 40;
/** The bar: checking an admission token (on every hold) costs at most half an ES256 verification in workerd (a ratio holds on a busy machine too). */
const MAX_OF_TICKET_VERIFY = 0.5;

/** The same operations in Node, with the same functions. */
function nodeOperations(keys: TokenKeys): Record<TokenOperation, (made: { admission: string[]; ticket: string[] }) => Promise<unknown>> {
  const accountId = crypto.randomUUID();
  const eventId = crypto.randomUUID();
  return {
    admission_sign_hs256: async (made) => {
      for (let i = 0; i < N; i++) made.admission.push(await signAdmissionToken(keys.ADMISSION_TOKEN_KEY, { accountId, eventId, admissionId: crypto.randomUUID(), expiresAt: Date.now() + 900_000 }));
    },
    admission_verify_hs256: async (made) => {
      for (const token of made.admission) await verifyFanToken(keys, token);
    },
    ticket_sign_es256: async (made) => {
      for (let i = 0; i < N; i++) {
        made.ticket.push(await signTicketToken(keys.TOKEN_SIGNING_KEY, { id: crypto.randomUUID(), eventId, holderAccountId: accountId, place: { section: "101", row: "1", seat: "1" }, eventEndsAt: new Date(Date.now() + 86_400_000) }));
      }
    },
    ticket_verify_es256: async (made) => {
      for (const token of made.ticket) if (!(await verifyTicketToken(keys.TOKEN_SIGNING_KEY, token)).ok) throw new Error("a ticket did not verify");
    },
    ticket_qr_png: async () => {
      const code = await signCompactTicket(keys.TOKEN_SIGNING_KEY, benchTicket(eventId, accountId));
      for (let i = 0; i < N_QR; i++) if (ticketQrPng(code).size === 0) throw new Error("empty QR code");
    },
  };
}

runScenario(async (cleanup) => {
  const loadStart = load1();
  const { workDir, stack } = await startBenchStack(cleanup);
  const keys: TokenKeys = { TOKEN_SIGNING_KEY: await generateSigningKey("bench"), ADMISSION_TOKEN_KEY: await generateAdmissionKey("bench") };
  const projectDir = path.join(workDir, "project");
  await snapshotProject(REPO_ROOT, projectDir);
  const secret = await writeBenchProbe(projectDir);
  const bundle = path.join(workDir, "bundle");
  const { envFile } = await prepareWorker({ repoRoot: REPO_ROOT, projectDir, stack, keys, envDir: path.join(workDir, "worker"), bundle, entry: BENCH_PROBE_ENTRY });
  const app = await startHost(REPO_ROOT, { projectDir, bundle, envFile, runDir: path.join(workDir, "worker"), workerName: WORKER_NAME });
  cleanup.add("the Worker", () => app.stop());

  const workerd: Record<string, number> = {};
  // Once untimed, so keys are imported and code is compiled before anything is timed.
  for (const operation of TOKEN_OPERATIONS) await runTokenProbe(app.url, secret, operation, 200);
  for (const operation of TOKEN_OPERATIONS) {
    const before = app.cpuMs().workerd;
    const done = await runTokenProbe(app.url, secret, operation, runs(operation));
    if (done !== runs(operation)) throw new Error(`${operation}: ${done} of ${runs(operation)} done`);
    workerd[operation] = Math.round((1000 * (app.cpuMs().workerd - before)) / runs(operation) * 10) / 10;
  }
  say(`workerd CPU per operation: ${JSON.stringify(workerd)}`);

  const node: Record<string, number> = {};
  const made = { admission: [] as string[], ticket: [] as string[] };
  const operations = nodeOperations(keys);
  for (const operation of TOKEN_OPERATIONS) {
    const before = process.cpuUsage();
    await operations[operation](made);
    const used = process.cpuUsage(before);
    node[operation] = Math.round((used.user + used.system) / runs(operation) * 10) / 10;
  }
  say(`Node CPU per operation: ${JSON.stringify(node)}`);

  const admissionVerify = workerd.admission_verify_hs256 ?? Number.POSITIVE_INFINITY;
  const ticketVerify = workerd.ticket_verify_es256 ?? 0;
  const ticketSign = workerd.ticket_sign_es256 ?? 0;
  const qr = workerd.ticket_qr_png ?? Number.POSITIVE_INFINITY;
  const thresholds = {
    admission_verify_of_ticket_verify: atMost(Math.round((100 * admissionVerify) / Math.max(ticketVerify, 1e-9)) / 100, MAX_OF_TICKET_VERIFY),
    ticket_qr_png_of_ticket_sign: atMost(Math.round((10 * qr) / Math.max(ticketSign, 1e-9)) / 10, MAX_QR_OF_TICKET_SIGN),
  };
  process.stdout.write(
    `${JSON.stringify({ bench: "tokens", n: N, workerd_cpu_us: workerd, node_cpu_us: node, thresholds, machine: { ...machineInfo(), ...calibrate(), load_avg_start: loadStart, load_avg_end: load1() } })}\n`,
  );
  return thresholdsMet(thresholds) ? 0 : 1;
});
