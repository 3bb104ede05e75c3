import { SELF } from "cloudflare:test";
import { afterEach, expect, it, vi } from "vitest";
import { openEvent } from "../../fixtures/seeding";
import { fanSession } from "../../fixtures/tokens";

afterEach(() => {
  vi.useRealTimers();
});

it("rate-limits admission exchanges per account with @upstash/ratelimit (429 with Retry-After)", async () => {
  const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 1 });
  const session = await fanSession(accounts[0] ?? "");
  // All 11 attempts in one of the limiter's 60-s windows: across a boundary its sliding window weighs the earlier
  // window's attempts down (and rounds), so a slow run straddling one got a 401 for the 11th attempt.
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1_000);
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 11; i++) {
    const response = await SELF.fetch(`https://t.test/api/events/${event.id}/admission`, {
      method: "POST",
      headers: { Authorization: `Bearer ${session}`, "Content-Type": "application/json", "CF-Connecting-IP": `198.51.100.${i}` },
      body: JSON.stringify({ ticket: "not-a-ticket" }),
    });
    statuses.push(response.status);
    if (response.status === 429) retryAfter = response.headers.get("Retry-After");
    await response.arrayBuffer();
  }
  expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
  expect(statuses[10]).toBe(429);
  expect(Number(retryAfter)).toBeGreaterThan(0);
});
