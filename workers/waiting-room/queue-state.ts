/** Reading an event's published queue state (core/waiting-room/queue-state.ts) from KV, where waiting fans poll it. */
import { queueStateKey, type QueueState } from "../../core/waiting-room/queue-state";

/** The published queue state, or null before the room first published it. */
export function readQueueState(kv: KVNamespace, eventId: string): Promise<QueueState | null> {
  return kv.get<QueueState>(queueStateKey(eventId), { type: "json" });
}
