/**
 * A payment that succeeds after its hold lapsed is confirmed only if its
 * places are still free, and places the waiting room has promised to an
 * admitted fan are not free: the late payer is refunded (the checkout's
 * `hold_expired` path), and the admitted fan can still buy what they were
 * promised. Nothing is promised twice.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HOLD_JITTER_MS } from "../../../core/holds/contract";
import { smallChart } from "../../fixtures/charts";
import { setClock, startFakeClock } from "../../fixtures/clocks";
import { hotSale } from "../../fixtures/hot-sale";
import { inventoryOf, promisedPlaces } from "../../fixtures/objects";

afterEach(() => {
  vi.useRealTimers();
});

describe("EventInventory: a late payment and the waiting room's promises", () => {
  it("refuses to confirm a lapsed hold whose places are promised to an admitted fan, who can then hold them", async () => {
    const start = startFakeClock();
    // Five places in all: two seats in each section and one standing place.
    const sale = await hotSale({ chart: smallChart(1, 2, 1), saleStartsInMs: -60_000, holdTtlSeconds: 60, accounts: 2, purchaseLimit: 4 });
    const [late = "", admitted = ""] = sale.accounts;
    const inventory = inventoryOf(sale.eventId);
    expect((await inventory.prepare(sale.eventId)).available).toBe(5);

    const held = await inventory.hold({ kind: "best", accountId: late, attemptKey: "late-1", requestId: "late-1", quantity: 2, priceTier: "A", allowSplit: true });
    if (!held.ok) throw new Error(held.message);
    // The late fan's payment is slow: the hold lapses and its places come back.
    setClock(start + 60_000 + HOLD_JITTER_MS + 1_000);
    await runDurableObjectAlarm(inventory);
    expect((await inventory.getHold(held.hold.holdId))?.status).toBe("expired");

    // The room admits the next fan, who is promised four places (the purchase limit): one of the five is left over.
    const grant = await inventory.grantAdmissions(sale.eventId, [admitted]);
    expect(grant).toMatchObject({ granted: 1, available: 5 });
    expect(await promisedPlaces(sale.eventId)).toBe(4);

    // Then the late payment succeeds: its two places are free, but only one is not promised, so it is refused (and refunded by the checkout).
    const confirmed = await inventory.confirm({ requestId: "late-confirm", holdId: held.hold.holdId, allowLapsed: true });
    expect(confirmed).toMatchObject({ ok: false, reason: "hold_expired" });
    expect((await inventory.getHold(held.hold.holdId))?.status).toBe("expired");

    // The admitted fan buys what they were promised, the two seats in A among them.
    const bought = await inventory.hold({ kind: "best", accountId: admitted, attemptKey: "admitted-1", requestId: "admitted-1", quantity: 4, allowSplit: true });
    expect(bought.ok).toBe(true);
  });
});
