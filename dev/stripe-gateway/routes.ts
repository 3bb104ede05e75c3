/** How a resource declares the API routes it serves. */
import type { z } from "zod";
import { missing } from "./errors.ts";
import { ok, type ApiResult, type Exchange, type FormObject } from "./exchange.ts";
import { NoParams, parseParams } from "./params.ts";

/** One endpoint of a resource: `/v1/...` matched by method and path (the first group is the object's id). */
export interface Route {
  method: "GET" | "POST";
  pattern: RegExp;
  /** Which PaymentIntent a request concerns, for fault matching and inspection. */
  intentOf(id: string | undefined, params: FormObject): string | undefined;
  /** Throws InvalidRequest for a request Stripe would refuse (answered, never saved for a key). */
  handle(params: FormObject, exchange: Exchange, id: string): ApiResult;
}

/** For routes whose path names the PaymentIntent. */
export const intentFromPath = (id: string | undefined): string | undefined => id;
/** For routes that concern no PaymentIntent. */
export const noIntent = (): undefined => undefined;

/** `POST /v1/<collection>` (or GET for a list): `params` checked against `schema`, then handed to `action`. */
export function collectionRoute<T>(method: Route["method"], collection: string, schema: z.ZodType<T>, action: (params: T, exchange: Exchange) => ApiResult, intentOf: Route["intentOf"] = noIntent): Route {
  return { method, pattern: new RegExp(`^/v1/${collection}$`), intentOf, handle: (params, exchange) => action(parseParams(schema, params), exchange) };
}

/** `GET /v1/<collection>/:id` with no parameters: the object, or a 404 naming it as a `kind`. */
export function retrieveRoute(collection: string, kind: string, find: (id: string) => unknown): Route {
  return {
    method: "GET",
    pattern: new RegExp(`^/v1/${collection}/([^/]+)$`),
    intentOf: noIntent,
    handle: (params, _exchange, id) => {
      parseParams(NoParams, params);
      const found = find(id);
      if (found === undefined) throw missing(kind, id, "id");
      return ok(found);
    },
  };
}
