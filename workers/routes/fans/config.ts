/**
 * `GET /api/config`: what the pages need to load the third-party widgets as
 * production does: Turnstile's site key and widget script, and Stripe's
 * publishable key and Stripe.js. Production leaves the URLs unset (Cloudflare's
 * and Stripe's own); the local stack points them at its stand-ins.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { jsonResponse } from "../openapi";
import { routeGroup } from "../route-group";

export const DEFAULT_TURNSTILE_SCRIPT_URL = "https://challenges.cloudflare.com/turnstile/v0/api.js";
export const DEFAULT_STRIPE_JS_URL = "https://js.stripe.com/v3/";

export const config = routeGroup();

const configSchema = z
  .object({
    turnstile: z.object({ siteKey: z.string(), scriptUrl: z.url() }),
    stripe: z.object({ publishableKey: z.string().nullable(), jsUrl: z.url() }),
  })
  .openapi("PageConfig");

config.openapi(
  createRoute({
    method: "get",
    path: "/config",
    summary: "Public keys and script URLs for the pages' Turnstile widget and Stripe.js",
    responses: { 200: jsonResponse(configSchema, "The public configuration.") },
  }),
  (c) => {
    c.header("Cache-Control", "public, max-age=60");
    return c.json(
      {
        turnstile: { siteKey: c.var.config.turnstileSiteKey, scriptUrl: c.env.TURNSTILE_SCRIPT_URL || DEFAULT_TURNSTILE_SCRIPT_URL },
        stripe: { publishableKey: c.env.STRIPE_PUBLISHABLE_KEY || null, jsUrl: c.env.STRIPE_JS_URL || DEFAULT_STRIPE_JS_URL },
      },
      200,
    );
  },
);
