import { SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, expect, it, vi } from "vitest";
import { smallChart } from "../../fixtures/charts";
import { withDb } from "../../fixtures/db";
import { openEvent } from "../../fixtures/seeding";
import { fanSession } from "../../fixtures/tokens";

afterEach(() => vi.useRealTimers());

async function register(eventId: string, accountId: string) {
  const token = await fanSession(accountId);
  return SELF.fetch(`https://t.test/api/events/${eventId}/pre-registration`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
}

it("counts each account once and makes the event hot when registrations reach 5x capacity, only before the sale", async () => {
  // 1 row of 2 seats per section (4 seats) + a 1-place pit: capacity 5, so 25 registrations make it hot.
  const { event, accounts } = await openEvent({ demandClass: "calm", chart: smallChart(1, 2, 1), accounts: 26 });
  // The fixture's sale is open; move it a day ahead so registration is open.
  await withDb((db) => db.execute(sql`update events set sale_starts_at = now() + interval '1 day', demand_class = 'calm', expected_demand = 0 where id = ${event.id}`));
  let last: { registrations: number; expectedDemand: number; demandClass: string } | undefined;
  for (const [i, account] of accounts.slice(0, 25).entries()) {
    const response = await register(event.id, account);
    expect(response.status).toBe(200);
    last = await response.json();
    expect(last?.registrations).toBe(i + 1);
    expect(last?.demandClass).toBe(i + 1 >= 25 ? "hot" : "calm");
  }
  const again = await register(event.id, accounts[0] ?? "");
  expect(await again.json()).toMatchObject({ registrations: 25, expectedDemand: 25, demandClass: "hot" });

  await withDb((db) => db.execute(sql`update events set sale_starts_at = now() - interval '1 minute' where id = ${event.id}`));
  const late = await register(event.id, accounts[25] ?? "");
  expect(late.status).toBe(409);
  expect(await late.json()).toMatchObject({ error: { code: "registration_closed" } });
  const count = await withDb((db) => db.execute<{ n: number }>(sql`select count(*)::int as n from pre_registrations where event_id = ${event.id}`));
  expect(count.rows[0]?.n).toBe(25);
});

it("needs a session and a real event", async () => {
  const anonymous = await SELF.fetch(`https://t.test/api/events/${crypto.randomUUID()}/pre-registration`, { method: "POST" });
  expect(anonymous.status).toBe(401);
  const { accounts } = await openEvent({ demandClass: "calm", accounts: 1 });
  const missing = await register(crypto.randomUUID(), accounts[0] ?? "");
  expect(missing.status).toBe(404);
});
