/**
 * The door page's verifier (static/js/compact-ticket.js, loaded as a plain
 * browser module from its file) agrees with what the server runs
 * (core/tickets/compact-token.ts, which re-exports that module through its
 * types) and reads what the server signs, on every code: the same fields
 * from a good code, the same verdict for a code with any byte changed, a code
 * under an unknown key, an expired one, and a high-S copy. Codes are signed as the Worker signs them (ES256, S made
 * low), under a key generated here and published as a JWKS.
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  base45Decode,
  base45Encode,
  compactCode,
  compactPayload,
  keyIdOf,
  parseCompactCode,
  verifyCompactCode,
  type CompactFailure,
  type CompactTicket,
  type CompactTicketFields,
} from "../../core/tickets/compact-token";

type Verdict = { ok: true; ticket: CompactTicket } | { ok: false; reason: CompactFailure };

interface CompactTicketModule {
  isCompactCode(text: string): boolean;
  isForEvent(ticket: CompactTicket, eventId: string): boolean;
  parseCompactCode(code: string): { ticket: CompactTicket } | undefined;
  verifyCompactCode(code: string, jwks: { keys: readonly unknown[] }, now?: Date): Promise<Verdict>;
}

const STATIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../static");
// A computed specifier: a plain browser module without type declarations.
const load = (): Promise<CompactTicketModule> => import(pathToFileURL(path.join(STATIC, "js/compact-ticket.js")).href) as Promise<CompactTicketModule>;

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function signer(kid: string) {
  const pair = (await crypto.subtle.generateKey(ECDSA, true, ["sign", "verify"])) as CryptoKeyPair;
  const { d: _private, ...publicJwk } = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const keyId = await keyIdOf(kid);
  return {
    jwks: { keys: [{ ...publicJwk, kid, alg: "ES256", use: "sig" }] },
    async sign(fields: CompactTicketFields): Promise<string> {
      const payload = compactPayload(fields, keyId);
      return compactCode(payload, new Uint8Array(await crypto.subtle.sign(ECDSA, pair.privateKey, payload)));
    },
  };
}

const label = fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" }).filter((text) => !text.includes("\u001f"));
const fieldsArb = fc.record({
  ticketId: fc.uuid(),
  eventId: fc.uuid(),
  place: fc.oneof(fc.record({ section: label, row: label, seat: label }), fc.record({ section: label, ga: fc.constant(true as const) })),
  expiresAt: fc.integer({ min: Math.floor(Date.now() / 1000) + 3_600, max: 2 ** 32 - 1 }).map((seconds) => new Date(seconds * 1000)),
});

describe("compact ticket codes: the door's verifier and the server's agree", () => {
  it("read the same ticket from any good code, and both verify it", async () => {
    const door = await load();
    const key = await signer("ticket-key-1");
    await fc.assert(
      fc.asyncProperty(fieldsArb, async (fields) => {
        const code = await key.sign(fields);
        expect(door.isCompactCode(code)).toBe(true);
        const server = await verifyCompactCode(code, key.jwks);
        const browser = await door.verifyCompactCode(code, key.jwks);
        expect(server.ok).toBe(true);
        expect(browser).toEqual(server);
        if (!browser.ok) return;
        expect(browser.ticket).toMatchObject({ ticketId: fields.ticketId, place: fields.place, expiresAt: new Date(Math.floor(fields.expiresAt.getTime() / 1000) * 1000) });
        expect(door.isForEvent(browser.ticket, fields.eventId)).toBe(true);
        expect(door.isForEvent(browser.ticket, crypto.randomUUID())).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it("give the same verdict for a code with any byte changed (never valid), a foreign key, a high S and an expired code", async () => {
    const door = await load();
    const key = await signer("ticket-key-1");
    const forger = await signer("ticket-key-1");
    await fc.assert(
      fc.asyncProperty(fieldsArb, fc.nat(), fc.integer({ min: 1, max: 255 }), async (fields, at, xor) => {
        const code = await key.sign(fields);
        const bytes = base45Decode(code);
        if (!bytes) throw new Error("a code is base45");
        const changed = bytes.slice();
        const index = at % changed.length;
        changed[index] = (changed[index] ?? 0) ^ xor;
        const tampered = base45Encode(changed);
        const server = await verifyCompactCode(tampered, key.jwks);
        expect(server).toEqual({ ok: false, reason: "bad_token" });
        expect(await door.verifyCompactCode(tampered, key.jwks)).toEqual(server);
      }),
      { numRuns: 60 },
    );
    const fields = { ticketId: crypto.randomUUID(), eventId: crypto.randomUUID(), place: { section: "A", row: "3", seat: "12" }, expiresAt: new Date(Date.now() + 3_600_000) };
    const code = await key.sign(fields);
    const bytes = base45Decode(code);
    if (!bytes) throw new Error("a code is base45");
    const s = BigInt(`0x${Buffer.from(bytes.subarray(bytes.length - 32)).toString("hex")}`);
    const highS = bytes.slice();
    highS.set(Buffer.from((P256_ORDER - s).toString(16).padStart(64, "0"), "hex"), bytes.length - 32);
    const cases: [string, string, Verdict["ok"] | CompactFailure][] = [
      ["signed by another key under the same kid", await forger.sign(fields), "bad_token"],
      ["the high-S copy", base45Encode(highS), "bad_token"],
      ["expired", await key.sign({ ...fields, expiresAt: new Date(Date.now() - 1_000) }), "expired"],
      ["cut short", code.slice(0, -3), "bad_token"],
      ["not base45", code.toLowerCase(), "bad_token"],
    ];
    for (const [what, candidate, want] of cases) {
      const server = await verifyCompactCode(candidate, key.jwks);
      expect(server, what).toEqual({ ok: false, reason: want });
      expect(await door.verifyCompactCode(candidate, key.jwks), what).toEqual(server);
    }
    // The good code verifies with either, and only until it expires.
    expect((await door.verifyCompactCode(code, key.jwks)).ok).toBe(true);
    expect(await door.verifyCompactCode(code, key.jwks, new Date(Date.now() + 7_200_000))).toEqual({ ok: false, reason: "expired" });
    expect(parseCompactCode(code)?.ticket).toEqual(door.parseCompactCode(code)?.ticket);
  });

  it("encodes base45 as RFC 9285 does, and decodes it back", () => {
    // The RFC's examples.
    expect(base45Encode(new TextEncoder().encode("AB"))).toBe("BB8");
    expect(base45Encode(new TextEncoder().encode("Hello!!"))).toBe("%69 VD92EX0");
    expect(base45Encode(new TextEncoder().encode("base-45"))).toBe("UJCLQE7W581");
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(base45Decode(base45Encode(bytes))).toEqual(bytes);
      }),
    );
  });
});
