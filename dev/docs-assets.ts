/**
 * `npm run docs:assets`: copies the API docs UI (the pinned `swagger-ui-dist`
 * devDependency) into static/docs/vendor/, so /admin/docs (and any other docs
 * page built with workers/routes/docs-page.ts) loads it from our own origin and
 * renders with no internet access. The copies are committed: deploys, `npm run
 * dev` and the tests need no copy step. After bumping swagger-ui-dist, run this
 * again; test/static/docs-assets.test.ts fails until the copies match the package.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The files the docs page loads, plus the package's license and notice (Apache-2.0). */
export const DOCS_ASSETS = ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"] as const;

/** Where the copies live. */
export const DOCS_VENDOR_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../static/docs/vendor");

/** A file of the installed swagger-ui-dist package. */
export function packageFile(name: string): string {
  return path.join(path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json")), name);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  mkdirSync(DOCS_VENDOR_DIR, { recursive: true });
  for (const name of DOCS_ASSETS) copyFileSync(packageFile(name), path.join(DOCS_VENDOR_DIR, name));
  console.log(`copied ${DOCS_ASSETS.join(", ")} to ${path.relative(process.cwd(), DOCS_VENDOR_DIR)}`);
}
