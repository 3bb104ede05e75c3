/**
 * Fan sign-in by emailed code, end to end: through the Worker (SELF.fetch),
 * the real Redis behind the Upstash bridge, the real Postgres, and the mail
 * outbox, whose API the test reads over HTTP as a developer would.
 */
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { FAN_SESSION_AUDIENCE } from "../../../workers/sign-in/fan-session";
import { MAX_WRONG_CODES, SIGN_IN_CODE_TTL_MS, SIGN_IN_LIMITS } from "../../../workers/sign-in/sign-in-codes";
import { verifyToken } from "../../../workers/platform/signed-tokens";
import { verifyTurnstile } from "../../../workers/waiting-room/turnstile";
import { withDb } from "../../fixtures/db";
import { expectApiError, expectInvalid, rawRequest, type ReadResponse, uniqueIp } from "../../fixtures/http";
import { failMailTo, inbox } from "../../fixtures/mail";
import { openEvent } from "../../fixtures/seeding";

afterEach(() => {
  vi.useRealTimers();
});

/** A mixed-case address no other test uses. */
function uniqueEmail(): string {
  return `Fan.${crypto.randomUUID().slice(0, 8)}@Example.TEST`;
}

function post(path: string, body: unknown, ip: string, headers: Record<string, string> = {}): Promise<ReadResponse> {
  return rawRequest(`/api${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": ip, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A code as its requester holds it: the digits from the email and the challenge from the 202 answer. */
interface SentCode {
  code: string;
  challenge: string;
}

const requestCode = (email: string, ip = uniqueIp()) => post("/auth/code", { email }, ip);
const signIn = (email: string, { code, challenge }: SentCode, ip = uniqueIp()) => post("/auth/session", { email, challenge, code }, ip);
const codeRequestSchema = z.strictObject({ expiresInSeconds: z.number(), challenge: z.string().regex(/^[0-9a-f]{32}$/), reference: z.string().regex(/^[0-9A-F]{4}$/) });

/** The code in the newest email to `email`. */
async function latestCode(email: string): Promise<string> {
  const [newest] = await inbox(email);
  const code = /\b(\d{6})\b/.exec(newest?.text ?? "")?.[1];
  if (!code) throw new Error(`no code emailed to ${email}`);
  return code;
}

/** Requests a code (expecting 202) and reads it from the outbox. */
async function emailedCode(email: string, ip = uniqueIp()): Promise<SentCode> {
  const response = await requestCode(email, ip);
  expect(response.status, response.text).toBe(202);
  const { challenge } = codeRequestSchema.parse(response.json);
  return { code: await latestCode(email.toLowerCase()), challenge };
}

/** The same request's challenge with another (wrong) code. */
function otherCode(sent: SentCode, offset = 1): SentCode {
  return { ...sent, code: String((Number(sent.code) + offset) % 1_000_000).padStart(6, "0") };
}

async function accountsFor(email: string): Promise<{ id: string; email: string }[]> {
  return withDb(async (db) => (await db.execute<{ id: string; email: string }>(sql`select id, email from accounts where lower(email) = lower(${email})`)).rows);
}

const sessionSchema = z.strictObject({ token: z.string(), accountId: z.uuid(), expiresAt: z.iso.datetime() });

describe("sign-in by emailed code", () => {
  it("emails a code and exchanges it for a session that the fan routes accept; one account per address, whatever its case", async () => {
    const email = uniqueEmail();
    const normalized = email.toLowerCase();

    const asked = await requestCode(`  ${email} `);
    expect(asked.status, asked.text).toBe(202);
    const { expiresInSeconds, challenge, reference } = codeRequestSchema.parse(asked.json);
    expect(expiresInSeconds).toBe(SIGN_IN_CODE_TTL_MS / 1000);
    expect(asked.headers.get("Cache-Control")).toBe("no-store");
    const [mail] = await inbox(normalized);
    expect(mail).toMatchObject({ from: env.MAIL_FROM, to: [normalized] });
    const code = await latestCode(normalized);
    expect(mail?.subject).toContain(code);
    expect(mail?.html).toContain(code);
    expect(mail?.text).toContain(`reference ${reference}`);
    expect(mail?.text).not.toContain(challenge);

    const before = Date.now();
    const session = await signIn(email.toUpperCase(), { code, challenge });
    expect(session.status, session.text).toBe(200);
    const { token, accountId, expiresAt } = sessionSchema.parse(session.json);
    expect(await accountsFor(email)).toEqual([{ id: accountId, email: normalized }]);
    const claims = await verifyToken(env.TOKEN_SIGNING_KEY, token, FAN_SESSION_AUDIENCE);
    expect(claims.sub).toBe(accountId);
    expect(Date.parse(expiresAt)).toBe((claims.exp ?? 0) * 1000);
    expect(Date.parse(expiresAt)).toBeGreaterThan(before);

    // The session works on a route guarded by requireFan: the fan can hold a seat as that account.
    const { event } = await openEvent({ demandClass: "calm", accounts: 0 });
    const hold = await rawRequest(`/api/events/${event.id}/holds`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ requestId: `sign-in-${crypto.randomUUID()}`, seats: [0] }),
    });
    expect(hold.status, hold.text).toBe(201);
    const { holdId } = z.object({ hold: z.object({ holdId: z.uuid() }) }).parse(hold.json).hold;
    const owner = await withDb(async (db) => (await db.execute<{ account_id: string }>(sql`select account_id from holds where id = ${holdId}`)).rows);
    expect(owner).toEqual([{ account_id: accountId }]);
    const holds = await rawRequest(`/api/events/${event.id}/holds`, { headers: { Authorization: `Bearer ${token}` } });
    expect(holds.status, holds.text).toBe(200);
    expect(holds.json).toMatchObject({ holds: [{ holdId }] });
    expectApiError(await rawRequest(`/api/events/${event.id}/holds`), 401, "unauthorized");

    // A code works once; signing in again (any case) finds the same account.
    expectApiError(await signIn(normalized, { code, challenge }), 401, "invalid_code");
    const again = await signIn(normalized, await emailedCode(email.toUpperCase()));
    expect(again.status, again.text).toBe(200);
    expect(sessionSchema.parse(again.json).accountId).toBe(accountId);
    expect(await accountsFor(email)).toHaveLength(1);
  });

  it("finds an account created elsewhere with another case, rather than adding one", async () => {
    const email = uniqueEmail();
    const [existing] = await withDb(async (db) => (await db.execute<{ id: string }>(sql`insert into accounts (email) values (${email}) returning id`)).rows);
    const session = await signIn(email, await emailedCode(email));
    expect(session.status, session.text).toBe(200);
    expect(sessionSchema.parse(session.json).accountId).toBe(existing?.id);
    expect(await accountsFor(email)).toHaveLength(1);
  });

  it("takes a code only with the challenge it was sent for", async () => {
    const email = uniqueEmail();
    const first = await emailedCode(email);
    const second = await emailedCode(email);
    expect(second.challenge).not.toBe(first.challenge);
    expectApiError(await signIn(email, { ...first, challenge: second.challenge }), 401, "invalid_code");
    expectApiError(await signIn(email, { ...second, challenge: first.challenge }), 401, "invalid_code");
    expectApiError(await signIn(email, { ...first, challenge: "0".repeat(32) }), 401, "invalid_code");
    expect((await signIn(email, second)).status).toBe(200);
    expect((await signIn(email, first)).status).toBe(200);
  });
});

describe("wrong and expired codes", () => {
  it(`answers a wrong code with 401 invalid_code, and allows ${MAX_WRONG_CODES - 1} wrong tries before the right one`, async () => {
    const email = uniqueEmail();
    const code = await emailedCode(email);
    for (let i = 1; i < MAX_WRONG_CODES; i++) expectApiError(await signIn(email, otherCode(code, i)), 401, "invalid_code");
    expect((await signIn(email, code)).status).toBe(200);
  });

  it(`burns the code at the ${MAX_WRONG_CODES}th wrong try: then even the right code fails`, async () => {
    const email = uniqueEmail();
    const code = await emailedCode(email);
    for (let i = 1; i <= MAX_WRONG_CODES; i++) expectApiError(await signIn(email, otherCode(code, i)), 401, "invalid_code");
    expectApiError(await signIn(email, code), 401, "invalid_code");
    expect(await accountsFor(email)).toEqual([]);
    // A new code works again.
    expect((await signIn(email, await emailedCode(email))).status).toBe(200);
  });

  it("counts racing tries exactly: under fewer than 5 racing wrong codes the right one always wins, and after a burst the code is spent", async () => {
    const randomInt = (below: number) => (crypto.getRandomValues(new Uint32Array(1))[0] ?? 0) % below;
    for (let round = 0; round < 8; round++) {
      const wrongCount = round % 2 === 0 ? randomInt(MAX_WRONG_CODES) : MAX_WRONG_CODES + randomInt(8);
      const email = uniqueEmail();
      const code = await emailedCode(email);
      const tries = Array.from({ length: wrongCount }, (_, i) => otherCode(code, i + 1));
      const rightAt = randomInt(wrongCount + 1);
      tries.splice(rightAt, 0, code);
      const results = await Promise.all(tries.map((tried) => signIn(email, tried)));
      const [right] = results.splice(rightAt, 1);
      for (const wrong of results) expectApiError(wrong, 401, "invalid_code");
      if (!right) throw new Error("no answer for the right code");
      if (wrongCount < MAX_WRONG_CODES) expect(right.status, `round ${round}: ${wrongCount} wrong`).toBe(200);
      else if (right.status !== 200) expectApiError(right, 401, "invalid_code");
      // Redeemed or burned, the code never works again.
      expectApiError(await signIn(email, code), 401, "invalid_code");
    }
  });

  it("lets a code be redeemed once, however many tries race with it", async () => {
    const email = uniqueEmail();
    const code = await emailedCode(email);
    const tries = await Promise.all(Array.from({ length: 8 }, () => signIn(email, code)));
    expect(tries.filter((r) => r.status === 200)).toHaveLength(1);
    for (const response of tries.filter((r) => r.status !== 200)) expectApiError(response, 401, "invalid_code");
    expect(await accountsFor(email)).toHaveLength(1);
  });

  it("refuses a code for another address", async () => {
    const email = uniqueEmail();
    const code = await emailedCode(email);
    expectApiError(await signIn(uniqueEmail(), code), 401, "invalid_code");
    expectApiError(await signIn(email, { ...code, code: "000000" === code.code ? "000001" : "000000" }), 401, "invalid_code");
  });

  it("accepts a code until 10 minutes have passed, by the Worker's clock (not the Redis TTL)", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.now();
    const early = uniqueEmail();
    const late = uniqueEmail();
    const earlyCode = await emailedCode(early);
    const lateCode = await emailedCode(late);

    vi.setSystemTime(start + SIGN_IN_CODE_TTL_MS - 2_000);
    expect((await signIn(early, earlyCode)).status).toBe(200);

    vi.setSystemTime(start + SIGN_IN_CODE_TTL_MS + 1);
    expectApiError(await signIn(late, lateCode), 401, "invalid_code");
    vi.setSystemTime(start);
    expectApiError(await signIn(late, lateCode), 401, "invalid_code"); // an expired code is gone, not just late
    expect(await accountsFor(late)).toEqual([]);
  });
});

describe("rate limits", () => {
  it(`allows ${SIGN_IN_LIMITS.codeRequestsPerIp.requests} code requests per IP per 10 minutes, then 429 rate_limited with Retry-After, sending nothing`, async () => {
    const ip = uniqueIp();
    for (let i = 0; i < SIGN_IN_LIMITS.codeRequestsPerIp.requests; i++) expect((await requestCode(uniqueEmail(), ip)).status).toBe(202);
    const email = uniqueEmail();
    const refused = await requestCode(email, ip);
    expectApiError(refused, 429, "rate_limited");
    const retryAfter = Number(refused.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(await inbox(email.toLowerCase())).toEqual([]);
    // Another client is not affected.
    expect((await requestCode(email)).status).toBe(202);
  });

  it(`allows ${SIGN_IN_LIMITS.codeRequestsPerIpAndEmail.requests} code requests per address from one IP; other IPs keep theirs`, async () => {
    const email = uniqueEmail();
    const ip = uniqueIp();
    for (let i = 0; i < SIGN_IN_LIMITS.codeRequestsPerIpAndEmail.requests; i++) expect((await requestCode(i % 2 ? email : email.toUpperCase(), ip)).status).toBe(202);
    const refused = await requestCode(email, ip);
    expectApiError(refused, 429, "rate_limited");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await inbox(email.toLowerCase())).toHaveLength(SIGN_IN_LIMITS.codeRequestsPerIpAndEmail.requests);
    // The same IP may still ask for other addresses, and other IPs for this one.
    expect((await requestCode(uniqueEmail(), ip)).status).toBe(202);
    expect((await requestCode(email)).status).toBe(202);
  });

  it(`allows ${SIGN_IN_LIMITS.sessionAttemptsPerIp.requests} sign-in attempts per IP; a refused attempt does not use up the code`, async () => {
    const ip = uniqueIp();
    const email = uniqueEmail();
    const code = await emailedCode(email);
    const attempts = await Promise.all(Array.from({ length: SIGN_IN_LIMITS.sessionAttemptsPerIp.requests }, () => signIn(uniqueEmail(), { ...code, code: "123456" }, ip)));
    for (const response of attempts) expectApiError(response, 401, "invalid_code");
    const refused = await signIn(email, code, ip);
    expectApiError(refused, 429, "rate_limited");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect((await signIn(email, code)).status).toBe(200);
  });
});

describe("nobody can lock a fan out (issue 13, finding 2)", () => {
  it("lets the fan sign in whatever others send for their email: code requests from many IPs and wrong guesses, before and after", async () => {
    const victim = uniqueEmail();
    const attackerIps = Array.from({ length: 5 }, uniqueIp);
    // Others ask for codes for the victim's address until refused, from five addresses.
    const attackerCodes: SentCode[] = [];
    for (const ip of attackerIps) {
      for (let i = 0; i <= SIGN_IN_LIMITS.codeRequestsPerIpAndEmail.requests; i++) {
        const response = await requestCode(victim, ip);
        if (response.status === 202) attackerCodes.push({ code: "000000", challenge: codeRequestSchema.parse(response.json).challenge });
        else expectApiError(response, 429, "rate_limited");
      }
    }
    expect(attackerCodes).toHaveLength(attackerIps.length * SIGN_IN_LIMITS.codeRequestsPerIpAndEmail.requests);

    // The victim still gets a code.
    const sent = await emailedCode(victim);

    // Wrong guesses, with the attackers' own challenges and made-up ones, from many IPs, well past the wrong-try budget.
    const guesses = [...attackerCodes, ...Array.from({ length: 10 }, () => ({ code: "000000", challenge: crypto.randomUUID().replaceAll("-", "") }))];
    for (const [i, guess] of guesses.entries()) {
      const response = await signIn(victim, { ...guess, code: otherCode(sent, i + 1).code }, attackerIps[i % attackerIps.length]);
      expectApiError(response, 401, "invalid_code");
    }

    // The victim's own code still works.
    const session = await signIn(victim, sent);
    expect(session.status, session.text).toBe(200);
  });
});

describe("malformed input", () => {
  const malformedCodeRequests: [string, unknown, string | undefined][] = [
    ["not JSON", "{email:", undefined],
    ["no email", {}, "email"],
    ["not an email", { email: "not-an-email" }, "email"],
    ["an email with spaces inside", { email: "fan @example.test" }, "email"],
    ["a number", { email: 42 }, "email"],
    ["a too long email", { email: `${"a".repeat(250)}@example.test` }, "email"],
    ["an unknown field", { email: "fan@example.test", admin: true }, undefined],
    ["an array", [{ email: "fan@example.test" }], undefined],
  ];

  it.each(malformedCodeRequests)("refuses a code request with %s: 400 JSON, no stack trace, nothing sent", async (_, body, path) => {
    const response = await post("/auth/code", body, uniqueIp());
    if (path === undefined) expectApiError(response, 400, "invalid_request");
    else expectInvalid(response, path);
    expect(await inbox("fan@example.test")).toEqual([]);
  });

  it("refuses a body not sent as JSON (415) and a missing body (400), as JSON errors", async () => {
    const email = uniqueEmail();
    const ip = uniqueIp();
    const contentTypes: Record<string, string>[] = [{}, { "Content-Type": "text/plain" }];
    for (const headers of contentTypes) {
      const response = await rawRequest("/api/auth/code", { method: "POST", headers: { "CF-Connecting-IP": ip, ...headers }, body: JSON.stringify({ email }) });
      expectApiError(response, 415, "unsupported_media_type");
    }
    expectInvalid(await rawRequest("/api/auth/session", { method: "POST", headers: { "CF-Connecting-IP": ip } }), "email");
    expect(await inbox(email.toLowerCase())).toEqual([]);
  });

  it("refuses malformed sign-in attempts with 400, counting no wrong try and creating no account", async () => {
    const email = uniqueEmail();
    const code = await emailedCode(email);
    const { challenge } = code;
    const digits = code.code;
    for (const body of [
      { email, challenge, code: digits.slice(1) },
      { email, challenge, code: "abcdef" },
      { email, challenge, code: `${digits}0` },
      { email, challenge, code: Number(digits) },
      { challenge, code: digits },
      { email: "nope", challenge, code: digits },
      { email, code: digits },
      { email, challenge: challenge.toUpperCase(), code: digits },
      { email, challenge: `${challenge}0`, code: digits },
      { email, challenge, code: digits, extra: 1 },
    ]) {
      const response = await post("/auth/session", body, uniqueIp());
      expectApiError(response, 400, "invalid_request");
    }
    expectApiError(await post("/auth/session", "not json", uniqueIp()), 400, "invalid_request");
    expect(await accountsFor(email)).toEqual([]);
    // Ten malformed attempts, and the code still works: none counted as a wrong try.
    expect((await signIn(email, { challenge, code: ` ${digits} ` })).status).toBe(200);
  });
});

describe("mail provider failures", () => {
  it("answers 503 mail_unavailable when the provider fails, and a later request works", async () => {
    const email = uniqueEmail();
    await failMailTo(email.toLowerCase(), 1);
    const failed = await requestCode(email);
    expectApiError(failed, 503, "mail_unavailable");
    expect(await inbox(email.toLowerCase())).toEqual([]);

    const code = await emailedCode(email);
    expect((await signIn(email, code)).status).toBe(200);
  });
});

describe("Turnstile from workerd", () => {
  it("verifies Cloudflare's dummy token against the stand-in with the always-pass test secret", async () => {
    const verdict = await verifyTurnstile(env, "XXXX.DUMMY.TOKEN.XXXX", uniqueIp());
    expect(verdict).toMatchObject({ success: true, errorCodes: [] });
    const failing = await verifyTurnstile({ ...env, TURNSTILE_SECRET_KEY: "2x0000000000000000000000000000000AA" }, "XXXX.DUMMY.TOKEN.XXXX", uniqueIp());
    expect(failing).toEqual({ success: false, errorCodes: ["invalid-input-response"] });
  });
});
