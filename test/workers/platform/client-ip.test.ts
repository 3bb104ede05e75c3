/**
 * Issue 13, finding 8 (last part): the routes whose limits are keyed on the
 * client's address (sign-in code requests and sign-in, the lobby join, the
 * admission exchange) refuse a request without `CF-Connecting-IP` with 400
 * `client_address_missing`, and it changes nothing. Before, such requests
 * shared one "unknown" bucket: anyone able to reach the Worker without the
 * header spent everyone else's budget, and went unlimited by address.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN } from "../../../dev/turnstile";
import { startFakeClock } from "../../fixtures/clocks";
import { accountOf, hotSale } from "../../fixtures/hot-sale";
import { callWorker, expectApiError, type ReadResponse, uniqueIp } from "../../fixtures/http";
import { inbox } from "../../fixtures/mail";
import { entrantsOf } from "../../fixtures/objects";
import { redisKeys } from "../../fixtures/redis";
import { fanSession } from "../../fixtures/tokens";
import { joined } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

/** A POST with a JSON body and no `CF-Connecting-IP`, as a client that reached the Worker around Cloudflare's edge would send it. */
function withoutAddress(path: string, body: unknown, bearer?: string): Promise<ReadResponse> {
  return callWorker("POST", path, { bearer, body, headers: { "User-Agent": "client-ip-test" } });
}

function expectAddressMissing(response: ReadResponse): void {
  expectApiError(response, 400, "client_address_missing");
}

describe("a request without CF-Connecting-IP to a route limited by address", () => {
  it("POST /api/auth/code: 400, no email sent, no limit counted", async () => {
    const email = `fan.${crypto.randomUUID().slice(0, 8)}@example.test`;
    const before = await redisKeys("*unknown*");
    expectAddressMissing(await withoutAddress("/api/auth/code", { email }));
    expect(await inbox(email)).toEqual([]);
    expect(await redisKeys("*unknown*")).toEqual(before);
  });

  it("POST /api/auth/session: 400, and the code is neither used nor burnt", async () => {
    const email = `fan.${crypto.randomUUID().slice(0, 8)}@example.test`;
    const requested = await callWorker("POST", "/api/auth/code", { body: { email }, headers: { "CF-Connecting-IP": uniqueIp() } });
    expect(requested.status, requested.text).toBe(202);
    const { challenge } = z.object({ challenge: z.string() }).parse(requested.json);
    const code = /\b(\d{6})\b/.exec((await inbox(email))[0]?.text ?? "")?.[1] ?? "";

    for (const tried of ["000000", code]) expectAddressMissing(await withoutAddress("/api/auth/session", { email, challenge, code: tried }));
    const signedIn = await callWorker("POST", "/api/auth/session", { body: { email, challenge, code }, headers: { "CF-Connecting-IP": uniqueIp() } });
    expect(signedIn.status, signedIn.text).toBe(200);
  });

  it("POST /api/events/:id/lobby and /admission: 400, and the line and its Redis keys are as they were", async () => {
    startFakeClock();
    const sale = await hotSale({ accounts: 2 });
    const token = await fanSession(accountOf(sale, 0));
    const ticket = await joined(sale.eventId, { token });
    const newcomer = await fanSession(accountOf(sale, 1));
    const before = { redis: await redisKeys(`*${sale.eventId}*`), entrants: await entrantsOf(sale.eventId) };

    expectAddressMissing(await withoutAddress(`/api/events/${sale.eventId}/lobby`, { turnstileToken: TURNSTILE_DUMMY_TOKEN }, newcomer));
    expectAddressMissing(await withoutAddress(`/api/events/${sale.eventId}/lobby`, { turnstileToken: TURNSTILE_DUMMY_TOKEN }, token));
    expectAddressMissing(await withoutAddress(`/api/events/${sale.eventId}/admission`, { ticket: ticket.ticket }, token));

    const after = { redis: await redisKeys(`*${sale.eventId}*`), entrants: await entrantsOf(sale.eventId) };
    expect([...after.redis].map(([key, { type, value }]) => ({ key, type, value }))).toEqual([...before.redis].map(([key, { type, value }]) => ({ key, type, value })));
    expect(after.entrants).toEqual(before.entrants);
  });
});
