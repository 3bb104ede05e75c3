import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { inventoryOf } from "../../fixtures/objects";
import { openEvent } from "../../fixtures/seeding";

afterEach(() => {
  vi.useRealTimers();
});

describe("EventInventory", () => {
  it("holds best available adjacent seats and expires them on the alarm", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot" });
    const stub = inventoryOf(event.id);
    const prepared = await stub.prepare(event.id);
    expect(prepared).toMatchObject({ seatCount: 36, available: 46, rebuilt: true });
    const fan = accounts[0] ?? "";
    const result = await stub.hold({ kind: "best", accountId: fan, attemptKey: "k1", requestId: "req-00001", quantity: 2, priceTier: "A", allowSplit: false });
    if (!result.ok) throw new Error(result.message);
    expect(result.hold.seats.map((s) => `${s.section}-${s.row}-${s.seat}`)).toEqual(["A-1-3", "A-1-4"]);
    const expiresAt = result.hold.expiresAt;
    expect(expiresAt - result.hold.createdAt).toBeGreaterThanOrEqual(600_000);
    expect(expiresAt - result.hold.createdAt).toBeLessThan(660_000);

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(expiresAt + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = await stub.getHold(result.hold.holdId);
    expect(after?.status).toBe("expired");
    const availability = await stub.availability();
    expect(availability.sections.find((s) => s.label === "A")?.available).toBe(18);
  });
});
