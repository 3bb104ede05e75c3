/**
 * The one-hold-attempt-per-5-s limit counts fans, not sessions (issue 13,
 * finding 3): an account signed in several times gets one attempt per
 * interval across all its sessions. Through the fans' HTTP API at a calm
 * event (hot events take an admission token, one per account and event).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signFanSession } from "../../../workers/sign-in/fan-session";
import { openEvent } from "../../fixtures/seeding";
import { expectApiError, rawRequest } from "../../fixtures/http";

const SESSIONS = 3;

describe("hold attempts at a calm event", () => {
  it(`allow one attempt per account at a time, whichever of its ${SESSIONS} sessions sends it`, async () => {
    const { event, accounts } = await openEvent({ demandClass: "calm", accounts: 2, purchaseLimit: 8 });
    const [fan = "", other = ""] = accounts;
    const tokenFor = (accountId: string) => signFanSession(env.TOKEN_SIGNING_KEY, accountId);
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => tokenFor(fan)));
    const hold = (token: string, seat: number) =>
      rawRequest(`/api/events/${event.id}/holds`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ requestId: crypto.randomUUID(), seats: [seat] }),
      });

    const answers = await Promise.all(sessions.map((token, i) => hold(token, i)));
    expect(answers.map((a) => a.status).sort(), answers.map((a) => a.text).join("\n")).toEqual([201, 429, 429]);
    for (const refused of answers.filter((a) => a.status !== 201)) expectApiError(refused, 429, "too_fast");

    // Another account is not slowed down by this one.
    const theirs = await hold(await tokenFor(other), SESSIONS);
    expect(theirs.status, theirs.text).toBe(201);
  });
});
