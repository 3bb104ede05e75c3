/**
 * The inventory and Postgres, the source of truth: loading the event (its
 * settings, chart and every hold Postgres knows of) and mirroring every change
 * to a hold back, so the object can be rebuilt from Postgres.
 *
 * New holds and sales are written through (`sync`): the object answers a
 * hold or a confirmation only once Postgres has it, so a rebuild after a
 * storage loss finds every seat the object gave out. Concurrent callers share
 * one send (a group commit): while one send is on the wire, the calls that
 * arrive wait for the next, which takes all of their changes in one round
 * trip. Releases, expiries and refunds free places, so Postgres may hear of
 * them late (a rebuild then keeps those places taken a while longer, never
 * the reverse): the alarm sends them a second after the change
 * (MIRROR_DELAY_MS), and retries whatever a failed send left. The statements
 * are in postgres.ts.
 *
 * Every statement goes over one connection the object keeps open between
 * requests (durable-objects/lib/kept-db.ts): opened by the first, closed after
 * a while without any, dropped when it breaks or stalls. A send that fails
 * still answers false and leaves its holds to the alarm's retry.
 */
import { loadConfig } from "../../core/config";
import type { Db } from "../../core/db/client";
import { log } from "../../core/logger";
import type { AlarmSource } from "../lib/alarm-scheduler";
import { KeptDb } from "../lib/kept-db";
import type { Holds } from "./holds";
import type { Places } from "./places";
import { expireUnloadedHolds, loadInventoryConfig, loadInventorySnapshot, markInventoryPrepared, mirrorHolds } from "./postgres";

/** How soon changed holds reach Postgres. */
const MIRROR_DELAY_MS = 1_000;
/** Retry delay when Postgres is unreachable or refuses a batch. */
export const MIRROR_RETRY_MS = 5_000;
/** Holds mirrored per statement. */
const MIRROR_BATCH = 2_000;
/** Most batches one alarm mirrors (the next alarm, a second later, goes on). */
const MIRROR_PASSES = 10;

/** The name the mirror's connection shows Postgres and the pooler (`application_name`). */
export function mirrorConnectionName(eventId: string): string {
  return `inventory ${eventId}`;
}

/** What loading from Postgres did. */
export interface LoadOutcome {
  /** True when the chart and holds were written (a first load); false when only the settings were refreshed. */
  rebuilt: boolean;
  /** Live holds loaded from Postgres. */
  holdsRecovered: number;
  /** Holds Postgres still showed live though their time had run out before the load: marked expired there, not loaded. */
  holdsExpired: number;
}

/** What the mirror needs from the rest of the object. */
export interface MirrorParts {
  env: Env;
  /** Runs `fn` in one SQLite transaction (`ctx.storage.transactionSync`). */
  transaction: <T>(fn: () => T) => T;
  places: Places;
  holds: Holds;
}

/** Whether a `sync` goes to Postgres when the last send failed less than MIRROR_RETRY_MS ago. */
export type SyncMode = "always" | "unless-failing";

/** Loads the inventory from Postgres and keeps Postgres in step with its holds. */
export class PostgresMirror implements AlarmSource {
  /** When changed holds are next sent (null: none waiting; undefined: not known since a restart). */
  private dueAt: number | null | undefined;
  /** Until when a hold's `sync` does not try Postgres, after a failed send (0: the last send worked). */
  private failingUntil = 0;
  /** The send on the wire, or the last one (sends never overlap, so an older status never overwrites a newer one). */
  private sending: Promise<unknown> = Promise.resolve();
  /** The send that starts after the one on the wire: callers arriving now share it. */
  private nextSend: Promise<boolean> | undefined;
  /** The connection every statement goes over (an object serves one event, so it is named after the first). */
  private kept: KeptDb | undefined;

  constructor(private readonly parts: MirrorParts) {}

  /**
   * Loads the event from Postgres: the chart, prices and settings, and every
   * hold or sale Postgres knows of. On an object that is already prepared it
   * only refreshes the settings (holds in the object stay the truth).
   */
  async load(eventId: string): Promise<LoadOutcome> {
    const { places, holds } = this.parts;
    if (places.isPrepared()) {
      const config = await this.run(eventId, (db) => loadInventoryConfig(db, eventId));
      if (config) places.updateSettings(config);
      return { rebuilt: false, holdsRecovered: 0, holdsExpired: 0 };
    }
    const snapshotAt = Date.now();
    const snapshot = await this.run(eventId, (db) => loadInventorySnapshot(db, eventId, snapshotAt));
    if (!snapshot) throw new Error(`event ${eventId} does not exist in Postgres`);
    this.parts.transaction(() => {
      places.writeChart(snapshot);
      holds.restore(snapshot.holds);
    });
    const holdsExpired = await this.run(eventId, async (db) => {
      const expired = await expireUnloadedHolds(db, eventId, snapshotAt);
      await markInventoryPrepared(db, eventId);
      return expired;
    });
    log.info("inventory_loaded", { eventId, holdsRecovered: snapshot.holds.length, holdsExpired });
    return { rebuilt: true, holdsRecovered: snapshot.holds.length, holdsExpired };
  }

  /** A hold changed at `now`: Postgres hears of it within MIRROR_DELAY_MS. */
  noteChange(now: number): void {
    this.dueAt = Math.min(this.dueAt ?? Infinity, now + MIRROR_DELAY_MS);
  }

  /** When changed holds are next sent. */
  nextAlarmAt(): number | null {
    this.dueAt ??= this.parts.holds.hasUnmirrored() ? Date.now() + MIRROR_DELAY_MS : null;
    return this.dueAt;
  }

  /** Sends every changed hold (or MIRROR_PASSES batches of them); on failure, tries again in MIRROR_RETRY_MS. */
  async runDue(now: number): Promise<void> {
    if (this.parts.places.settings() === undefined) return;
    this.dueAt = null; // changes from here on are noted again while the batches are sent
    if (await this.sync("always")) {
      if (this.parts.holds.hasUnmirrored()) this.noteChange(Date.now());
    } else {
      this.dueAt = Math.min(this.dueAt ?? Infinity, now + MIRROR_RETRY_MS);
    }
  }

  /**
   * Sends every change made so far to Postgres; true once Postgres has them
   * all (of up to MIRROR_PASSES batches), false when it could not be reached.
   * With "unless-failing", a call within MIRROR_RETRY_MS of a failed send
   * answers false at once instead of waiting on Postgres again: holds go on
   * while Postgres is down, and the alarm retries.
   */
  sync(mode: SyncMode): Promise<boolean> {
    if (mode === "unless-failing" && Date.now() < this.failingUntil) return Promise.resolve(false);
    if (!this.nextSend) {
      const send = this.sending.then(() => {
        this.nextSend = undefined; // from here on, new changes wait for the send after this one
        return this.sendAll();
      });
      this.nextSend = send;
      this.sending = send;
    }
    return this.nextSend;
  }

  /** One send of everything unmirrored; never throws. */
  private async sendAll(): Promise<boolean> {
    const eventId = this.parts.places.settings()?.eventId;
    if (eventId === undefined) return false;
    try {
      await this.send(eventId);
      this.failingUntil = 0;
      return true;
    } catch (error) {
      log.warn("inventory_mirror_failed", { eventId, error: String(error) });
      this.failingUntil = Date.now() + MIRROR_RETRY_MS;
      return false;
    }
  }

  /** Sends changed holds to Postgres, a batch at a time, until none is left (or MIRROR_PASSES batches). */
  private async send(eventId: string): Promise<void> {
    const { holds } = this.parts;
    for (let pass = 0; pass < MIRROR_PASSES; pass++) {
      const batch = holds.unmirrored(MIRROR_BATCH);
      if (batch.holds.length === 0) return;
      await this.run(eventId, (db) => mirrorHolds(db, eventId, batch.holds));
      holds.markMirrored(batch.versions);
      if (batch.holds.length < MIRROR_BATCH) return;
    }
  }

  /** Runs statements on the object's kept connection. */
  private run<T>(eventId: string, work: (db: Db) => Promise<T>): Promise<T> {
    this.kept ??= new KeptDb(() => loadConfig(this.parts.env), mirrorConnectionName(eventId));
    return this.kept.run(work);
  }
}
