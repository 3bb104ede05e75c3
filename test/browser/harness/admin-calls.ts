/**
 * The admin API calls the pages make, checked against the admin API's own
 * OpenAPI document (/admin/openapi.json): every context a test opens records
 * the method and path of each fetch or XHR its pages send to `/admin/...`,
 * and a file that calls `adminCallsAreDocumented()` fails after its tests when
 * one of them matches no operation of the document (templated paths such as
 * `/events/{id}` included). So the console and the door page use nothing the
 * document leaves out, as they really run.
 */
import type { BrowserContext } from "playwright-core";
import { afterAll, expect, inject } from "vitest";
import { z } from "zod";

/** "METHOD /admin/path" of every admin call this file's pages made. */
const calls = new Set<string>();

/** Records the admin API calls of the pages of `context` (served from `origin`). */
export function recordAdminCalls(context: BrowserContext, origin: string): void {
  context.on("request", (request) => {
    if (request.resourceType() !== "fetch" && request.resourceType() !== "xhr") return;
    const url = new URL(request.url());
    if (url.origin === new URL(origin).origin && url.pathname.startsWith("/admin/")) calls.add(`${request.method()} ${url.pathname}`);
  });
}

const openApiDocument = z.object({
  servers: z.array(z.object({ url: z.string() })),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});

const HTTP_METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

/** The document's operations as `[METHOD, path pattern]`, the pattern anchored and each `{param}` one path segment. */
function operationsOf(document: z.infer<typeof openApiDocument>): { method: string; pattern: RegExp }[] {
  const base = document.servers[0]?.url ?? "";
  return Object.entries(document.paths).flatMap(([template, item]) => {
    const source = `${base}${template}`
      .split(/(\{[^}]+\})/)
      .map((part) => (/^\{[^}]+\}$/.test(part) ? "[^/]+" : part.replace(/[.*+?^$()|[\]\\]/g, "\\$&")))
      .join("");
    return Object.keys(item)
      .filter((method) => HTTP_METHODS.has(method))
      .map((method) => ({ method: method.toUpperCase(), pattern: new RegExp(`^${source}$`) }));
  });
}

/** After this file's tests: its pages made admin calls, and each is an operation of /admin/openapi.json. */
export function adminCallsAreDocumented(): void {
  afterAll(async () => {
    const response = await fetch(`${inject("appUrl")}/admin/openapi.json`);
    expect(response.status).toBe(200);
    const operations = operationsOf(openApiDocument.parse(await response.json()));
    const undocumented = [...calls].filter((call) => {
      const [method = "", path = ""] = call.split(" ");
      return !operations.some((operation) => operation.method === method && operation.pattern.test(path));
    });
    expect(calls.size, "the pages made no admin API call").toBeGreaterThan(0);
    expect(undocumented, "admin API calls of the pages that /admin/openapi.json does not document").toEqual([]);
  });
}
