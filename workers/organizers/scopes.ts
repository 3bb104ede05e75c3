/**
 * What an organizer API key may do. Each admin route declares the scopes it
 * accepts (`organizerRoute` in workers/routes/openapi.ts); an admin key is
 * accepted everywhere.
 */

/** `admin`: everything. `read`: every GET. `check_in`: the door (check-in, and the event reads it needs). */
export const API_KEY_SCOPES = ["admin", "read", "check_in"] as const;

/** One of `API_KEY_SCOPES`. */
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** The routes' access levels: which scopes' keys each accepts. */
export const ROUTE_ACCESS = {
  /** Writes and key management. */
  admin: ["admin"],
  /** Reads. */
  read: ["admin", "read"],
  /** Reads the door needs too. */
  readOrDoor: ["admin", "read", "check_in"],
  /** The door's check-in writes. */
  door: ["admin", "check_in"],
  /** Every key (the route checks more itself: revoking a key). */
  any: ["admin", "read", "check_in"],
} as const satisfies Record<string, readonly ApiKeyScope[]>;

/** One of `ROUTE_ACCESS`'s levels. */
export type RouteAccess = keyof typeof ROUTE_ACCESS;

/** Whether `scope` is one of ours (stored and requested scopes are checked with it). */
export function isApiKeyScope(scope: string): scope is ApiKeyScope {
  return (API_KEY_SCOPES as readonly string[]).includes(scope);
}
