/**
 * A room's settings: the event's as Postgres has them (times, admission
 * rate, bot policy and limits), plus what the room fixed for itself (its
 * number of lobby shards, chosen once) and a version the room bumps each time
 * it reloads them. The room pushes them to its shards, which keep them (as
 * JSON, checked against this schema when read back).
 */
import { z } from "zod";

/** An event's settings, as the waiting room reads them from Postgres. */
export const eventSettingsSchema = z.object({
  eventId: z.string(),
  lobbyOpensAt: z.number(),
  saleStartsAt: z.number(),
  saleEndsAt: z.number(),
  admissionRatePerSecond: z.number(),
  botPolicy: z.enum(["deprioritize", "refuse"]),
  maxAccountsPerDevice: z.number(),
  maxAccountsPerIp: z.number(),
  expectedDemand: z.number(),
});

/** An event's settings, as the waiting room reads them from Postgres. */
export type EventSettings = z.infer<typeof eventSettingsSchema>;

/** What the room and its shards run with. */
export const roomSettingsSchema = eventSettingsSchema.extend({
  /** Lobby shards of this event (fixed when the room first loads the event). */
  shards: z.number().int().min(1),
  /** Bumped on every reload: a shard keeps the newest it has seen. */
  version: z.number().int(),
});

/** What the room and its shards run with. */
export type RoomSettings = z.infer<typeof roomSettingsSchema>;

