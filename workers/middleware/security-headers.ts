/**
 * Security headers on every answer the Worker gives (API, admin, webhooks,
 * JWKS), errors included; the pages get theirs from static/_headers. An API
 * answer is data, never a document: its CSP runs nothing and no site may
 * frame it, browsers must not sniff it into HTML, and no Referer leaves it.
 * hono's `secureHeaders` sets them (a well-kept middleware rather than a
 * hand-written list).
 */
import { createMiddleware } from "hono/factory";
import { secureHeaders } from "hono/secure-headers";

/**
 * The headers middleware for the whole app. A WebSocket upgrade (the seat
 * feed) is left alone: its 101 answer's headers cannot change. Any other
 * answer is rewrapped first, as one from the edge cache (workers/routes/edge-cache.ts)
 * has immutable headers. A route that serves a document (the API docs page)
 * sets its own Content-Security-Policy, which is kept; every other answer
 * gets the API's, which runs nothing.
 */
export function securityHeaders() {
  const withHeaders = apiSecureHeaders();
  return createMiddleware(async (c, next) => {
    if (c.req.header("Upgrade")?.toLowerCase() === "websocket") return next();
    let ownPolicy: string | null = null;
    await withHeaders(c, async () => {
      await next();
      c.res = new Response(c.res.body, c.res);
      ownPolicy = c.res.headers.get(CSP);
    });
    if (ownPolicy !== null) c.res.headers.set(CSP, ownPolicy);
  });
}

const CSP = "Content-Security-Policy";

/**
 * The policy of a page the Worker renders from our own static files (the API
 * docs): scripts and styles from this origin only (Swagger UI also sets
 * inline style attributes, hence 'unsafe-inline' for styles alone), data
 * from this origin, never framed.
 */
export const DOCUMENT_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

function apiSecureHeaders() {
  return secureHeaders({
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    xFrameOptions: "DENY",
    xContentTypeOptions: "nosniff",
    referrerPolicy: "no-referrer",
    strictTransportSecurity: "max-age=31536000; includeSubDomains",
    // Organizers' tools and other sites may read the API and the JWKS with CORS; CORP would only get in their way.
    crossOriginResourcePolicy: false,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
}
