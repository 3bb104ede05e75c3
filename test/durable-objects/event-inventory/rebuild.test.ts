/**
 * The inventory object losing its storage at the worst moment and being
 * rebuilt from Postgres: holds acknowledged a moment ago, a sale confirmed
 * (and queued) that the sales consumer has not written yet. After the
 * rebuild no seat held or sold before the loss may be granted to anyone.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { inventoryOf, wipeInventory, withInventory } from "../../fixtures/objects";
import { withDb } from "../../fixtures/db";
import { openEvent } from "../../fixtures/seeding";
import { holdEveryPlace, placesOf } from "../../fixtures/rebuild";

afterEach(() => {
  vi.useRealTimers();
});

describe("EventInventory rebuilt after losing its storage", () => {
  it("keeps holds acknowledged just before the loss (the mirror had not run)", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 3 });
    await inventoryOf(event.id).prepare(event.id);
    const held = [];
    for (const [i, accountId] of accounts.entries()) {
      const seated = await inventoryOf(event.id).hold({ kind: "best", accountId, attemptKey: `a${i}`, requestId: `seats-${i}`, quantity: 2, priceTier: "A", allowSplit: false });
      if (!seated.ok) throw new Error(seated.message);
      held.push(seated.hold);
    }
    const [first] = accounts;
    const standing = await inventoryOf(event.id).hold({ kind: "best", accountId: first ?? "", attemptKey: "ga", requestId: "ga-0", quantity: 2, sectionId: gaSectionOf(await inventoryOf(event.id).availability()), allowSplit: false });
    if (!standing.ok) throw new Error(standing.message);
    held.push(standing.hold);

    await wipeInventory(event.id);
    const rebuilt = await inventoryOf(event.id).prepare(event.id);
    expect(rebuilt.rebuilt).toBe(true);

    const taken = placesOf(held);
    const granted = await holdEveryPlace(event.id);
    expect(granted.seats.filter((seat) => taken.seats.has(seat))).toEqual([]);
    expect(granted.gaPlaces).toBe(granted.gaCapacity - taken.gaPlaces);
  });

  it("keeps a sale the object confirmed while it is still in the sales queue", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 2 });
    await inventoryOf(event.id).prepare(event.id);
    const [buyer = "", lateBuyer = ""] = accounts;
    // A hold Postgres heard of as live, paid after it lapsed: Postgres shows it expired.
    vi.useFakeTimers({ toFake: ["Date"] });
    const late = await inventoryOf(event.id).hold({ kind: "best", accountId: lateBuyer, attemptKey: "l", requestId: "late-0", quantity: 2, priceTier: "A", allowSplit: false });
    if (!late.ok) throw new Error(late.message);
    expect(await runDurableObjectAlarm(inventoryOf(event.id))).toBe(true); // the mirror sends it as live
    vi.setSystemTime(late.hold.expiresAt + 1);
    const lateSale = await inventoryOf(event.id).confirm({ requestId: "confirm-1", holdId: late.hold.holdId, allowLapsed: true });
    if (!lateSale.ok) throw new Error(lateSale.message);
    expect(lateSale.hold.status).toBe("confirmed");

    // A sale confirmed at once: Postgres has heard of neither the hold nor the order.
    const fresh = await inventoryOf(event.id).hold({ kind: "best", accountId: buyer, attemptKey: "b", requestId: "buy-0", quantity: 3, priceTier: "A", allowSplit: false });
    if (!fresh.ok) throw new Error(fresh.message);
    const sold = await inventoryOf(event.id).confirm({ requestId: "confirm-0", holdId: fresh.hold.holdId, allowLapsed: true });
    if (!sold.ok) throw new Error(sold.message);

    await wipeInventory(event.id);
    expect((await inventoryOf(event.id).prepare(event.id)).rebuilt).toBe(true);

    const taken = placesOf([sold.hold, lateSale.hold]);
    const granted = await holdEveryPlace(event.id);
    expect(granted.seats.filter((seat) => taken.seats.has(seat))).toEqual([]);
    expect(granted.seats.length).toBe(granted.seatCount - taken.seats.size);
  });

  it("marks expired in Postgres a hold that lapsed before the loss while Postgres still showed it live", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 2 });
    const [lapsing = "", keeping = ""] = accounts;
    await inventoryOf(event.id).prepare(event.id);
    vi.useFakeTimers({ toFake: ["Date"] });
    // Both holds reach Postgres as live before they are answered.
    const lapsed = await inventoryOf(event.id).hold({ kind: "best", accountId: lapsing, attemptKey: "x", requestId: "lapse-0", quantity: 2, priceTier: "A", allowSplit: false });
    if (!lapsed.ok) throw new Error(lapsed.message);
    vi.setSystemTime(lapsed.hold.expiresAt - 1_000);
    const live = await inventoryOf(event.id).hold({ kind: "best", accountId: keeping, attemptKey: "y", requestId: "keep-0", quantity: 2, priceTier: "A", allowSplit: false });
    if (!live.ok) throw new Error(live.message);
    // The first lapses; the storage goes before the object's alarm tells Postgres.
    vi.setSystemTime(lapsed.hold.expiresAt + 1);
    await wipeInventory(event.id);
    expect(await inventoryOf(event.id).prepare(event.id)).toMatchObject({ rebuilt: true, holdsRecovered: 1, holdsExpired: 1 });

    // The rebuilt object never knew the lapsed hold, so nothing else would ever end it in Postgres.
    const rows = await withDb(async (db) => (await db.execute<{ id: string; status: string }>(sql`select id, status from holds where event_id = ${event.id}`)).rows);
    expect(Object.fromEntries(rows.map((row) => [row.id, row.status]))).toEqual({ [lapsed.hold.holdId]: "expired", [live.hold.holdId]: "live" });
  });

  it("rebuilds itself for the Worker's next request, though the Worker saw it prepared a moment ago", async () => {
    const { event, accounts } = await openEvent({ demandClass: "hot", accounts: 3 });
    const [first = "", second = "", third = ""] = accounts;
    const best = (accountId: string, requestId: string) => ({ kind: "best" as const, accountId, attemptKey: requestId, requestId, quantity: 2, priceTier: "A", allowSplit: false });
    // Through the Worker's own path: it prepares the object and remembers it did.
    const held = await withInventory(event.id, async (inventory) => [await inventory.hold(best(first, "w-0")), await inventory.hold(best(second, "w-1"))]);
    const holds = held.map((result) => {
      if (!result.ok) throw new Error(result.message);
      return result.hold;
    });

    await wipeInventory(event.id);

    // The next requests find the object empty; it loads itself from Postgres rather than answering as if nothing were on sale.
    const after = await withInventory(event.id, async (inventory) => ({
      fresh: await inventory.hold(best(third, "w-2")),
      kept: await inventory.getHold(holds[0]?.holdId ?? "", first),
      sold: await inventory.confirm({ requestId: "w-confirm", holdId: holds[1]?.holdId ?? "", allowLapsed: false }),
      availability: await inventory.availability(),
    }));
    if (!after.fresh.ok) throw new Error(`a hold after the wipe was refused: ${after.fresh.reason}`);
    const taken = placesOf(holds);
    expect(after.fresh.hold.seats.filter((seat) => taken.seats.has(seat.seatIndex))).toEqual([]);
    expect(after.kept?.status).toBe("live");
    expect(after.sold.ok && after.sold.hold.status).toBe("confirmed");
    expect(after.availability.seatCount).toBeGreaterThan(0);
  });
});

function gaSectionOf(availability: { sections: { sectionId: string; kind: string }[] }): string {
  const section = availability.sections.find((s) => s.kind === "general_admission");
  if (!section) throw new Error("the chart has no general-admission section");
  return section.sectionId;
}
