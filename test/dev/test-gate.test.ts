/**
 * The gate: `npm test` must exit non-zero whenever a test fails, a test file
 * fails to load, or the global setup or teardown fails. It once exited 0 for
 * all of these (a dependency's exit hook dropped vitest's exit code), so each
 * case here runs vitest as a child process with the real config and the real
 * global setup (the whole local stack), on a fixture written for the case.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Git-ignored; each run of this file gets its own folder. */
const FIXTURES = path.join(REPO_ROOT, "test", ".gate", randomUUID());
const CHILD_TIMEOUT_MS = 150_000;

type Project = "node" | "workers";

interface Fixture {
  project: Project;
  /** The fixture test file's source. */
  test: string;
  /** An extra global setup module's source, run before the real one (so its teardown runs after). */
  extraSetup?: string;
}

interface Outcome {
  code: number | null;
  output: string;
}

const PASSING = `import { expect, it } from "vitest";\nit("passes", () => { expect(1).toBe(1); });\n`;
const FAILING = `import { expect, it } from "vitest";\nit("fails on purpose", () => { expect(1).toBe(2); });\n`;

/**
 * Runs `vitest run` in a child process on one fixture, through a config that
 * is the real `vitest.config.ts` with only the project's `include` pointed at
 * the fixture (and any extra global setup appended).
 */
async function runVitest(name: string, fixture: Fixture): Promise<Outcome> {
  const folder = path.join(FIXTURES, name);
  await mkdir(folder, { recursive: true });
  const testFile = path.join(folder, `${name}.test.ts`);
  await writeFile(testFile, fixture.test);
  const setups: string[] = [];
  if (fixture.extraSetup) {
    const setupFile = path.join(folder, "extra-setup.ts");
    await writeFile(setupFile, fixture.extraSetup);
    setups.push(setupFile);
  }
  const configFile = path.join(folder, "vitest.config.ts");
  const relativeTest = path.relative(REPO_ROOT, testFile);
  await writeFile(
    configFile,
    [
      `import real from ${JSON.stringify(path.join(REPO_ROOT, "vitest.config.ts"))};`,
      "const test = real.test ?? {};",
      "const globalSetup = [test.globalSetup ?? []].flat();",
      "export default {",
      "  ...real,",
      `  root: ${JSON.stringify(REPO_ROOT)},`,
      "  test: {",
      "    ...test,",
      `    globalSetup: [...${JSON.stringify(setups)}, ...globalSetup],`,
      "    projects: (test.projects ?? []).map((project) =>",
      `      project.test?.name === ${JSON.stringify(fixture.project)} ? { ...project, test: { ...project.test, include: [${JSON.stringify(relativeTest)}] } } : project,`,
      "    ),",
      "  },",
      "};",
      "",
    ].join("\n"),
  );
  // The child must not think it is a worker of this vitest run.
  const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" };
  for (const key of Object.keys(env)) if (key.startsWith("VITEST") || key === "TEST" || key === "NODE_ENV") Reflect.deleteProperty(env, key);
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "node_modules", "vitest", "vitest.mjs"), "run", "--config", configFile, "--project", fixture.project], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`vitest on ${name} did not finish within ${CHILD_TIMEOUT_MS / 1000} s:\n${output}`));
    }, CHILD_TIMEOUT_MS);
    child.once("error", reject);
    child.once("exit", (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  return { code, output };
}

afterAll(async () => {
  await rm(FIXTURES, { recursive: true, force: true });
});

describe("npm test's exit code", { timeout: CHILD_TIMEOUT_MS + 10_000 }, () => {
  it.concurrent.each<Project>(["node", "workers"])("is non-zero when a test fails in the %s project, and 0 when it passes", async (project) => {
    const [failed, passed] = await Promise.all([
      runVitest(`${project}-fails`, { project, test: FAILING }),
      runVitest(`${project}-passes`, { project, test: PASSING }),
    ]);
    expect(failed.output).toMatch(/Tests\s+1 failed/);
    expect(failed.code, failed.output).toBe(1);
    expect(passed.output).toMatch(/Tests\s+1 passed/);
    expect(passed.code, passed.output).toBe(0);
  });

  it.concurrent("is non-zero when a test file fails to load", async () => {
    const outcome = await runVitest("load-fails", { project: "node", test: `import "./no-such-module.ts";\n${PASSING}` });
    expect(outcome.output).toMatch(/Test Files\s+1 failed/);
    expect(outcome.code, outcome.output).toBe(1);
  });

  it.concurrent("is non-zero when the global setup fails", async () => {
    const outcome = await runVitest("setup-fails", {
      project: "node",
      test: PASSING,
      extraSetup: `export default async function setup() { throw new Error("global setup failed on purpose"); }\n`,
    });
    expect(outcome.output).toContain("global setup failed on purpose");
    expect(outcome.code, outcome.output).not.toBe(0);
    expect(outcome.code).not.toBeNull();
  });

  it.concurrent("is non-zero when the global teardown fails", async () => {
    const outcome = await runVitest("teardown-fails", {
      project: "node",
      test: PASSING,
      // The real setup's teardown reports failures through this helper.
      extraSetup: [
        `import { runTeardown } from ${JSON.stringify(path.join(REPO_ROOT, "test", "setup", "teardown.ts"))};`,
        `export default async function setup() { return () => runTeardown([["a stand-in", async () => { throw new Error("global teardown failed on purpose"); }]]); }`,
        "",
      ].join("\n"),
    });
    expect(outcome.output).toMatch(/Tests\s+1 passed/);
    expect(outcome.output).toContain("global teardown failed on purpose");
    expect(outcome.code, outcome.output).not.toBe(0);
    expect(outcome.code).not.toBeNull();
  });
});
