/**
 * Nothing changes on a 400 (issue 13, finding 4): a hold refused for bad
 * input (a seat or price tier the event does not have) counts no attempt
 * against the one-per-5-s limit and keeps no answer for its request id, so
 * the fan's next, valid request (even with the same id) is served at once.
 * Through the fans' HTTP API, for a calm event (Postgres) and a hot one
 * (Durable Object).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signFanSession } from "../../../workers/sign-in/fan-session";
import { signAdmissionToken } from "../../../workers/waiting-room/tokens";
import { openEvent } from "../../fixtures/seeding";
import { expectApiError, rawRequest, type ReadResponse } from "../../fixtures/http";

function postHold(eventId: string, token: string, path: "" | "/best", body: Record<string, unknown>): Promise<ReadResponse> {
  return rawRequest(`/api/events/${eventId}/holds${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe.each(["calm", "hot"] as const)("bad hold requests at a %s event change nothing", (demandClass) => {
  async function fans() {
    const { event, accounts } = await openEvent({ demandClass, accounts: 3, purchaseLimit: 8 });
    const tokens = await Promise.all(
      accounts.map((accountId) =>
        demandClass === "hot"
          ? signAdmissionToken(env.ADMISSION_TOKEN_KEY, { accountId, eventId: event.id, admissionId: crypto.randomUUID(), expiresAt: Date.now() + 15 * 60_000 })
          : signFanSession(env.TOKEN_SIGNING_KEY, accountId),
      ),
    );
    return { eventId: event.id, tokens };
  }

  it("a seat index past any seat: 400, then a valid hold with the same request id is served at once", async () => {
    const { eventId, tokens } = await fans();
    const [token = ""] = tokens;
    const requestId = `bad-seat-${crypto.randomUUID()}`;
    const refused = await postHold(eventId, token, "", { requestId, seats: [1e12] });
    expect(refused.status, refused.text).toBe(400);
    const held = await postHold(eventId, token, "", { requestId, seats: [0] });
    expect(held.status, held.text).toBe(201);
  });

  it("a seat this event does not have: 400 invalid_seat, then a valid hold with the same request id is served at once", async () => {
    const { eventId, tokens } = await fans();
    const [, token = ""] = tokens;
    const requestId = `no-seat-${crypto.randomUUID()}`;
    expectApiError(await postHold(eventId, token, "", { requestId, seats: [0, 999_999] }), 400, "invalid_seat");
    const held = await postHold(eventId, token, "", { requestId, seats: [0] });
    expect(held.status, held.text).toBe(201);
  });

  it("best available in an unknown price tier: 400 invalid_seat, then a valid request with the same id is served at once", async () => {
    const { eventId, tokens } = await fans();
    const [, , token = ""] = tokens;
    const requestId = `no-tier-${crypto.randomUUID()}`;
    expectApiError(await postHold(eventId, token, "/best", { requestId, quantity: 1, priceTier: "no-such-tier" }), 400, "invalid_seat");
    const held = await postHold(eventId, token, "/best", { requestId, quantity: 1 });
    expect(held.status, held.text).toBe(201);
    // A real attempt still counts: the next one within 5 s is too fast.
    expectApiError(await postHold(eventId, token, "/best", { requestId: `next-${crypto.randomUUID()}`, quantity: 1 }), 429, "too_fast");
  });
});
