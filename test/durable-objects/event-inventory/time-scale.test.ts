/**
 * The rehearsal clock (core/time-scale.ts): TIME_SCALE is read strictly, and
 * the inventory's own timers (a hold's TTL and jitter, an admission promise,
 * the waitlist's turn) run on it. The suite's Worker runs at scale 1 (every
 * other test), so the scaled parts are built here over an object's storage.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { HOLD_JITTER_MS } from "../../../core/holds/contract";
import { holdExpiry, timeScaleOf } from "../../../core/time-scale";
import { ADMISSION_PROMISE_MS, WAITLIST_FIRST_MS, type EventInventory } from "../../../durable-objects/event-inventory";
import { AdmissionPromises } from "../../../durable-objects/event-inventory/promises";
import { ReturnsOutbox } from "../../../durable-objects/event-inventory/returns";
import { sqlOver } from "../../../durable-objects/lib/sql";
import { inventoryOf } from "../../fixtures/objects";

describe("TIME_SCALE", () => {
  it("is 1 unless set, and refuses anything outside (0, 1]", () => {
    expect(timeScaleOf({})).toBe(1);
    expect(timeScaleOf({ TIME_SCALE: "" })).toBe(1);
    expect(timeScaleOf({ TIME_SCALE: "0.05" })).toBe(0.05);
    expect(timeScaleOf({ TIME_SCALE: "1" })).toBe(1);
    for (const bad of ["0", "-0.5", "2", "1.01", "fast", "NaN", "Infinity"]) expect(() => timeScaleOf({ TIME_SCALE: bad }), bad).toThrow(/TIME_SCALE/);
    // The Worker under test runs on the real clock.
    expect(timeScaleOf(env)).toBe(1);
  });

  it("scales a hold's TTL and its jitter alike", () => {
    const now = 1_800_000_000_000;
    const random = vi.spyOn(Math, "random");
    try {
      random.mockReturnValue(0);
      expect(holdExpiry(now, 600_000, HOLD_JITTER_MS, 1)).toBe(now + 600_000);
      expect(holdExpiry(now, 600_000, HOLD_JITTER_MS, 0.05)).toBe(now + 30_000);
      random.mockReturnValue(0.999_999);
      expect(holdExpiry(now, 600_000, HOLD_JITTER_MS, 1)).toBe(now + 600_000 + HOLD_JITTER_MS - 1);
      expect(holdExpiry(now, 600_000, HOLD_JITTER_MS, 0.05)).toBe(now + 30_000 + 2_999);
    } finally {
      random.mockRestore();
    }
  });

  it("runs an admission promise's life and the waitlist's turn at a twentieth at scale 0.05", async () => {
    const stub = inventoryOf(`time-scale-${crypto.randomUUID()}`);
    await runInDurableObject(stub, (_inventory: EventInventory, state) => {
      const sql = sqlOver(state.storage.sql);
      const now = 1_800_000_000_000;
      const promises = new AdmissionPromises(sql, 0.05);
      expect(promises.grant(["fan-a"], { now, available: 10, keptForWaitlist: 0, need: () => 4 })).toBe(1);
      expect(state.storage.sql.exec<{ expires_at: number }>("SELECT expires_at FROM promises").one().expires_at).toBe(now + ADMISSION_PROMISE_MS / 20);
      expect(promises.live(now + ADMISSION_PROMISE_MS / 20 - 1)).toBe(4);
      expect(promises.live(now + ADMISSION_PROMISE_MS / 20)).toBe(0);

      const returns = new ReturnsOutbox(sql, 0.05);
      returns.noteWaitlist(true, now);
      returns.record("hold-1", 2, "expired", now);
      expect(returns.recentlyReturned(now + WAITLIST_FIRST_MS / 20 - 1)).toBe(2);
      // The waitlist's word and its turn at the places both end after a twentieth of WAITLIST_FIRST_MS.
      expect(returns.waitlistWaiting(now + WAITLIST_FIRST_MS / 20)).toBe(false);
      returns.noteWaitlist(true, now + WAITLIST_FIRST_MS / 20);
      expect(returns.recentlyReturned(now + WAITLIST_FIRST_MS / 20)).toBe(0);
      // At scale 1 the same place is still the waitlist's.
      expect(new ReturnsOutbox(sql).recentlyReturned(now + WAITLIST_FIRST_MS / 20)).toBe(2);
    });
  });
});
