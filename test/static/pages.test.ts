/**
 * The fan pages in static/, checked from Node: there is no build step, so a
 * typo in an import, a link or an element id would only show in a browser.
 * Every page's scripts and styles exist, every module's imports name real
 * exports, every element id a page script looks up is in its page, every form
 * control has a label, and the seat map's pure helpers agree with the
 * server's bitmap encoding. The pages themselves run in headless Chromium in
 * test/browser/ (the journeys fans take, accessibility, page weight).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { setBit } from "../../core/holds/contract";
import { toBase64 } from "../../workers/holds/http-mapping";

const STATIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../static");
const read = (file: string) => readFileSync(file, "utf8");
const pages = [...readdirSync(STATIC).filter((name) => name.endsWith(".html")), "console/index.html", "door/index.html"];
const modules = [
  ...readdirSync(STATIC).filter((name) => name.endsWith(".js")),
  ...readdirSync(path.join(STATIC, "js")).map((name) => `js/${name}`),
  ...readdirSync(path.join(STATIC, "console")).map((name) => `console/${name}`),
  ...readdirSync(path.join(STATIC, "door")).map((name) => `door/${name}`),
].filter((name) => name.endsWith(".js"));

/**
 * Where Workers static assets find a path: "/" is index.html, "/event" is
 * event.html (and "/event.html" is answered with a redirect to "/event").
 */
function assetFor(urlPath: string): string | undefined {
  const clean = urlPath.split(/[?#]/)[0] ?? "";
  const candidates = clean === "/" ? ["index.html"] : [clean.slice(1), `${clean.slice(1)}.html`, `${clean.slice(1)}/index.html`];
  return candidates.map((candidate) => path.join(STATIC, candidate)).find((file) => existsSync(file) && statSync(file).isFile());
}

function attributeValues(html: string, tag: string, attribute: string): string[] {
  const values: string[] = [];
  for (const match of html.matchAll(new RegExp(`<${tag}\\b[^>]*>`, "gi"))) {
    const value = new RegExp(`\\s${attribute}="([^"]*)"`, "i").exec(match[0])?.[1];
    if (value !== undefined) values.push(value);
  }
  return values;
}

/** Static imports: `import { a, b as c } from "./x.js"`, `import x from`, `import * as x from`. */
function importsOf(source: string): { specifier: string; names: string[] }[] {
  const found: { specifier: string; names: string[] }[] = [];
  for (const match of source.matchAll(/^import\s+([\s\S]*?)\s+from\s+"([^"]+)";/gm)) {
    const clause = match[1] ?? "";
    const named = /\{([\s\S]*)\}/.exec(clause)?.[1] ?? "";
    const names = named
      .split(",")
      .map((part) => part.trim().split(/\s+as\s+/)[0]?.trim() ?? "")
      .filter(Boolean);
    if (/^\w+\s*(,|$)/.test(clause)) names.push("default");
    found.push({ specifier: match[2] ?? "", names });
  }
  return found;
}

function exportsOf(source: string): Set<string> {
  const names = new Set<string>();
  for (const match of source.matchAll(/^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)/gm)) names.add(match[1] ?? "");
  for (const match of source.matchAll(/^export\s*\{([^}]*)\}/gm)) {
    for (const part of (match[1] ?? "").split(",")) names.add(part.trim().split(/\s+as\s+/).pop()?.trim() ?? "");
  }
  if (/^export\s+default\b/m.test(source)) names.add("default");
  return names;
}

/** A page's own module scripts, resolved to files. */
function pageScripts(html: string): string[] {
  return attributeValues(html, "script", "src").map((src) => path.join(STATIC, src));
}

describe("static pages", () => {
  it.each(pages)("%s: its scripts, styles and links exist", (page) => {
    const html = read(path.join(STATIC, page));
    expect(html).toMatch(/<html lang="[a-z-]+">/);
    expect(html).toMatch(/<meta name="viewport"/);
    expect(html).toMatch(/<title>[^<]+<\/title>/);
    for (const script of pageScripts(html)) expect(existsSync(script), `${page}: ${script}`).toBe(true);
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag, `${page}: scripts are ES modules`).toMatch(/type="module"/);
    for (const href of attributeValues(html, "link", "href")) expect(existsSync(path.join(STATIC, href)), `${page}: ${href}`).toBe(true);
    for (const href of attributeValues(html, "a", "href").filter((h) => h.startsWith("/"))) expect(assetFor(href), `${page}: link ${href}`).toBeDefined();
  });

  it.each(pages)("%s: every id its scripts look up is on the page, and every control has a label", (page) => {
    const html = read(path.join(STATIC, page));
    const ids = new Set(attributeValues(html, "[a-z0-9]+", "id"));
    for (const script of pageScripts(html)) {
      const source = read(script);
      // `$("x")` counts where the script defines `$` as a getElementById shorthand.
      const lookup = /const \$ = \(\w+\) => document\.getElementById\(\w+\)/.test(source) ? /(?:getElementById|\$)\("([^"]+)"\)/g : /getElementById\("([^"]+)"\)/g;
      for (const match of source.matchAll(lookup)) {
        expect(ids.has(match[1] ?? ""), `${page}: ${path.relative(STATIC, script)} looks up #${match[1]}`).toBe(true);
      }
    }
    const labelled = new Set(attributeValues(html, "label", "for"));
    for (const tag of html.match(/<(input|select|textarea)\b[^>]*>/g) ?? []) {
      const id = /\sid="([^"]+)"/.exec(tag)?.[1];
      expect(id !== undefined && labelled.has(id), `${page}: ${tag} has a <label for>`).toBe(true);
    }
  });

  it("the fan pages announce status politely and errors as alerts", () => {
    for (const page of ["signin.html", "event.html", "checkout.html", "tickets.html"]) {
      const html = read(path.join(STATIC, page));
      expect(html, page).toMatch(/role="status" aria-live="polite"/);
      expect(html, page).toMatch(/id="error"[^>]*role="alert"/);
    }
  });

  it.each(modules)("%s: parses, and its imports name files and exports that exist", (module) => {
    const file = path.join(STATIC, module);
    const check = spawnSync(process.execPath, ["--check", file], { encoding: "utf8" });
    expect(check.status, check.stderr).toBe(0);
    for (const { specifier, names } of importsOf(read(file))) {
      expect(specifier, `${module}: imports are relative or rooted paths to .js files`).toMatch(/^(\.{1,2}\/|\/).*\.js$/);
      const target = specifier.startsWith("/") ? path.join(STATIC, specifier) : path.resolve(path.dirname(file), specifier);
      expect(existsSync(target), `${module}: ${specifier}`).toBe(true);
      const exported = exportsOf(read(target));
      for (const name of names) expect(exported.has(name), `${module}: ${specifier} exports ${name}`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------- the pure helpers, imported as the browser does

interface SeatMapModule {
  decodeBitmap(base64: string): Uint8Array;
  bitAvailable(bytes: Uint8Array, seatIndex: number): number;
  rowSeats(row: { firstSeat: number; count: number; seatLabels?: string[] }): { seatIndex: number; label: string }[];
  wireChanges(list: unknown): [number, 0 | 1][];
  alignedPosition(position: number, fromCount: number, toCount: number): number;
  ZOOM_STEPS: number[];
  zoomStep(size: number, direction: 1 | -1): number;
}
interface ApiModule {
  safeNext(next: unknown, fallback?: string, origin?: string): string;
  minutesSeconds(ms: number): string;
  durationText(ms: number): string;
  holdPlacer(): (path: string, body: object, auth: string | boolean) => Promise<{ holdId: string }>;
}

// A computed specifier: these are plain browser modules without type declarations.
const load = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(STATIC, file)).href) as Promise<T>;

describe("seat map helpers", () => {
  it("read the availability bitmap exactly as the server writes it", async () => {
    const { decodeBitmap, bitAvailable } = await load<SeatMapModule>("js/seat-map.js");
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2_000 }).chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: n }))), async ([seatCount, free]) => {
        const bitmap = new Uint8Array(Math.ceil(seatCount / 8));
        for (const seat of free) setBit(bitmap, seat);
        const bytes = decodeBitmap(toBase64(bitmap));
        const seen = Array.from({ length: seatCount }, (_, i) => i).filter((i) => bitAvailable(bytes, i) === 1);
        expect(seen).toEqual([...free].sort((a, b) => a - b));
      }),
      { numRuns: 200 },
    );
    // Seat 0 is the high bit of byte 0 (the documented order), and seats past the end are never free.
    const bytes = decodeBitmap("gA==");
    expect([0, 1, 7, 8, 100].map((i) => bitAvailable(bytes, i))).toEqual([1, 0, 0, 0, 0]);
  });

  it("label a row's seats 1..n unless the layout gives labels, with consecutive seat indexes", async () => {
    const { rowSeats } = await load<SeatMapModule>("js/seat-map.js");
    expect(rowSeats({ firstSeat: 10, count: 3 })).toEqual([
      { seatIndex: 10, label: "1" },
      { seatIndex: 11, label: "2" },
      { seatIndex: 12, label: "3" },
    ]);
    expect(rowSeats({ firstSeat: 19, count: 2, seatLabels: ["1A", "1B"] }).map((s) => `${s.seatIndex}:${s.label}`)).toEqual(["19:1A", "20:1B"]);
  });

  it("keep only well-formed feed changes", async () => {
    const { wireChanges } = await load<SeatMapModule>("js/seat-map.js");
    expect(wireChanges([[1, 0], [2, 1], [-1, 1], [3, 2], ["4", 1], [5.5, 0], null, [6]])).toEqual([
      [1, 0],
      [2, 1],
    ]);
    expect(wireChanges({ length: 1 })).toEqual([]);
  });

  it("move up and down between rows of different lengths by the place from the middle", async () => {
    const { alignedPosition } = await load<SeatMapModule>("js/seat-map.js");
    expect(alignedPosition(0, 20, 20)).toBe(0);
    expect(alignedPosition(10, 20, 10)).toBe(5); // centred rows: seat 11 of 20 sits over seat 6 of 10
    expect(alignedPosition(0, 20, 10)).toBe(0); // clamped to the row
    expect(alignedPosition(19, 20, 10)).toBe(9);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.nat(), (from, to, p) => {
        const target = alignedPosition(p % from, from, to);
        expect(target).toBeGreaterThanOrEqual(0);
        expect(target).toBeLessThan(to);
      }),
    );
  });

  it("zoom in steps to seats a finger can hit (44 px and up) and back down to 24 px targets", async () => {
    const { ZOOM_STEPS, zoomStep } = await load<SeatMapModule>("js/seat-map.js");
    expect(ZOOM_STEPS[0]).toBeGreaterThanOrEqual(24);
    expect(ZOOM_STEPS.filter((size) => size >= 44).length).toBeGreaterThanOrEqual(2);
    const up = [ZOOM_STEPS[0] ?? 0];
    for (let i = 0; i < ZOOM_STEPS.length; i++) up.push(zoomStep(up[up.length - 1] ?? 0, 1));
    expect(up).toEqual([...ZOOM_STEPS, ZOOM_STEPS[ZOOM_STEPS.length - 1]]);
    // From a pinched size in between, a button goes to the next step either way.
    expect(zoomStep(38, 1)).toBe(44);
    expect(zoomStep(38, -1)).toBe(32);
    expect(zoomStep(64, 1)).toBe(56);
    expect(zoomStep(10, -1)).toBe(24);
  });
});

describe("api helpers", () => {
  it("return only to paths on this site after sign-in, as the browser parses them", async () => {
    const { safeNext } = await load<ApiModule>("js/api.js");
    const origin = "https://tickets.example";
    expect(safeNext("/event?id=1&x=2", "/", origin)).toBe("/event?id=1&x=2");
    expect(safeNext("/checkout?event=a&hold=b#pay", "/", origin)).toBe("/checkout?event=a&hold=b#pay");
    // What URLSearchParams hands over for ?next=/%09/evil.example and friends: the URL parser drops tabs and newlines.
    const evil = ["https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\t\\evil.example", "\t//evil.example"];
    for (const next of [...evil, "javascript:alert(1)", "", null, undefined, 42]) {
      expect(safeNext(next, "/", origin), JSON.stringify(next)).toBe("/");
    }
    // Without an origin to check against (no page), nothing is trusted.
    expect(safeNext("/event")).toBe("/");
  });

  it("say how long until a sale in words", async () => {
    const { durationText } = await load<ApiModule>("js/api.js");
    expect([0, -1, 999, 45_000, 61_000, 3_599_000, 3_600_000, 7_260_000, 90_000_000, 172_800_000].map(durationText)).toEqual([
      "now",
      "now",
      "1 s",
      "45 s",
      "1 min 01 s",
      "59 min 59 s",
      "1 h 00 min",
      "2 h 01 min",
      "1 day 1 h",
      "2 days 0 h",
    ]);
  });

  it("show the countdown as m:ss, never below zero", async () => {
    const { minutesSeconds } = await load<ApiModule>("js/api.js");
    expect([600_000, 61_000, 59_001, 1, 0, -5_000].map(minutesSeconds)).toEqual(["10:00", "1:01", "1:00", "0:01", "0:00", "0:00"]);
  });

  it("place a hold with one request id per attempt: kept when the network failed, new once the server answered", async () => {
    const { holdPlacer } = await load<ApiModule>("js/api.js");
    const sent: { path: string; requestId: string }[] = [];
    const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
    const answers: (() => Response)[] = [
      () => {
        throw new TypeError("Failed to fetch");
      },
      () => json(201, { hold: { holdId: "h1", createdAt: new Date().toISOString() } }),
      () => json(409, { error: { code: "seat_taken", message: "Taken." } }),
      () => json(201, { hold: { holdId: "h2", createdAt: new Date().toISOString() } }),
      () => {
        throw new TypeError("Failed to fetch");
      },
      () => json(201, { hold: { holdId: "h3", createdAt: new Date().toISOString() } }),
    ];
    vi.stubGlobal("fetch", async (path: string, init: RequestInit) => {
      sent.push({ path, requestId: z.object({ requestId: z.string() }).parse(JSON.parse(String(init.body))).requestId });
      const answer = answers.shift();
      if (!answer) throw new Error("no more answers");
      return answer();
    });
    try {
      const place = holdPlacer();
      const best = "/api/events/e/holds/best";
      await expect(place(best, { quantity: 2 }, "token")).rejects.toMatchObject({ status: 0 });
      expect(await place(best, { quantity: 2 }, "token")).toMatchObject({ holdId: "h1" });
      await expect(place(best, { quantity: 2 }, "token")).rejects.toMatchObject({ status: 409, code: "seat_taken" });
      expect(await place(best, { quantity: 2 }, "token")).toMatchObject({ holdId: "h2" });
      await expect(place(best, { quantity: 2 }, "token")).rejects.toMatchObject({ status: 0 });
      expect(await place(best, { quantity: 3 }, "token")).toMatchObject({ holdId: "h3" });
      const [failed, retried, refused, fresh, dropped, changed] = sent.map((s) => s.requestId);
      // The retry after the network failure is the same attempt; every answer ends one, and another body is another attempt.
      expect(retried).toBe(failed);
      expect(new Set([failed, refused, fresh, dropped, changed]).size).toBe(5);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
