/**
 * The queue page's arithmetic (static/js/queue-math.js, imported as the
 * browser imports it) agrees with the server's `fansAhead`
 * (core/waiting-room/queue-state.ts) on every queue document, and turns a
 * place in line into a wait a fan can read.
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FLAGGED_BLOCK_START, LATE_BLOCK_START, LOBBY_BLOCK_SIZE, fansAhead, type QueueState } from "../../core/waiting-room/queue-state";

interface QueueMathModule {
  LATE_BLOCK_START: number;
  FLAGGED_BLOCK_START: number;
  fansAhead(state: QueueState, orderKey: number): number;
  isAdmitted(state: QueueState, orderKey: number): boolean;
  secondsToWait(state: QueueState, ahead: number, now: number): number | null;
  progress(state: QueueState, ahead: number): number;
  describeWait(seconds: number | null): string | null;
  queuePhase(state: QueueState, orderKey: number): "ended" | "admitted" | "sold-out" | "waiting";
  describeSoldOut(state: QueueState): string;
  lobbyOpensAt(event: SaleTimes): number;
  salePhase(event: SaleTimes, now: number): "before_lobby" | "lobby" | "on_sale" | "ended" | "cancelled";
}

/** The event fields the pages read a sale's phase from (the API's event view). */
interface SaleTimes {
  status: string;
  saleState: string;
  startsAt: string;
  endsAt: string | null;
  saleStartsAt: string;
  saleEndsAt: string | null;
  lobbyOpensMinutes: number;
}

const STATIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../static");
// A computed specifier: a plain browser module without type declarations.
const load = (): Promise<QueueMathModule> => import(pathToFileURL(path.join(STATIC, "js/queue-math.js")).href) as Promise<QueueMathModule>;

/**
 * A block's quantiles as the room publishes them (durable-objects/waiting-room/key-histogram.ts):
 * every key while there are fewer than 64, else the keys of rank (i + 1) * n / 32 (the room estimates
 * those from its histograms; test/durable-objects/waiting-room/key-histogram.test.ts checks how closely).
 */
function quantilesOf(sortedKeys: number[]): number[] {
  if (sortedKeys.length < 64) return sortedKeys;
  return Array.from({ length: 32 }, (_, i) => sortedKeys[Math.ceil(((i + 1) * sortedKeys.length) / 32) - 1] ?? 0);
}

const lobbyKey = fc.integer({ min: 0, max: LOBBY_BLOCK_SIZE - 1 });
const lateKey = fc.integer({ min: LATE_BLOCK_START, max: FLAGGED_BLOCK_START - 1 });
const flaggedKey = fc.integer({ min: FLAGGED_BLOCK_START, max: 2 ** 53 - 1 });
const sortedKeys = (arb: fc.Arbitrary<number>, maxLength: number) => fc.uniqueArray(arb, { maxLength }).map((keys) => [...keys].sort((a, b) => a - b));

/** A queue document as the room publishes it, with the fan keys it was built from. */
const scenario = fc
  .record({
    lobby: sortedKeys(lobbyKey, 400),
    late: sortedKeys(lateKey, 200),
    flagged: sortedKeys(flaggedKey, 80),
    admittedShare: fc.double({ min: 0, max: 1, noNaN: true }),
    ratePerSecond: fc.integer({ min: 1, max: 5_000 }),
    paused: fc.boolean(),
    soldOut: fc.boolean(),
  })
  .map(({ lobby, late, flagged, admittedShare, ratePerSecond, paused, soldOut }) => {
    const total = lobby.length + late.length + flagged.length;
    const state: QueueState = {
      eventId: "00000000-0000-4000-8000-000000000000",
      threshold: -1,
      admitted: Math.floor(admittedShare * total),
      entrants: { lobby: lobby.length, late: late.length, flagged: flagged.length },
      quantiles: quantilesOf(lobby),
      lateQuantiles: quantilesOf(late),
      flaggedQuantiles: quantilesOf(flagged),
      ratePerSecond,
      paused,
      soldOut,
      available: 10,
      held: 0,
      saleStartsAt: 1_800_000_000_000,
      saleEndsAt: 1_800_003_600_000,
      updatedAt: 1_800_000_001_000,
    };
    return { state, keys: { lobby, late, flagged } };
  });

/** Keys a fan may hold: every key of the document's fans, and others in each block. */
function keysToTry(keys: { lobby: number[]; late: number[]; flagged: number[] }, extra: number[]): number[] {
  return [...keys.lobby, ...keys.late, ...keys.flagged, ...extra, 0, LATE_BLOCK_START - 1, LATE_BLOCK_START, FLAGGED_BLOCK_START - 1, FLAGGED_BLOCK_START, 2 ** 53 - 1];
}

describe("the queue page's arithmetic", () => {
  it("uses the server's blocks", async () => {
    const math = await load();
    expect(math.LATE_BLOCK_START).toBe(LATE_BLOCK_START);
    expect(math.FLAGGED_BLOCK_START).toBe(FLAGGED_BLOCK_START);
  });

  it("counts the fans ahead exactly as the server's fansAhead does, on every document", async () => {
    const math = await load();
    fc.assert(
      fc.property(scenario, fc.array(fc.oneof(lobbyKey, lateKey, flaggedKey), { maxLength: 20 }), ({ state, keys }, extra) => {
        for (const key of keysToTry(keys, extra)) expect(math.fansAhead(state, key), `key ${key}`).toBe(fansAhead(state, key));
      }),
      { numRuns: 500 },
    );
  });

  it("is exact while every key of a block is a quantile, and within two quantile steps otherwise, in every block", async () => {
    const math = await load();
    fc.assert(
      fc.property(scenario, ({ state, keys }) => {
        const fresh = { ...state, admitted: 0 };
        const blocks = [
          { sorted: keys.lobby, before: 0 },
          { sorted: keys.late, before: keys.lobby.length },
          { sorted: keys.flagged, before: keys.lobby.length + keys.late.length },
        ];
        for (const { sorted, before } of blocks) {
          // Fewer than 64 keys: every key is published. Otherwise the estimate stays between the counts at
          // the quantiles around the key, which are a step (a 32nd of the block) apart, for any key distribution.
          const slack = sorted.length < 64 ? 0 : (2 * sorted.length) / 32;
          sorted.forEach((key, rank) => expect(Math.abs(math.fansAhead(fresh, key) - before - rank)).toBeLessThanOrEqual(slack));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("tells an admitted fan from a waiting one by the threshold", async () => {
    const { isAdmitted } = await load();
    const state = { threshold: 1_000 } as QueueState;
    expect([0, 999, 1_000, 1_001].map((key) => isAdmitted(state, key))).toEqual([true, true, true, false]);
  });

  it("keeps a waiting fan in line while sold out (places may come back), and lets go only when the sale has ended", async () => {
    const { queuePhase } = await load();
    const open = { threshold: 1_000, soldOut: false, saleEndsAt: 5_000_000, updatedAt: 4_000_000 } as QueueState;
    const soldOut = { ...open, soldOut: true };
    const ended = { ...soldOut, updatedAt: 5_000_000 };
    expect([open, soldOut, ended].map((state) => queuePhase(state, 2_000))).toEqual(["waiting", "sold-out", "ended"]);
    // An admitted fan may still buy while the line is sold out; nobody may once the room has published past the end.
    expect([open, soldOut, ended].map((state) => queuePhase(state, 1_000))).toEqual(["admitted", "admitted", "ended"]);
  });

  it("says what may still come back while sold out", async () => {
    const { describeSoldOut } = await load();
    const state = { soldOut: true, available: 0, held: 0 } as QueueState;
    expect(describeSoldOut(state)).toBe("Every place has been paid for; places come back only if orders are refunded or cancelled.");
    expect(describeSoldOut({ ...state, held: 1 })).toBe("1 place is in other fans' checkouts; any not paid for come back.");
    expect(describeSoldOut({ ...state, available: 2, held: 1_500 })).toBe(
      "2 places just came back: the waitlist gets the first chance at them, then the line. 1,500 places are in other fans' checkouts; any not paid for come back.",
    );
  });

  it("turns the fans ahead into a wait at the published rate, counting the time to the start", async () => {
    const { secondsToWait, describeWait, progress } = await load();
    const state = { saleStartsAt: 1_000_000, ratePerSecond: 100, paused: false, admitted: 300 } as QueueState;
    expect(secondsToWait(state, 1_000, 1_000_000)).toBe(10);
    expect(secondsToWait(state, 1_000, 940_000)).toBe(70);
    expect(secondsToWait(state, 0, 2_000_000)).toBe(0);
    expect(secondsToWait({ ...state, paused: true }, 1_000, 1_000_000)).toBeNull();
    expect([null, 0, 59, 60, 89, 90, 3_600, 5_399, 5_400, 7_200].map(describeWait)).toEqual([
      null,
      "less than a minute",
      "less than a minute",
      "about 1 minute",
      "about 1 minute",
      "about 2 minutes",
      "about 60 minutes",
      "about 2 hours",
      "about 2 hours",
      "about 2 hours",
    ]);
    expect(progress(state, 100)).toBe(0.75);
    expect(progress({ ...state, admitted: 0 }, 0)).toBe(1);
  });

  it("places a moment in the sale as the server does: line, sale and end times, a cancelled event", async () => {
    const { lobbyOpensAt, salePhase } = await load();
    const event: SaleTimes = {
      status: "published",
      saleState: "upcoming",
      startsAt: "2030-01-02T20:00:00Z",
      endsAt: null,
      saleStartsAt: "2030-01-01T10:00:00Z",
      saleEndsAt: "2030-01-01T12:00:00Z",
      lobbyOpensMinutes: 30,
    };
    expect(lobbyOpensAt(event)).toBe(Date.parse("2030-01-01T09:30:00Z"));
    const at = (iso: string) => salePhase(event, Date.parse(iso));
    expect(["09:29:59", "09:30:00", "09:59:59", "10:00:00", "11:59:59", "12:00:00"].map((t) => at(`2030-01-01T${t}Z`))).toEqual([
      "before_lobby",
      "lobby",
      "lobby",
      "on_sale",
      "on_sale",
      "ended",
    ]);
    // Without a sale end the sale runs to the event's end, else to its start.
    expect(salePhase({ ...event, saleEndsAt: null }, Date.parse("2030-01-02T19:59:59Z"))).toBe("on_sale");
    expect(salePhase({ ...event, saleEndsAt: null }, Date.parse("2030-01-02T20:00:00Z"))).toBe("ended");
    expect(salePhase({ ...event, saleEndsAt: null, endsAt: "2030-01-02T23:00:00Z" }, Date.parse("2030-01-02T22:00:00Z"))).toBe("on_sale");
    expect(salePhase({ ...event, status: "cancelled", saleState: "cancelled" }, Date.parse("2030-01-01T10:30:00Z"))).toBe("cancelled");
  });
});
