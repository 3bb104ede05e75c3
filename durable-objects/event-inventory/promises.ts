/**
 * Admission promises (table `promises`): when the waiting room admits a fan,
 * the inventory promises them what they may still buy, so admission never
 * outruns the places. A promise ends when the fan holds (it became real
 * holds) or lapses after ADMISSION_PROMISE_MS. Lapsed rows are deleted when
 * the room next asks; until then they are ignored, so promises need no alarm.
 */
import type { Sql } from "../lib/sql";

/** An admitted fan's promised share is freed if they have not held within this time. */
export const ADMISSION_PROMISE_MS = 10 * 60 * 1000;

/** What the inventory answers when the waiting room asks to admit fans. */
export interface AdmissionGrant {
  granted: number;
  /** Places neither held nor sold. */
  available: number;
  held: number;
  /** No place is free for the queue right now: every place held or sold, or kept for the waitlist's pass (not final: places come back). */
  soldOut: boolean;
}

interface AdmissionPromise {
  places: number;
  expiresAt: number;
  /** Its row (rows go in grant order, so a tick's promises fill a page or two rather than one page each). */
  id: number;
}

/** Memory rebuilt from the table: only live promises once `live` has run. */
interface Memory {
  byAccount: Map<string, AdmissionPromise>;
  /** Sum of the promises' places, valid until `checkAt` (the earliest expiry among them). */
  total: number;
  checkAt: number;
}

/** Where the inventory stands when the room asks to admit fans. */
export interface GrantContext {
  now: number;
  /** Places neither held nor sold. */
  available: number;
  /** Of those, places kept for the waitlist's pass. */
  keptForWaitlist: number;
  /** What an account may still buy (purchase limit minus what it holds or bought). */
  need: (accountId: string) => number;
}

/** The promises made to admitted fans who have not held yet. */
export class AdmissionPromises {
  private memory: Memory | undefined;

  /** ADMISSION_PROMISE_MS on the rehearsal clock (core/time-scale.ts). */
  private readonly lifeMs: number;

  constructor(
    private readonly sql: Sql,
    timeScale = 1,
  ) {
    this.lifeMs = ADMISSION_PROMISE_MS * timeScale;
  }

  /** Drops the memory; the next call rebuilds it from SQLite. */
  forget(): void {
    this.memory = undefined;
  }

  /**
   * Places promised to admitted fans, live at `now`. Drops lapsed promises
   * from memory when the earliest one lapses, so afterwards every promise in
   * memory is live and the total is their sum.
   */
  live(now: number): number {
    const memory = this.loaded();
    if (now >= memory.checkAt) {
      let total = 0;
      let checkAt = Infinity;
      for (const [accountId, promise] of memory.byAccount) {
        if (promise.expiresAt <= now) {
          memory.byAccount.delete(accountId);
          continue;
        }
        total += promise.places;
        checkAt = Math.min(checkAt, promise.expiresAt);
      }
      memory.total = total;
      memory.checkAt = checkAt;
    }
    return memory.total;
  }

  /** Places promised live at `now` to fans other than `accountId`. */
  promisedToOthers(accountId: string, now: number): number {
    const live = this.live(now);
    return live - (this.loaded().byAccount.get(accountId)?.places ?? 0);
  }

  /** The fan held: their promise became real holds (call after `promisedToOthers`, which drops lapsed ones). */
  fulfil(accountId: string): void {
    const memory = this.loaded();
    if (!memory.byAccount.has(accountId)) return;
    this.sql`DELETE FROM promises WHERE id = ${memory.byAccount.get(accountId)?.id ?? -1}`;
    this.set(memory, accountId, undefined);
  }

  /**
   * Promises places to these accounts, in queue order, as long as unpromised
   * places remain (at the tail, one fan at a time); returns how many of the
   * prefix were granted.
   */
  grant(accountIds: string[], context: GrantContext): number {
    const { now, available, keptForWaitlist } = context;
    this.sql`DELETE FROM promises WHERE expires_at <= ${now}`;
    const memory = this.loaded();
    let granted = 0;
    const rows: [string, number, number][] = [];
    const replaced: number[] = [];
    for (const accountId of accountIds) {
      const need = context.need(accountId);
      const promised = this.live(now);
      const free = available - keptForWaitlist - promised;
      if (need > 0 && free < need && !(promised === 0 && free > 0)) break;
      if (need > 0) {
        const places = Math.min(need, Math.max(free, 0));
        const expiresAt = now + this.lifeMs;
        const previous = memory.byAccount.get(accountId);
        if (previous) replaced.push(previous.id);
        rows.push([accountId, places, expiresAt]);
        this.set(memory, accountId, { places, expiresAt, id: -1 });
      }
      granted++;
    }
    // One statement for a tick's promises, however many; each account's earlier promise, if any, goes.
    if (replaced.length > 0) this.sql`DELETE FROM promises WHERE id IN (SELECT value FROM json_each(${JSON.stringify(replaced)}))`;
    if (rows.length > 0) {
      // Read back as arrays (.raw()), not a row object per promise: the room's tick waits on this.
      const inserted = this.sql<{ id: number; account_id: string }>`INSERT INTO promises (account_id, places, expires_at)
        SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(${JSON.stringify(rows)}) RETURNING id, account_id`.raw();
      for (const [id, accountId] of inserted) {
        const promise = memory.byAccount.get(String(accountId));
        if (promise) promise.id = Number(id);
      }
    }
    return granted;
  }

  /** Sets (or with undefined, drops) an account's promise in memory; call `live` first. */
  private set(memory: Memory, accountId: string, promise: AdmissionPromise | undefined): void {
    const old = memory.byAccount.get(accountId);
    if (old) memory.total -= old.places;
    if (promise) {
      memory.byAccount.set(accountId, promise);
      memory.total += promise.places;
      memory.checkAt = Math.min(memory.checkAt, promise.expiresAt);
    } else {
      memory.byAccount.delete(accountId);
    }
  }

  private loaded(): Memory {
    this.memory ??= {
      byAccount: new Map(
        this.sql<{ id: number; account_id: string; places: number; expires_at: number }>`SELECT id, account_id, places, expires_at FROM promises ORDER BY id`
          .toArray()
          .map((p) => [p.account_id, { places: p.places, expiresAt: p.expires_at, id: p.id }]),
      ),
      total: 0,
      checkAt: -Infinity, // counted on first use
    };
    return this.memory;
  }
}
