/** A ticket as the delivery consumer reads it, for the benches that time what a ticket email costs (no database). */
import type { IssuedTicket } from "../../workers/tickets/issued-tickets";

export function benchTicket(eventId: string, holderAccountId: string): IssuedTicket {
  const startsAt = new Date(Date.now() + 30 * 86_400_000);
  return {
    id: crypto.randomUUID(),
    orderId: crypto.randomUUID(),
    eventId,
    holderAccountId,
    status: "valid",
    orderStatus: "confirmed",
    checkedInAt: null,
    checkedInDoor: null,
    place: { section: "101", row: "12", seat: "7" },
    sectionName: "101",
    event: { name: "Bench night", startsAt, endsAt: null, venueName: "Bench Stadium", timezone: "UTC" },
  };
}
