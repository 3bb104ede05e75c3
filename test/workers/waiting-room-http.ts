/** The fans' waiting-room API over HTTP (SELF.fetch), for the Worker's waiting-room tests. */
import { env } from "cloudflare:test";
import { expect } from "vitest";
import { z } from "zod";
import { TURNSTILE_DUMMY_TOKEN } from "../../dev/turnstile";
import { signFanSession } from "../../workers/sign-in/fan-session";
import { rawRequest, type ReadResponse } from "./helpers";

/** A client IP no other request uses (rate limits and IP signals are per IP). */
export function uniqueIp(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return `10.${bytes[0]}.${bytes[1]}.${bytes[2]}`;
}

/** A fan session token for an account, as sign-in would issue it. */
export function fanSession(accountId: string): Promise<string> {
  return signFanSession(env.TOKEN_SIGNING_KEY, accountId);
}

/** Where and how a fan calls from. */
export interface Caller {
  token?: string | undefined;
  ip?: string | undefined;
}

function headers(caller: Caller, json: boolean): Record<string, string> {
  const out: Record<string, string> = { "CF-Connecting-IP": caller.ip ?? uniqueIp(), "User-Agent": "waiting-room-test" };
  if (caller.token !== undefined) out.Authorization = `Bearer ${caller.token}`;
  if (json) out["Content-Type"] = "application/json";
  return out;
}

/** POST with a JSON body (a string is sent as is). */
export function postJson(path: string, caller: Caller, body: unknown): Promise<ReadResponse> {
  return rawRequest(path, { method: "POST", headers: headers(caller, true), body: typeof body === "string" ? body : JSON.stringify(body) });
}

/** POST /api/events/:id/lobby. */
export function joinLobby(eventId: string, caller: Caller, body: { turnstileToken?: string; deviceId?: string } = { turnstileToken: TURNSTILE_DUMMY_TOKEN }): Promise<ReadResponse> {
  return postJson(`/api/events/${eventId}/lobby`, caller, body);
}

/** GET /api/events/:id/queue. */
export function getQueue(eventId: string): Promise<ReadResponse> {
  return rawRequest(`/api/events/${eventId}/queue`, { headers: { "CF-Connecting-IP": uniqueIp() } });
}

/** POST /api/events/:id/admission. */
export function exchangeTicket(eventId: string, caller: Caller, ticket: string): Promise<ReadResponse> {
  return postJson(`/api/events/${eventId}/admission`, caller, { ticket });
}

/** POST /api/events/:id/holds/best. */
export function holdBest(eventId: string, caller: Caller, body: { quantity: number; priceTier?: string }): Promise<ReadResponse> {
  return postJson(`/api/events/${eventId}/holds/best`, caller, { requestId: crypto.randomUUID(), allowSplit: true, ...body });
}

/** The lobby's answer. */
export const lobbyTicketSchema = z.strictObject({
  ticket: z.string(),
  orderKey: z.number().int().min(0),
  block: z.enum(["lobby", "late", "flagged"]),
  joinedAt: z.iso.datetime(),
  rejoined: z.boolean(),
});
export type LobbyTicket = z.infer<typeof lobbyTicketSchema>;

/** The published queue document (core/waiting-room/queue-state.ts), strict so a changed shape fails. */
export const queueStateSchema = z.strictObject({
  eventId: z.uuid(),
  threshold: z.number().int(),
  admitted: z.number().int().min(0),
  entrants: z.strictObject({ lobby: z.number().int(), late: z.number().int(), flagged: z.number().int() }),
  quantiles: z.array(z.number().int()),
  lateQuantiles: z.array(z.number().int()),
  flaggedQuantiles: z.array(z.number().int()),
  ratePerSecond: z.number(),
  paused: z.boolean(),
  soldOut: z.boolean(),
  available: z.number().int(),
  held: z.number().int(),
  saleStartsAt: z.number().int(),
  saleEndsAt: z.number().int(),
  updatedAt: z.number().int(),
});

/** A created hold, as far as these tests look at it. */
export const createdHoldSchema = z.object({ hold: z.object({ holdId: z.uuid(), status: z.literal("live") }) });

/** The exchange's answer. */
export const admissionSchema = z.strictObject({ token: z.string(), expiresAt: z.iso.datetime() });
export type Admission = z.infer<typeof admissionSchema>;

/** Joins the lobby and returns the ticket, or fails the test. */
export async function joined(eventId: string, caller: Caller, body?: { turnstileToken?: string; deviceId?: string }): Promise<LobbyTicket> {
  const response = await joinLobby(eventId, caller, body);
  expect(response.status, response.text).toBe(200);
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  return lobbyTicketSchema.parse(response.json);
}

/** Exchanges a ticket and returns the admission, or fails the test. */
export async function admitted(eventId: string, caller: Caller, ticket: string): Promise<Admission> {
  const response = await exchangeTicket(eventId, caller, ticket);
  expect(response.status, response.text).toBe(200);
  return admissionSchema.parse(response.json);
}

/** A JWT's payload, read without verifying (to look at, or to tamper with). */
export function payloadOf(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const parsed: unknown = JSON.parse(atob(part.replaceAll("-", "+").replaceAll("_", "/")));
  return z.record(z.string(), z.unknown()).parse(parsed);
}

/** base64url of a string or bytes, without padding. */
export function base64url(input: string | Uint8Array): string {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
