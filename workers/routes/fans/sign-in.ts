/** Fans sign in by emailed one-time code: ask for a code, exchange it for a fan session. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError } from "../../../core/errors";
import type { AppEnv } from "../../app-env";
import { clientIp } from "../../platform/client-ip";
import { createMailer } from "../../platform/mailer";
import { createRedis } from "../../platform/redis";
import { CHALLENGE_PATTERN, redeemSignInCode, requestSignInCode, SIGN_IN_CODE_TTL_MS, type SignInDeps } from "../../sign-in/sign-in-codes";
import { errorResponses, errorSchema, jsonBody, jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const signIn = routeGroup();

const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email().max(254))
  .openapi({ format: "email", example: "fan@example.com", description: "Trimmed and lower-cased before use." });

const tooManySignIns = jsonResponse(errorSchema, "`rate_limited`: too many requests from this client address, or from it for this email; see Retry-After.");

const challengeSchema = z
  .string()
  .regex(CHALLENGE_PATTERN, "Expected the challenge POST /api/auth/code answered.")
  .openapi({ example: "9f86d081884c7d659a2feaa0c55ad015", description: "From the code request's answer: a code works only with the challenge it was sent for." });

function signInDeps(c: Context<AppEnv>): SignInDeps {
  return { redis: createRedis(c.var.config), db: c.var.db, mailer: createMailer(c.var.config), signingKey: c.env.TOKEN_SIGNING_KEY };
}

function rateLimited(c: Context<AppEnv>, retryAfterSeconds: number): never {
  c.header("Retry-After", String(retryAfterSeconds));
  throw new ApiError(429, "rate_limited", `Too many sign-in requests; try again in ${retryAfterSeconds} s.`);
}

signIn.openapi(
  createRoute({
    method: "post",
    path: "/auth/code",
    summary: "Email a one-time sign-in code",
    description:
      "Always 202 for a well-formed address, whether or not it has an account (accounts are created on first sign-in). " +
      "The 6-digit code works once, for 10 minutes, and only with the `challenge` this answer carries (keep it: nobody else sees it); " +
      "5 wrong tries burn it. Codes others ask for the same address are separate: their tries never burn this one. " +
      "The email names the `reference`, so the fan can tell this code from others'.",
    request: { body: jsonBody(z.strictObject({ email: emailSchema })) },
    responses: {
      202: jsonResponse(z.object({ expiresInSeconds: z.number(), challenge: challengeSchema, reference: z.string().openapi({ example: "3FA9" }) }), "A code is on its way."),
      ...errorResponses(400),
      429: tooManySignIns,
      503: jsonResponse(errorSchema, "`mail_unavailable`: the email could not be sent; try again."),
    },
  }),
  async (c) => {
    const result = await requestSignInCode(signInDeps(c), { email: c.req.valid("json").email, ip: clientIp(c.req.raw.headers) });
    c.header("Cache-Control", "no-store");
    if (!result.ok && result.reason === "rate_limited") rateLimited(c, result.retryAfterSeconds);
    if (!result.ok) throw new ApiError(503, "mail_unavailable", "We could not send the code just now; please try again in a minute.");
    return c.json({ expiresInSeconds: SIGN_IN_CODE_TTL_MS / 1000, challenge: result.challenge, reference: result.reference }, 202);
  },
);

signIn.openapi(
  createRoute({
    method: "post",
    path: "/auth/session",
    summary: "Exchange an emailed code for a fan session",
    description: "Send the token as `Authorization: Bearer <token>` to the fan routes.",
    request: {
      body: jsonBody(z.strictObject({ email: emailSchema, challenge: challengeSchema, code: z.string().trim().regex(/^\d{6}$/, "Expected the 6 digits from the email.").openapi({ example: "042817" }) })),
    },
    responses: {
      200: jsonResponse(z.object({ token: z.string(), accountId: z.uuid(), expiresAt: z.string() }), "Signed in."),
      ...errorResponses(400),
      401: jsonResponse(errorSchema, "`invalid_code`: wrong, expired, used up, or not the code for this challenge; ask for a new code."),
      429: tooManySignIns,
    },
  }),
  async (c) => {
    const { email, challenge, code } = c.req.valid("json");
    const result = await redeemSignInCode(signInDeps(c), { email, challenge, code, ip: clientIp(c.req.raw.headers) });
    c.header("Cache-Control", "no-store");
    if (!result.ok && result.reason === "rate_limited") rateLimited(c, result.retryAfterSeconds);
    if (!result.ok) throw new ApiError(401, "invalid_code", "That code is wrong, expired or used up; ask for a new one.");
    return c.json({ token: result.token, accountId: result.accountId, expiresAt: new Date(result.expiresAt).toISOString() }, 200);
  },
);
