/**
 * The API docs UI served from our own static files: static/docs/vendor/ holds
 * exactly the files of the pinned swagger-ui-dist package (`npm run
 * docs:assets` copies them), so a version bump without a fresh copy fails here.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DOCS_ASSETS, DOCS_VENDOR_DIR, packageFile } from "../../dev/docs-assets";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("the docs UI's vendored assets", () => {
  it("pin swagger-ui-dist to one exact version", () => {
    const pkg: unknown = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
    const pinned = (pkg as { devDependencies?: Record<string, string> }).devDependencies?.["swagger-ui-dist"];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed: unknown = JSON.parse(readFileSync(packageFile("package.json"), "utf8"));
    expect((installed as { version: string }).version).toBe(pinned);
  });

  it.each(DOCS_ASSETS)("%s is the installed package's file, byte for byte", (name) => {
    expect(readFileSync(path.join(DOCS_VENDOR_DIR, name)).equals(readFileSync(packageFile(name)))).toBe(true);
  });
});
