import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startMailOutbox, type MailOutbox } from "../../dev/mail-outbox.ts";
import { createMailer, MailError } from "../../workers/platform/mailer.ts";

const API_KEY = "outbox-test-key";
let outbox: MailOutbox;

beforeAll(async () => {
  outbox = await startMailOutbox({ port: 0, apiKey: API_KEY });
});

afterAll(async () => {
  await outbox.close();
});

const emailSchema = z.strictObject({
  object: z.literal("email"),
  id: z.uuid(),
  from: z.string(),
  to: z.array(z.string()),
  cc: z.array(z.string()),
  bcc: z.array(z.string()),
  reply_to: z.array(z.string()),
  subject: z.string(),
  text: z.string().nullable(),
  html: z.string().nullable(),
  created_at: z.iso.datetime(),
  last_event: z.literal("delivered"),
});
const listSchema = z.strictObject({ object: z.literal("list"), has_more: z.boolean(), data: z.array(emailSchema) });
const providerErrorSchema = z.strictObject({ statusCode: z.number(), name: z.string(), message: z.string() });

/** An address no other test uses. */
function address(prefix = "fan"): string {
  return `${prefix}-${randomUUID().slice(0, 8)}@example.test`;
}

/** A raw call to the outbox, as a provider client makes it. */
async function call(path: string, init: { method?: string; body?: unknown; key?: string | null; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? API_KEY}`;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const body = init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body);
  const response = await fetch(`${outbox.url}${path}`, { method: init.method ?? "GET", headers, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: parseOrUndefined(text) };
}

/** The JSON in `text`, or undefined when it is not JSON (the outbox page, say). */
function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function inbox(to: string) {
  const response = await call(`/emails?to=${encodeURIComponent(to)}`, { key: null });
  expect(response.status).toBe(200);
  return listSchema.parse(response.json).data;
}

function send(to: string | string[], extra: Record<string, unknown> = {}, init: { key?: string | null; headers?: Record<string, string> } = {}) {
  return call("/emails", { method: "POST", body: { from: "Edge Tickets <no-reply@edge.test>", to, subject: "Hello", text: "Hi there", ...extra }, ...init });
}

describe("sending (Resend's POST /emails)", () => {
  it("accepts an email and lists it newest first, filtered by recipient, case-insensitively", async () => {
    const to = address();
    const other = address("other");
    const first = await send(to, { subject: "First", html: "<p>1</p>" });
    const second = await send([to.toUpperCase(), other], { subject: "Second", cc: "cc@example.test" });
    expect(first.status, first.text).toBe(200);
    const { id } = z.strictObject({ id: z.uuid() }).parse(first.json);

    const mine = await inbox(to);
    expect(mine.map((m) => m.subject)).toEqual(["Second", "First"]);
    expect(mine[1]).toMatchObject({ id, from: "Edge Tickets <no-reply@edge.test>", to: [to], text: "Hi there", html: "<p>1</p>", cc: [] });
    expect(mine[0]).toMatchObject({ to: [to.toUpperCase(), other], cc: ["cc@example.test"], html: null });
    expect((await inbox(other)).map((m) => m.subject)).toEqual(["Second"]);
    expect(z.strictObject({ id: z.string() }).parse(second.json).id).not.toBe(id);

    const byId = await call(`/emails/${id}`, { key: null });
    expect(emailSchema.parse(byId.json)).toEqual(mine[1]);
    expect((await call(`/emails/${randomUUID()}`, { key: null })).status).toBe(404);
  });

  it("refuses a missing or wrong API key as Resend does, and keeps nothing", async () => {
    const to = address();
    const missing = await send(to, {}, { key: null });
    expect(missing.status).toBe(401);
    expect(providerErrorSchema.parse(missing.json).name).toBe("missing_api_key");
    const wrong = await send(to, {}, { key: "not-the-key" });
    expect(wrong.status).toBe(403);
    expect(providerErrorSchema.parse(wrong.json).name).toBe("invalid_api_key");
    expect(await inbox(to)).toEqual([]);
  });

  it("refuses malformed emails with 422 validation_error (and unreadable JSON with 400), keeping nothing", async () => {
    const to = address();
    for (const body of [{ to, subject: "No sender", text: "x" }, { from: "a@b.test", to, text: "no subject" }, { from: "a@b.test", to, subject: "No body" }, { from: "a@b.test", to: [], subject: "s", text: "x" }]) {
      const response = await call("/emails", { method: "POST", body });
      expect(response.status, JSON.stringify(body)).toBe(422);
      expect(providerErrorSchema.parse(response.json).name).toBe("validation_error");
    }
    const garbled = await call("/emails", { method: "POST", body: "{not json" });
    expect(garbled.status).toBe(400);
    expect(providerErrorSchema.parse(garbled.json).statusCode).toBe(400);
    expect(await inbox(to)).toEqual([]);
  });

  it("honours Idempotency-Key: a retry sends nothing new; the same key with another payload is a 409", async () => {
    const to = address();
    const key = randomUUID();
    const first = await send(to, { subject: "Once" }, { headers: { "idempotency-key": key } });
    const retry = await send(to, { subject: "Once" }, { headers: { "idempotency-key": key } });
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual(first.json);
    const changed = await send(to, { subject: "Changed" }, { headers: { "idempotency-key": key } });
    expect(changed.status).toBe(409);
    expect(providerErrorSchema.parse(changed.json).name).toBe("invalid_idempotent_request");
    expect((await inbox(to)).map((m) => m.subject)).toEqual(["Once"]);
  });
});

describe("reading and clearing", () => {
  it("shows a page for developers, with every subject and body escaped", async () => {
    const to = address();
    await send(to, { subject: "Code <b>123456</b>", text: "Your code is 123456 & <script>alert(1)</script>" });
    const page = await call("/", { key: null });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.text).toContain("Code &#60;b&#62;123456&#60;/b&#62;");
    expect(page.text).toContain("Your code is 123456 &#38; &#60;script&#62;");
    expect(page.text).not.toContain("<script>alert");
    expect(page.text).toContain(to);
  });

  it("DELETE /emails empties the outbox", async () => {
    const separate = await startMailOutbox({ port: 0, apiKey: API_KEY });
    try {
      const to = address();
      await fetch(`${separate.url}/emails`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ from: "a@b.test", to, subject: "s", text: "t" }),
      });
      const cleared = await fetch(`${separate.url}/emails`, { method: "DELETE" });
      expect(await cleared.json()).toEqual({ object: "list", deleted: 1 });
      expect(listSchema.parse(await (await fetch(`${separate.url}/emails`)).json()).data).toEqual([]);
    } finally {
      await separate.close();
    }
  });

  it("keeps every email's envelope past the newest 500 bodies, so a sellout's buyers can all be checked", async () => {
    const separate = await startMailOutbox({ port: 0, apiKey: API_KEY });
    try {
      const sent = Array.from({ length: 620 }, (_, i) => `buyer-${i}-${randomUUID().slice(0, 6)}@example.test`);
      for (let i = 0; i < sent.length; i += 20) {
        await Promise.all(
          sent.slice(i, i + 20).map((to, j) =>
            fetch(`${separate.url}/emails`, {
              method: "POST",
              headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
              body: JSON.stringify({ from: "a@b.test", to, subject: `Your ticket ${i + j}`, text: `ticket ${i + j}`, html: `<p>${i + j}</p>` }),
            }),
          ),
        );
      }
      const all = listSchema.parse(await (await fetch(`${separate.url}/emails`)).json()).data;
      expect(all).toHaveLength(620);
      expect(new Set(all.flatMap((m) => m.to))).toEqual(new Set(sent));
      // The newest 500 keep their bodies; the 120 before them only their envelopes.
      expect(all.filter((m) => m.text !== null && m.html !== null)).toHaveLength(500);
      expect(all.slice(500).every((m) => m.text === null && m.html === null && /^Your ticket/.test(m.subject))).toBe(true);
      const page = await (await fetch(`${separate.url}/`)).text();
      expect(page).toContain("<title>Mail outbox (620)</title>");
      expect(page.match(/<article>/g)).toHaveLength(500);
    } finally {
      await separate.close();
    }
  });
});

describe("fault injection", () => {
  it("error500: the next `count` sends to that address fail with Resend's 500 body; others and later ones succeed", async () => {
    const to = address();
    const bystander = address("bystander");
    const armed = await call("/__faults", { method: "POST", key: null, body: { mode: "error500", count: 2, to } });
    expect(armed.status).toBe(200);

    expect((await send(bystander)).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const failed = await send(to);
      expect(failed.status).toBe(500);
      expect(providerErrorSchema.parse(failed.json)).toMatchObject({ statusCode: 500, name: "internal_server_error" });
    }
    expect((await send(to)).status).toBe(200);
    expect(await inbox(to)).toHaveLength(1);
    expect(await inbox(bystander)).toHaveLength(1);
  });

  it("hang: the send never answers (the client gives up) and nothing is kept; close() still returns", async () => {
    const separate = await startMailOutbox({ port: 0, apiKey: API_KEY });
    const to = address();
    await fetch(`${separate.url}/__faults`, { method: "POST", body: JSON.stringify({ mode: "hang", count: 1 }) });
    const attempt = fetch(`${separate.url}/emails`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ from: "a@b.test", to, subject: "s", text: "t" }),
      signal: AbortSignal.timeout(300),
    });
    await expect(attempt).rejects.toThrow(/abort|timeout/i);
    expect(listSchema.parse(await (await fetch(`${separate.url}/emails`)).json()).data).toEqual([]);
    await separate.close();
  });

  it("refuses a malformed fault, and DELETE /__faults disarms them", async () => {
    expect((await call("/__faults", { method: "POST", key: null, body: { mode: "explode", count: 1 } })).status).toBe(422);
    const to = address();
    await call("/__faults", { method: "POST", key: null, body: { mode: "error500", count: 5, to } });
    const disarmed = await call("/__faults", { method: "DELETE", key: null });
    expect(disarmed.json).toEqual({ faults: [] });
    expect((await send(to)).status).toBe(200);
  });
});

describe("workers/platform/mailer.ts against the outbox", () => {
  const config = () => ({ mailApiUrl: outbox.url, mailApiKey: API_KEY, mailFrom: "Edge Tickets <no-reply@edge.test>" });

  it("sends the provider's JSON with MAIL_FROM as sender and returns the provider's id", async () => {
    const to = address();
    const sent = await createMailer(config()).sendEmail({ to, subject: "Your tickets", text: "plain", html: "<p>rich</p>" });
    const [email] = await inbox(to);
    expect(email).toMatchObject({ id: sent.id, from: "Edge Tickets <no-reply@edge.test>", to: [to], subject: "Your tickets", text: "plain", html: "<p>rich</p>" });
  });

  it("passes an idempotency key, so a retried send is delivered once", async () => {
    const to = address();
    const mailer = createMailer(config());
    const message = { to, subject: "Once only", text: "t", html: "<p>t</p>" };
    const first = await mailer.sendEmail(message, { idempotencyKey: `tickets/${randomUUID()}` });
    expect(first.id).toBeTruthy();
    const key = `tickets/${randomUUID()}`;
    const a = await mailer.sendEmail(message, { idempotencyKey: key });
    const b = await mailer.sendEmail(message, { idempotencyKey: key });
    expect(b.id).toBe(a.id);
    expect(await inbox(to)).toHaveLength(2);
  });

  it("turns a 5xx into a retryable MailError and a refused key into a final one", async () => {
    const to = address();
    await call("/__faults", { method: "POST", key: null, body: { mode: "error500", count: 1, to } });
    const failure = await createMailer(config())
      .sendEmail({ to, subject: "s", text: "t", html: "h" })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MailError);
    expect(failure).toMatchObject({ status: 500, retryable: true });

    const refused = await createMailer({ ...config(), mailApiKey: "wrong" })
      .sendEmail({ to, subject: "s", text: "t", html: "h" })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: "MailError", status: 403, retryable: false });
    expect(String(refused)).toContain("invalid_api_key");
    expect(await inbox(to)).toEqual([]);
  });

  it("gives up on a provider that hangs after its timeout, and on one that is not there", async () => {
    const to = address();
    await call("/__faults", { method: "POST", key: null, body: { mode: "hang", count: 1, to } });
    const started = Date.now();
    const hung = await createMailer(config(), { timeoutMs: 300 })
      .sendEmail({ to, subject: "s", text: "t", html: "h" })
      .catch((error: unknown) => error);
    expect(hung).toMatchObject({ name: "MailError", status: undefined, retryable: true });
    expect(String(hung)).toMatch(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);

    const gone = await startMailOutbox({ port: 0, apiKey: API_KEY });
    await gone.close();
    const unreachable = await createMailer({ ...config(), mailApiUrl: gone.url })
      .sendEmail({ to, subject: "s", text: "t", html: "h" })
      .catch((error: unknown) => error);
    expect(unreachable).toMatchObject({ name: "MailError", retryable: true });
    expect(String(unreachable)).toMatch(/unreachable/);
  });
});
