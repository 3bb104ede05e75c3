/**
 * The door scanner's routes: `GET /admin/events/:id/check-in` (what the door
 * shows) and `POST /admin/events/:id/check-in/sync` (its queued scans). The
 * first scan of a ticket to reach us wins, at the scan's own time and door; a
 * second door's scan of it is a conflict naming the winner; a door's retry of
 * its own scans changes nothing; bad scans get their verdicts, bad requests a
 * 400 that changes nothing.
 */
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { withDb } from "../../fixtures/db";
import { adminRequest, expectApiError, expectInvalid } from "../../fixtures/http";
import { checkInSchema, codeOf, insertOrder, ticketedEvent, ticketState } from "../../fixtures/tickets";

const syncAnswer = z.strictObject({
  results: z.array(checkInSchema.extend({ scanId: z.uuid(), conflict: z.strictObject({ doorId: z.string().nullable(), scannedAt: z.iso.datetime().nullable() }).optional() })),
});

async function sync(apiKey: string, eventId: string, doorId: string, scans: { code: string; scannedAt: string; scanId?: string }[]) {
  const response = await adminRequest(apiKey, "POST", `/events/${eventId}/check-in/sync`, {
    doorId,
    scans: scans.map((scan) => ({ scanId: scan.scanId ?? crypto.randomUUID(), code: scan.code, scannedAt: scan.scannedAt })),
  });
  expect(response.status, response.text).toBe(200);
  return syncAnswer.parse(response.json).results;
}

async function checkedInDoor(ticketId: string): Promise<string | null> {
  return withDb(async (db) => (await db.execute<{ door: string | null }>(sql`select checked_in_door as door from tickets where id = ${ticketId}`)).rows[0]?.door ?? null);
}

describe("the door scanner's check-in routes", () => {
  it("check in the first scan to reach us at its own time and door, and report another door's scan of the ticket as a conflict naming the winner", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const [fan] = event.accounts;
    const [a, b] = event.seats;
    if (!fan || !a || !b) throw new Error("fixture");
    const order = await insertOrder(event, fan, { seats: [a, b] });
    const [first, second] = order.tickets;
    if (!first || !second) throw new Error("fixture");
    const code = await codeOf(fan, first.id);
    const northAt = new Date(Date.now() - 120_000).toISOString();
    const southAt = new Date(Date.now() - 60_000).toISOString();

    const north = await sync(event.apiKey, event.eventId, "North gate", [{ code, scannedAt: northAt, scanId: "5b0f1b47-7a4c-4a53-9a8f-0b8f6c1e2d3a" }]);
    expect(north).toMatchObject([{ scanId: "5b0f1b47-7a4c-4a53-9a8f-0b8f6c1e2d3a", result: "valid", ticket: { id: first.id, checkedInAt: northAt } }]);
    expect(north[0]?.conflict).toBeUndefined();
    expect(await ticketState(first.id)).toEqual({ status: "checked_in", checkedInAt: new Date(northAt) });
    expect(await checkedInDoor(first.id)).toBe("North gate");

    // South scanned it too while offline, and one more ticket: the first is a conflict, the second admits.
    const south = await sync(event.apiKey, event.eventId, "South gate", [
      { code, scannedAt: southAt },
      { code: await codeOf(fan, second.id), scannedAt: southAt },
    ]);
    expect(south[0]).toMatchObject({ result: "already_scanned", conflict: { doorId: "North gate", scannedAt: northAt } });
    expect(south[1]).toMatchObject({ result: "valid" });
    expect(south[1]?.conflict).toBeUndefined();
    expect(await ticketState(first.id)).toEqual({ status: "checked_in", checkedInAt: new Date(northAt) });
    expect(await checkedInDoor(first.id)).toBe("North gate");

    // North's retry of its own batch (its answer was lost): no conflict, nothing changes.
    const retry = await sync(event.apiKey, event.eventId, "North gate", [{ code, scannedAt: northAt }]);
    expect(retry[0]).toMatchObject({ result: "already_scanned" });
    expect(retry[0]?.conflict).toBeUndefined();
    expect(await ticketState(first.id)).toEqual({ status: "checked_in", checkedInAt: new Date(northAt) });
  });

  it("give bad scans their verdicts, count a scan time in the future as now, and refuse bad requests with a 400 that changes nothing", async () => {
    const event = await ticketedEvent({ accounts: 1 });
    const stranger = await ticketedEvent({ accounts: 0 });
    const [fan] = event.accounts;
    const [seat] = event.seats;
    if (!fan || !seat) throw new Error("fixture");
    const ticketId = (await insertOrder(event, fan, { seats: [seat] })).tickets[0]?.id ?? "";
    const code = await codeOf(fan, ticketId);
    const now = new Date().toISOString();

    const scanId = crypto.randomUUID();
    const valid = { doorId: "Gate", scans: [{ scanId, code, scannedAt: now }] };
    const path = `/events/${event.eventId}/check-in/sync`;
    for (const body of [
      {},
      { ...valid, doorId: "" },
      { ...valid, doorId: "x".repeat(65) },
      { ...valid, scans: [] },
      { ...valid, scans: Array.from({ length: 201 }, () => ({ scanId, code, scannedAt: now })) },
      { ...valid, scans: [{ scanId, code, scannedAt: "yesterday" }] },
      { ...valid, scans: [{ scanId: "not-a-uuid", code, scannedAt: now }] },
      { ...valid, scans: [{ scanId, code: "   ", scannedAt: now }] },
      { ...valid, extra: true },
    ]) {
      expectInvalid(await adminRequest(event.apiKey, "POST", path, body));
    }
    expectApiError(await adminRequest(stranger.apiKey, "POST", path, valid), 404, "not_found");
    expectApiError(await adminRequest("etk_unknown", "POST", path, valid), 401, "unauthorized");
    expect(await ticketState(ticketId)).toEqual({ status: "valid", checkedInAt: null });

    const results = await sync(event.apiKey, event.eventId, "Gate", [
      { code: "ABC123", scannedAt: now },
      { code: `${code.slice(0, -1)}${code.endsWith("0") ? "1" : "0"}`, scannedAt: now },
      { code, scannedAt: new Date(Date.now() + 3_600_000).toISOString() },
    ]);
    expect(results.map((r) => [r.result, r.reason])).toEqual([
      ["invalid", "bad_token"],
      ["invalid", "bad_token"],
      ["valid", undefined],
    ]);
    const stored = await ticketState(ticketId);
    expect(stored.checkedInAt?.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it("tell the door the event's name, for the organizer's own events only", async () => {
    const event = await ticketedEvent({ accounts: 0 });
    const stranger = await ticketedEvent({ accounts: 0 });
    const response = await adminRequest(event.apiKey, "GET", `/events/${event.eventId}/check-in`);
    expect(response.status, response.text).toBe(200);
    expect(response.json).toEqual({ event: { id: event.eventId, name: "Show", startsAt: expect.any(String) } });
    expectApiError(await adminRequest(stranger.apiKey, "GET", `/events/${event.eventId}/check-in`), 404, "not_found");
  });
});
