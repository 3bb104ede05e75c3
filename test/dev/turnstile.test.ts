import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  SITEVERIFY_PATH,
  startTurnstileStandIn,
  TURNSTILE_DUMMY_TOKEN,
  TURNSTILE_TEST_SECRETS,
  turnstileTokenOnDevice,
  type SiteverifyRequestRecord,
  type TurnstileStandIn,
} from "../../dev/turnstile.ts";
import { DEFAULT_TURNSTILE_VERIFY_URL } from "../../core/config.ts";
import { TURNSTILE_UNAVAILABLE, verifyTurnstile } from "../../workers/waiting-room/turnstile.ts";

let standIn: TurnstileStandIn;

beforeAll(async () => {
  standIn = await startTurnstileStandIn({ port: 0 });
});

afterAll(async () => {
  await standIn.close();
});

/** Cloudflare's answer: success, error codes, and on success the challenge's details. */
const passSchema = z.strictObject({
  success: z.literal(true),
  "error-codes": z.tuple([]),
  challenge_ts: z.iso.datetime(),
  hostname: z.string(),
  action: z.string(),
  cdata: z.string(),
  metadata: z.strictObject({ interactive: z.boolean(), ephemeral_id: z.string().optional() }),
});
const failSchema = z.strictObject({ success: z.literal(false), "error-codes": z.array(z.string()).min(1), messages: z.array(z.string()) });

type Encoding = "form" | "json" | "multipart";

async function siteverify(fields: Record<string, string>, encoding: Encoding = "form", target = standIn) {
  let body: BodyInit;
  const headers: Record<string, string> = {};
  if (encoding === "json") {
    body = JSON.stringify(fields);
    headers["content-type"] = "application/json";
  } else if (encoding === "multipart") {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    body = form;
  } else {
    body = new URLSearchParams(fields);
  }
  const response = await fetch(target.verifyUrl, { method: "POST", headers, body });
  return { status: response.status, json: (await response.json()) as unknown };
}

const recordSchema = z.strictObject({
  contentType: z.string(),
  secret: z.enum(["passes", "fails", "spent", "missing", "other"]),
  response: z.string().optional(),
  remoteip: z.string().optional(),
  idempotency_key: z.string().optional(),
});

async function recorded(): Promise<SiteverifyRequestRecord[]> {
  const response = await fetch(`${standIn.url}/__requests`);
  return z.strictObject({ requests: z.array(recordSchema) }).parse(await response.json()).requests;
}

describe("siteverify with Cloudflare's test secret keys", () => {
  it.each<Encoding>(["form", "json", "multipart"])("answers as Cloudflare does (%s body)", async (encoding) => {
    const pass = await siteverify({ secret: TURNSTILE_TEST_SECRETS.passes, response: TURNSTILE_DUMMY_TOKEN }, encoding);
    expect(pass.status).toBe(200);
    expect(passSchema.parse(pass.json)).toMatchObject({ hostname: "example.com", action: "", cdata: "" });

    const fail = await siteverify({ secret: TURNSTILE_TEST_SECRETS.fails, response: TURNSTILE_DUMMY_TOKEN }, encoding);
    expect(failSchema.parse(fail.json)["error-codes"]).toEqual(["invalid-input-response"]);

    const spent = await siteverify({ secret: TURNSTILE_TEST_SECRETS.spent, response: TURNSTILE_DUMMY_TOKEN }, encoding);
    expect(failSchema.parse(spent.json)["error-codes"]).toEqual(["timeout-or-duplicate"]);
  });

  it("checks the secret before the token, and the token's presence and length", async () => {
    const codes = async (fields: Record<string, string>) => failSchema.parse((await siteverify(fields)).json)["error-codes"];
    expect(await codes({ response: TURNSTILE_DUMMY_TOKEN })).toEqual(["missing-input-secret"]);
    expect(await codes({ secret: "0x4AAAAAAAA-a-real-looking-secret", response: TURNSTILE_DUMMY_TOKEN })).toEqual(["invalid-input-secret"]);
    expect(await codes({ secret: TURNSTILE_TEST_SECRETS.passes })).toEqual(["missing-input-response"]);
    expect(await codes({ secret: TURNSTILE_TEST_SECRETS.passes, response: "" })).toEqual(["missing-input-response"]);
    expect(await codes({ secret: TURNSTILE_TEST_SECRETS.passes, response: "x".repeat(2049) })).toEqual(["invalid-input-response"]);
  });

  it("answers a repeated idempotency_key with the first answer", async () => {
    const key = randomUUID();
    const first = passSchema.parse((await siteverify({ secret: TURNSTILE_TEST_SECRETS.passes, response: "t", idempotency_key: key })).json);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const again = passSchema.parse((await siteverify({ secret: TURNSTILE_TEST_SECRETS.passes, response: "t", idempotency_key: key })).json);
    expect(again).toEqual(first);
  });

  it("refuses an unreadable body with 400 bad-request", async () => {
    const response = await fetch(standIn.verifyUrl, { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" });
    expect(response.status).toBe(400);
    expect(failSchema.parse(await response.json())["error-codes"]).toEqual(["bad-request"]);
    const text = await fetch(standIn.verifyUrl, { method: "POST", headers: { "content-type": "text/plain" }, body: "secret=x" });
    expect(text.status).toBe(400);
    expect((await fetch(standIn.verifyUrl)).status).toBe(405);
  });

  it("records what it was sent, with the secret reduced to its test-key behaviour", async () => {
    const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
    const key = randomUUID();
    await siteverify({ secret: TURNSTILE_TEST_SECRETS.fails, response: "recorded-token", remoteip: ip, idempotency_key: key }, "json");
    expect((await recorded()).filter((r) => r.idempotency_key === key)).toEqual([
      { contentType: "application/json", secret: "fails", response: "recorded-token", remoteip: ip, idempotency_key: key },
    ]);
  });
});

describe("workers/waiting-room/turnstile.ts verifyTurnstile against the stand-in", () => {
  const env = (secret: string = TURNSTILE_TEST_SECRETS.passes, url = standIn.verifyUrl) => ({ TURNSTILE_SECRET_KEY: secret, TURNSTILE_VERIFY_URL: url });

  it("posts the form Cloudflare documents (secret, response, remoteip, idempotency_key) and reports a pass", async () => {
    const ip = "2001:db8::7";
    const key = randomUUID();
    const verdict = await verifyTurnstile(env(), TURNSTILE_DUMMY_TOKEN, ip, { idempotencyKey: key });
    expect(verdict).toMatchObject({ success: true, errorCodes: [], hostname: "example.com", action: "", cdata: "" });
    expect(Date.parse(verdict.challengeTs ?? "")).not.toBeNaN();
    expect((await recorded()).filter((r) => r.idempotency_key === key)).toEqual([
      { contentType: "application/x-www-form-urlencoded", secret: "passes", response: TURNSTILE_DUMMY_TOKEN, remoteip: ip, idempotency_key: key },
    ]);
  });

  it("always sends an idempotency key (a UUID), and leaves remoteip out without an IP", async () => {
    const token = `token-${randomUUID()}`;
    await verifyTurnstile(env(), token, undefined);
    const [record] = (await recorded()).filter((r) => r.response === token);
    expect(record?.remoteip).toBeUndefined();
    expect(record?.idempotency_key).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("reports Cloudflare's error codes for the failing test keys, and refuses empty or oversized tokens without a call", async () => {
    expect(await verifyTurnstile(env(TURNSTILE_TEST_SECRETS.fails), TURNSTILE_DUMMY_TOKEN, "203.0.113.1")).toEqual({ success: false, errorCodes: ["invalid-input-response"] });
    expect(await verifyTurnstile(env(TURNSTILE_TEST_SECRETS.spent), TURNSTILE_DUMMY_TOKEN, "203.0.113.1")).toEqual({ success: false, errorCodes: ["timeout-or-duplicate"] });
    expect(await verifyTurnstile(env("a-secret-only-cloudflare-knows"), TURNSTILE_DUMMY_TOKEN, "203.0.113.1")).toEqual({ success: false, errorCodes: ["invalid-input-secret"] });
    const before = (await recorded()).length;
    expect(await verifyTurnstile(env(), "", "203.0.113.1")).toEqual({ success: false, errorCodes: ["missing-input-response"] });
    expect(await verifyTurnstile(env(), "x".repeat(2049), "203.0.113.1")).toEqual({ success: false, errorCodes: ["invalid-input-response"] });
    expect((await recorded()).length).toBe(before);
  });

  it("reports the ephemeral id of the device that solved the challenge, when siteverify gives one", async () => {
    const plain = await verifyTurnstile(env(), TURNSTILE_DUMMY_TOKEN, "203.0.113.1");
    expect(plain.success).toBe(true);
    expect(plain.ephemeralId).toBeUndefined();
    const [a1, a2, b] = await Promise.all(
      [turnstileTokenOnDevice("laptop-a"), turnstileTokenOnDevice("laptop-a"), turnstileTokenOnDevice("laptop-b")].map((token) => verifyTurnstile(env(), token, "203.0.113.1")),
    );
    expect(a1?.ephemeralId).toMatch(/^x:[A-Za-z0-9_-]{22}$/);
    expect(a2?.ephemeralId).toBe(a1?.ephemeralId);
    expect(b?.ephemeralId).not.toBe(a1?.ephemeralId);
  });

  it("refuses a pass for another widget when an action is expected", async () => {
    expect(await verifyTurnstile(env(), TURNSTILE_DUMMY_TOKEN, "203.0.113.1", { expectedAction: "lobby" })).toMatchObject({ success: false, errorCodes: ["action-mismatch"] });
    expect(await verifyTurnstile(env(), TURNSTILE_DUMMY_TOKEN, "203.0.113.1", { expectedAction: "" })).toMatchObject({ success: true });
  });

  it("retries once with the same idempotency key after a 5xx, and passes", async () => {
    const faulty = await startTurnstileStandIn({ port: 0 });
    try {
      await fetch(`${faulty.url}/__faults`, { method: "POST", body: JSON.stringify({ mode: "error500", count: 1 }) });
      const verdict = await verifyTurnstile(env(TURNSTILE_TEST_SECRETS.passes, faulty.verifyUrl), TURNSTILE_DUMMY_TOKEN, "203.0.113.1");
      expect(verdict.success).toBe(true);
    } finally {
      await faulty.close();
    }
  });

  it("fails closed when siteverify errors twice, hangs, or is not there", async () => {
    const faulty = await startTurnstileStandIn({ port: 0 });
    try {
      await fetch(`${faulty.url}/__faults`, { method: "POST", body: JSON.stringify({ mode: "error500", count: 2 }) });
      expect(await verifyTurnstile(env(TURNSTILE_TEST_SECRETS.passes, faulty.verifyUrl), TURNSTILE_DUMMY_TOKEN, "203.0.113.1")).toEqual({
        success: false,
        errorCodes: [TURNSTILE_UNAVAILABLE],
      });

      await fetch(`${faulty.url}/__faults`, { method: "POST", body: JSON.stringify({ mode: "hang", count: 2 }) });
      const started = Date.now();
      expect(await verifyTurnstile(env(TURNSTILE_TEST_SECRETS.passes, faulty.verifyUrl), TURNSTILE_DUMMY_TOKEN, "203.0.113.1", { timeoutMs: 200 })).toEqual({
        success: false,
        errorCodes: [TURNSTILE_UNAVAILABLE],
      });
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await faulty.close();
    }
    expect(await verifyTurnstile(env(TURNSTILE_TEST_SECRETS.passes, faulty.verifyUrl), TURNSTILE_DUMMY_TOKEN, "203.0.113.1", { timeoutMs: 500 })).toEqual({
      success: false,
      errorCodes: [TURNSTILE_UNAVAILABLE],
    });
  });

  it("defaults to Cloudflare's siteverify and fails fast without a secret", async () => {
    expect(DEFAULT_TURNSTILE_VERIFY_URL).toBe(`https://challenges.cloudflare.com${SITEVERIFY_PATH}`);
    await expect(verifyTurnstile({ TURNSTILE_SECRET_KEY: "", TURNSTILE_VERIFY_URL: "" }, TURNSTILE_DUMMY_TOKEN, undefined)).rejects.toThrow(/TURNSTILE_SECRET_KEY/);
  });
});
