/**
 * Workers KV as production runs it, for every test in workerd (a setup file
 * of the workers project): local KV takes any number of writes and shows them
 * everywhere at once; production refuses a second write to one key within a
 * second (429) and can take 60 s or more to show a write in other locations.
 * So the QUEUE_STATE binding (the same object the Worker and the Durable
 * Objects see) is wrapped here:
 *  - `put` of a key written less than a second ago throws, as production does;
 *  - `get` can be told to read as another location would, `propagationMs`
 *    behind the writes (0 by default: the writer's own location).
 * The wrapper keeps what it saw on the binding itself, so every test file
 * reads the same record (`kvLimitsOf`).
 */
import { env } from "cloudflare:test";

/** Production's limit: one write per key per second. */
export const KV_WRITE_INTERVAL_MS = 1_000;

/** What the wrapper recorded, and how it reads. */
export interface KvLimits {
  /** Every accepted write, in order. */
  writes: { key: string; at: number }[];
  /** Writes refused for coming within a second of the last one to their key. */
  refused: { key: string; at: number }[];
  /** Reads see the newest write at least this old (another location's view). */
  propagationMs: number;
}

const STATE = Symbol.for("edge-tickets.kv-limits");
const HISTORY_PER_KEY = 200;

type Wrapped = KVNamespace & { [STATE]?: { limits: KvLimits; history: Map<string, { at: number; value: string }[]> } };

/** The record of the wrapped binding (installed by this setup file). */
export function kvLimitsOf(kv: KVNamespace): KvLimits {
  const state = (kv as Wrapped)[STATE];
  if (!state) throw new Error("the KV binding is not wrapped: is test/setup/kv-limits.ts a setup file of this project?");
  return state.limits;
}

function install(kv: Wrapped): void {
  if (kv[STATE]) return;
  const state = { limits: { writes: [], refused: [], propagationMs: 0 } as KvLimits, history: new Map<string, { at: number; value: string }[]>() };
  kv[STATE] = state;
  const put = kv.put.bind(kv);
  const get = kv.get.bind(kv);
  kv.put = async (key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: KVNamespacePutOptions): Promise<void> => {
    const at = Date.now();
    const writes = state.history.get(key) ?? [];
    const last = writes[writes.length - 1];
    if (last && at - last.at < KV_WRITE_INTERVAL_MS) {
      state.limits.refused.push({ key, at });
      throw new Error(`KV PUT failed: 429 Too Many Requests (${key} was written ${at - last.at} ms ago)`);
    }
    await put(key, value, options);
    state.limits.writes.push({ key, at });
    writes.push({ at, value: typeof value === "string" ? value : "" });
    writes.splice(0, Math.max(0, writes.length - HISTORY_PER_KEY));
    state.history.set(key, writes);
  };
  const delayedGet = async (key: string, options?: unknown): Promise<unknown> => {
    if (state.limits.propagationMs <= 0) return (get as (key: string, options?: unknown) => Promise<unknown>)(key, options);
    const visible = (state.history.get(key) ?? []).filter((w) => Date.now() - w.at >= state.limits.propagationMs).pop();
    if (!visible) return null;
    const type = typeof options === "string" ? options : typeof options === "object" && options !== null && "type" in options ? options.type : "text";
    return type === "json" ? JSON.parse(visible.value) : visible.value;
  };
  kv.get = delayedGet as KVNamespace["get"];
}

install(env.QUEUE_STATE as Wrapped);
