import { SELF } from "cloudflare:test";
import { expect, it } from "vitest";

it("reports Postgres and Redis reachable", async () => {
  const response = await SELF.fetch("https://tickets.test/api/health");
  const body = await response.json<{ ok: boolean; postgres: { ok: boolean }; redis: { ok: boolean } }>();
  expect(body).toMatchObject({ ok: true, postgres: { ok: true }, redis: { ok: true } });
  expect(response.status).toBe(200);
});
