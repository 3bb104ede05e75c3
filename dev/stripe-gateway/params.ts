/**
 * Request parameters: Stripe's form encoding (`metadata[hold_id]=...`),
 * decoded and checked with zod, with invalid ones answered as Stripe does.
 * The parameter types several resources share live here; each resource
 * declares its own request schemas.
 */
import { z } from "zod";
import { invalid } from "./errors.ts";
import type { FormObject, FormValue } from "./exchange.ts";

type FormTree = Map<string, string | FormTree>;

/** Decodes `a[b][c]=v` pairs into nested objects; `a[]` appends. Arrays stay objects keyed "0", "1", ... */
export function parseForm(encoded: string): FormObject {
  const root: FormTree = new Map();
  for (const [key, value] of new URLSearchParams(encoded)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!match?.[1]) throw invalid(`Invalid parameter name: ${key}`);
    const segments = [match[1], ...[...(match[2] ?? "").matchAll(/\[([^[\]]*)\]/g)].map((part) => part[1] ?? "")];
    let node = root;
    for (const [index, segment] of segments.entries()) {
      const name = segment === "" ? String(node.size) : segment;
      if (index === segments.length - 1) {
        if (node.get(name) instanceof Map) throw invalid(`Invalid ${key}: expected a hash`, { param: key });
        node.set(name, value);
        continue;
      }
      const child = node.get(name) ?? new Map<string, string | FormTree>();
      if (typeof child === "string") throw invalid(`Invalid ${key}: ${segments.slice(0, index + 1).join("[")} is not a hash`, { param: key });
      node.set(name, child);
      node = child;
    }
  }
  return treeToObject(root);
}

function treeToObject(tree: FormTree): FormObject {
  // Object.fromEntries defines own properties, so a key like "__proto__" stays data.
  return Object.fromEntries([...tree].map(([key, value]) => [key, typeof value === "string" ? value : treeToObject(value)]));
}

export const formInteger = z.string().transform((value, context) => {
  if (/^\d+$/.test(value)) return Number(value);
  context.addIssue({ code: "custom", message: `Invalid integer: ${value}`, params: { stripeCode: "parameter_invalid_integer" } });
  return z.NEVER;
});
export const formBoolean = z.enum(["true", "false"]).transform((value) => value === "true");
export const currencyParam = z
  .string()
  .regex(/^[a-zA-Z]{3}$/, "must be a three-letter ISO currency code")
  .transform((value) => value.toLowerCase());
/** `metadata=""` clears it; `metadata[key]=""` removes one key. */
export const metadataParam = z.union([
  z.literal(""),
  z
    .record(z.string().max(40, "keys can have up to 40 characters"), z.string().max(500, "values can have up to 500 characters"))
    .refine((metadata) => Object.keys(metadata).length <= 50, "can have up to 50 keys"),
]);
export const NoParams = z.strictObject({});

/** Checks params against `schema`, answering as Stripe does: unknown, missing and invalid parameters by name. */
export function parseParams<T>(schema: z.ZodType<T>, params: FormObject): T {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const [first] = parsed.error.issues;
  if (!first) throw invalid("Invalid request");
  const { issue, path } = innermostIssue(first, []);
  if (issue.code === "unrecognized_keys") {
    const param = paramName([...path, issue.keys[0] ?? ""]);
    throw invalid(`Received unknown parameter: ${param}`, { code: "parameter_unknown", param });
  }
  const param = paramName(path);
  if (valueAt(params, path) === undefined) throw invalid(`Missing required param: ${param}.`, { code: "parameter_missing", param });
  const stripeCode = issue.code === "custom" ? issue.params?.stripeCode : undefined;
  throw invalid(`Invalid ${param}: ${issue.message}`, { param, ...(typeof stripeCode === "string" ? { code: stripeCode } : {}) });
}

/** For a union (`metadata` is "" or a hash), the issue of the branch that got furthest, with its full path. */
function innermostIssue(issue: z.core.$ZodIssue, parentPath: string[]): { issue: z.core.$ZodIssue; path: string[] } {
  const path = [...parentPath, ...issue.path.map(String)];
  if (issue.code !== "invalid_union") return { issue, path };
  const branches = issue.errors.flat().map((inner) => innermostIssue(inner, path));
  return branches.reduce((deepest, branch) => (branch.path.length > deepest.path.length ? branch : deepest), { issue, path });
}

/** ["metadata", "hold_id"] → "metadata[hold_id]", as Stripe names nested parameters. */
function paramName(path: string[]): string {
  const [first = "", ...rest] = path;
  return first + rest.map((segment) => `[${segment}]`).join("");
}

function valueAt(params: FormObject, path: string[]): FormValue | undefined {
  let value: FormValue | undefined = params;
  for (const segment of path) value = typeof value === "object" ? value[segment] : undefined;
  return value;
}
