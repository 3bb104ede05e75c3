/** The door page's QR decoder is jsQR from npm as pinned in package-lock.json, copied byte for byte (no CDN at run time). */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("the door page's vendored jsQR", () => {
  it("is node_modules/jsqr/dist/jsQR.js of the locked version", () => {
    const lock: unknown = JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));
    const locked = (lock as { packages: Record<string, { version?: string }> }).packages["node_modules/jsqr"]?.version;
    const installed = (JSON.parse(readFileSync(path.join(ROOT, "node_modules/jsqr/package.json"), "utf8")) as { version: string }).version;
    expect(installed).toBe(locked);
    expect(readFileSync(path.join(ROOT, "static/door/vendor/jsQR.js"), "utf8")).toBe(readFileSync(path.join(ROOT, "node_modules/jsqr/dist/jsQR.js"), "utf8"));
  });
});
