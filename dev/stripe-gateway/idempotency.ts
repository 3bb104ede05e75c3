/** `Idempotency-Key` as Stripe documents it for API v1 (https://docs.stripe.com/api/idempotent_requests). */
import type { FormObject, FormValue } from "./exchange.ts";

/** A saved response, replayed byte for byte. */
export interface SavedResponse {
  status: number;
  body: string;
  requestId: string;
}

/** What a request with a key may do: run (and then save its response, or free the key), replay, or be refused. */
export type Claim =
  | { kind: "new"; finish(saved: SavedResponse | undefined): void }
  | { kind: "replay"; saved: SavedResponse }
  | { kind: "in_use" }
  | { kind: "mismatch"; message: string };

interface KeyEntry {
  endpoint: string;
  params: string;
  saved: SavedResponse | undefined;
}

/** Keys are scoped per API key. A key is locked while its first request executes; a response is saved once it began executing. */
export class IdempotencyStore {
  private readonly entries = new Map<string, KeyEntry>();

  claim(apiKey: string, key: string, endpoint: string, params: FormObject): Claim {
    const scopedKey = `${apiKey}\n${key}`;
    const canonical = canonicalJson(params);
    const existing = this.entries.get(scopedKey);
    if (existing) {
      if (existing.endpoint !== endpoint) {
        return {
          kind: "mismatch",
          message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${existing.endpoint}' vs '${endpoint}'). Try using a key other than '${key}' if you meant to execute a different request.`,
        };
      }
      if (existing.params !== canonical) {
        return {
          kind: "mismatch",
          message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        };
      }
      return existing.saved ? { kind: "replay", saved: existing.saved } : { kind: "in_use" };
    }
    const entry: KeyEntry = { endpoint, params: canonical, saved: undefined };
    this.entries.set(scopedKey, entry);
    return {
      kind: "new",
      finish: (saved) => {
        if (saved) entry.saved = saved;
        else this.entries.delete(scopedKey);
      },
    };
  }
}

/** JSON with sorted keys, so parameter order does not matter. */
function canonicalJson(value: FormValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  return `{${Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] ?? "")}`)
    .join(",")}}`;
}
