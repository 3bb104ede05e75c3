/**
 * Invariant 5 for the waiting room's tokens, through the Worker: lobby
 * tickets and admission tokens that are forged, expired, unsigned (`alg:
 * none`), for another audience, event or account, or tampered with are all
 * refused with a JSON 401/403, and the room does not change. Exchanging the
 * same lobby ticket twice returns the same admission (one attempt key per fan).
 */
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { ADMISSION_TTL_MS } from "../../../durable-objects/waiting-room";
import { publicJwks, signToken } from "../../../workers/platform/signed-tokens";
import { ADMISSION_AUDIENCE, LOBBY_AUDIENCE } from "../../../workers/waiting-room/tokens";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { accountOf, hotSale, type HotSale } from "../../fixtures/hot-sale";
import { expectApiError } from "../../fixtures/http";
import { roomOf, roomStorage } from "../../fixtures/objects";
import { base64url, fanSession, payloadOf, tamperedToken } from "../../fixtures/tokens";
import { admitted, type Caller, exchangeTicket, holdBest, joined, joinLobby, type LobbyTicket } from "../../fixtures/waiting-room";

afterEach(() => {
  vi.useRealTimers();
});

/** The key id the Worker signs with (tests share one TOKEN_SIGNING_KEY). */
const signingKid = z.object({ kid: z.string() }).parse(JSON.parse(env.TOKEN_SIGNING_KEY ?? "{}")).kid;

/** A token signed with a key of our own, under the Worker's key id. */
async function forged(claims: Record<string, unknown>, options: { kid?: string } = {}): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256");
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: options.kid ?? signingKid, typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3_600)
    .sign(privateKey);
}

/** The same claims with no signature at all. */
function unsigned(claims: Record<string, unknown>): string {
  return `${base64url(JSON.stringify({ alg: "none", typ: "JWT", kid: signingKid }))}.${base64url(JSON.stringify(claims))}.`;
}

/** A real token whose payload was edited (the signature no longer matches). */
/** HS256 over the claims, keyed with the Worker's public key (the classic algorithm-confusion attack). */
async function confused(claims: Record<string, unknown>): Promise<string> {
  const jwks = await publicJwks(env.TOKEN_SIGNING_KEY);
  const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: signingKid, typ: "JWT" }).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 3_600).sign(secret);
}

interface Fan {
  accountId: string;
  token: string;
  ticket: LobbyTicket;
}

interface Scene {
  saleA: HotSale;
  saleB: HotSale;
  fanA: Fan;
  fanB: Fan;
  /** fanA's admission to event A. */
  admission: string;
}

/** Two hot sales; fans A and B in A's lobby, both admitted at the start, A's ticket exchanged once. */
async function scene(): Promise<Scene> {
  startFakeClock();
  const [saleA, saleB] = await Promise.all([hotSale({ accounts: 3 }), hotSale({ accounts: 1 })]);
  const fanA = { accountId: accountOf(saleA, 0), token: await fanSession(accountOf(saleA, 0)) };
  const fanB = { accountId: accountOf(saleA, 1), token: await fanSession(accountOf(saleA, 1)) };
  const ticketA = await joined(saleA.eventId, fanA);
  const ticketB = await joined(saleA.eventId, fanB);
  await joined(saleB.eventId, fanA);
  setClock(saleA.saleStartsAt + 1_000);
  expect(await runDurableObjectAlarm(roomOf(saleA.eventId))).toBe(true);
  expect(await runDurableObjectAlarm(roomOf(saleB.eventId))).toBe(true);
  const admission = await admitted(saleA.eventId, fanA, ticketA.ticket);
  return { saleA, saleB, fanA: { ...fanA, ticket: ticketA }, fanB: { ...fanB, ticket: ticketB }, admission: admission.token };
}

let shared: Scene;
beforeAll(async () => {
  // Only the lobby tickets and one admission are made here; each test sets its own clock from the sale's.
  shared = await scene();
  vi.useRealTimers();
});

/** Runs `attempts`, then checks the room stored exactly what it stored before. */
async function roomUnchanged(eventId: string, attempts: () => Promise<void>): Promise<void> {
  const before = await roomStorage(eventId);
  await attempts();
  expect(await roomStorage(eventId)).toEqual(before);
}

describe("lobby tickets", () => {
  it("exchanging the same ticket again returns the same admission, bound to the account and event", async () => {
    const { saleA, fanA, admission } = shared;
    vi.useFakeTimers({ toFake: ["Date"] });
    setClock(saleA.saleStartsAt + 2_000);
    const again = await admitted(saleA.eventId, fanA, fanA.ticket.ticket);
    const first = payloadOf(admission);
    const second = payloadOf(again.token);
    expect(second.jti).toBe(first.jti);
    expect(first).toMatchObject({ aud: ADMISSION_AUDIENCE, sub: fanA.accountId, eid: saleA.eventId, iss: "edge-tickets" });
    expect(Number(first.exp) * 1000).toBeLessThanOrEqual(saleA.saleStartsAt + 1_000 + ADMISSION_TTL_MS);
    const entrant = (await roomStorage(saleA.eventId)).entrants.find((e) => e.account_id === fanA.accountId);
    expect(entrant?.admission_id).toBe(first.jti);
  });

  it("refuses forged, unsigned, confused, expired, tampered, misaddressed and someone else's tickets with 401, and the room does not change", async () => {
    const { saleA, saleB, fanA, fanB } = shared;
    vi.useFakeTimers({ toFake: ["Date"] });
    setClock(saleA.saleStartsAt + 3_000);
    const claims = { iss: "edge-tickets", aud: LOBBY_AUDIENCE, sub: fanB.accountId, jti: crypto.randomUUID(), eid: saleA.eventId, key: fanB.ticket.orderKey };
    const bad: [string, Caller, string][] = [
      ["forged signature", fanB, await forged(claims)],
      ["unknown key id", fanB, await forged(claims, { kid: "someone-elses-key" })],
      ["alg none", fanB, unsigned({ ...claims, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3_600 })],
      ["HS256 with the public key", fanB, await confused(claims)],
      [
        "expired",
        fanB,
        await signToken(env.TOKEN_SIGNING_KEY, { audience: LOBBY_AUDIENCE, subject: fanB.accountId, ttlSeconds: -5, claims: { eid: saleA.eventId, key: fanB.ticket.orderKey } }),
      ],
      ["tampered order key (to the front)", fanB, tamperedToken(fanB.ticket.ticket, { key: 0 })],
      ["tampered to A's key", fanB, tamperedToken(fanB.ticket.ticket, { key: fanA.ticket.orderKey })],
      ["tampered account", fanA, tamperedToken(fanB.ticket.ticket, { sub: fanA.accountId })],
      ["someone else's ticket", fanA, fanB.ticket.ticket],
      ["a fan session instead of a ticket", fanB, fanB.token],
      ["an admission instead of a ticket", fanA, shared.admission],
      ["not a JWT", fanB, "not.a.jwt"],
    ];
    await roomUnchanged(saleA.eventId, async () => {
      for (const [name, caller, ticket] of bad) {
        const response = await exchangeTicket(saleA.eventId, caller, ticket);
        expect(response.status, `${name}: ${response.text}`).toBe(401);
        expectApiError(response, 401, "invalid_ticket");
      }
    });
    // A ticket for event A is not a ticket for event B (where fan A also waits).
    await roomUnchanged(saleB.eventId, async () => {
      expectApiError(await exchangeTicket(saleB.eventId, fanA, fanA.ticket.ticket), 401, "invalid_ticket");
    });
  });

  it("refuses a forged, unsigned or expired fan session at the lobby and the exchange with 401, and the room does not change", async () => {
    const { saleA, fanB } = shared;
    vi.useFakeTimers({ toFake: ["Date"] });
    setClock(saleA.saleStartsAt + 4_000);
    const claims = { iss: "edge-tickets", aud: "fan", sub: fanB.accountId, jti: crypto.randomUUID() };
    const sessions = [
      await forged(claims),
      unsigned(claims),
      await signToken(env.TOKEN_SIGNING_KEY, { audience: "fan", subject: fanB.accountId, ttlSeconds: -5 }),
      tamperedToken(fanB.token, { sub: crypto.randomUUID() }),
      fanB.ticket.ticket, // a lobby ticket is not a session
    ];
    await roomUnchanged(saleA.eventId, async () => {
      for (const token of sessions) {
        expectApiError(await joinLobby(saleA.eventId, { token }), 401, "invalid_token");
        expectApiError(await exchangeTicket(saleA.eventId, { token }, fanB.ticket.ticket), 401, "invalid_token");
      }
      expectApiError(await joinLobby(saleA.eventId, {}), 401, "unauthorized");
    });
  });
});

describe("admission tokens", () => {
  it("hold at their event, and forged, unsigned, tampered or expired ones are refused with 401", async () => {
    const { saleA, fanA, admission } = shared;
    vi.useFakeTimers({ toFake: ["Date"] });
    setClock(saleA.saleStartsAt + 10_000);
    const claims = { ...payloadOf(admission) };
    const refused = [await forged(claims), unsigned(claims), tamperedToken(admission, { sub: accountOf(saleA, 2) }), tamperedToken(admission, { exp: Number(claims.exp) + 3_600 })];
    await roomUnchanged(saleA.eventId, async () => {
      for (const token of refused) expectApiError(await holdBest(saleA.eventId, { token }, { quantity: 1 }), 401, "invalid_token");
    });
    const held = await holdBest(saleA.eventId, { token: admission }, { quantity: 1 });
    expect(held.status, held.text).toBe(201);

    // Fifteen minutes later the admission is over.
    setClock(saleA.saleStartsAt + 1_000 + ADMISSION_TTL_MS + 1_000);
    await roomUnchanged(saleA.eventId, async () => {
      expectApiError(await holdBest(saleA.eventId, { token: admission }, { quantity: 1 }), 401, "invalid_token");
    });
    expect(fanA.accountId).toBe(claims.sub);
  });

  // DESIGN invariant 5: "admission tokens bound to one account and event". The hold routes check it
  // (`assertMayHold` in workers/routes/fans/holds.ts).
  it("refuses an admission for event A at event B with 403", async () => {
    const { saleA, saleB, admission } = shared;
    vi.useFakeTimers({ toFake: ["Date"] });
    setClock(Math.max(saleA.saleStartsAt, saleB.saleStartsAt) + 20_000);
    const response = await holdBest(saleB.eventId, { token: admission }, { quantity: 1 });
    expect(response.status, response.text).toBe(403);
  });
});
