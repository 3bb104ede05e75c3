/** The middleware factories (workers/middleware/) on their own, in a bare hono app. */
import { env } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../../core/errors";
import { bearerToken } from "../../../workers/middleware/bearer-token";
import { requestLogger } from "../../../workers/middleware/request-logger";
import { requireFan } from "../../../workers/middleware/require-fan";
import { requireOperator } from "../../../workers/middleware/require-operator";
import { fanSession } from "../../fixtures/tokens";

describe("bearerToken", () => {
  it("reads the token of a Bearer header and nothing else", () => {
    expect(bearerToken("Bearer abc.def")).toBe("abc.def");
    expect(bearerToken("bearer   etk_x")).toBe("etk_x");
    for (const header of [undefined, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "xBearer abc"]) expect(bearerToken(header), String(header)).toBeUndefined();
  });
});

describe("requestLogger", () => {
  const app = new Hono<{ Bindings: Env }>().use(requestLogger()).get("/", (c) => c.json({ requestId: c.var.requestId, logger: typeof c.var.log.error }));

  it("takes Cloudflare's Ray ID as the request id, so our lines join Cloudflare's logs", async () => {
    const response = await app.request("/", { headers: { "CF-Ray": "8f1e2d3c4b5a6978-AMS" } }, env);
    expect(await response.json()).toEqual({ requestId: "8f1e2d3c4b5a6978-AMS", logger: "function" });
  });

  it("makes a random id when there is no Ray ID, a new one per request", async () => {
    const ids = await Promise.all([1, 2].map(async () => requestIdOf(await (await app.request("/", {}, env)).json())));
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[0]).not.toBe(ids[1]);
  });
});

describe("requireOperator", () => {
  const app = new Hono<{ Bindings: Env }>()
    .use(requireOperator())
    .get("/", (c) => c.text("ok"))
    .onError((error, c) => (error instanceof ApiError ? c.text(error.code, error.status) : c.text("unexpected", 500)));

  it("lets the operator token through and refuses anything else with 401", async () => {
    expect(env.OPS_TOKEN).toBeTruthy();
    expect((await app.request("/", { headers: { Authorization: `Bearer ${env.OPS_TOKEN}` } }, env)).status).toBe(200);
    const sameLength = env.OPS_TOKEN.slice(0, -1) + (env.OPS_TOKEN.endsWith("x") ? "y" : "x");
    for (const authorization of [`Bearer ${sameLength}`, `Bearer ${env.OPS_TOKEN}x`, `Bearer ${env.OPS_TOKEN.slice(1)}`, env.OPS_TOKEN, ""]) {
      const response = await app.request("/", { headers: { Authorization: authorization } }, env);
      expect(response.status, authorization).toBe(401);
      expect(await response.text()).toBe("unauthorized");
    }
  });

  it("refuses everyone when no operator token is configured", async () => {
    const response = await app.request("/", { headers: { Authorization: "Bearer anything" } }, { ...env, OPS_TOKEN: "" });
    expect(response.status).toBe(401);
  });
});

describe("requireFan", () => {
  const app = new Hono<{ Bindings: Env }>()
    .use(requireFan())
    .get("/mine", (c) => c.json({ ok: true }))
    .get("/missing", () => {
      throw new ApiError(404, "not_waiting", "You have not joined.");
    })
    .onError((error, c) => (error instanceof ApiError ? c.json({ error: { code: error.code } }, error.status) : c.text("unexpected", 500)));

  it("marks every answer behind it as the fan's own, never to be cached: answers, errors and refusals", async () => {
    const auth = { Authorization: `Bearer ${await fanSession(crypto.randomUUID())}` };
    const answers = [
      await app.request("/mine", { headers: auth }, env),
      await app.request("/missing", { headers: auth }, env),
      await app.request("/mine", {}, env),
      await app.request("/mine", { headers: { Authorization: "Bearer not-a-token" } }, env),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([200, 404, 401, 401]);
    for (const answer of answers) expect(answer.headers.get("Cache-Control"), String(answer.status)).toBe("no-store");
  });
});

function requestIdOf(body: unknown): string {
  if (typeof body !== "object" || body === null || !("requestId" in body) || typeof body.requestId !== "string") throw new Error("no request id");
  return body.requestId;
}
