/**
 * The inventory and Postgres, the source of truth: loading the event (its
 * settings, chart and every hold Postgres knows of) and mirroring every change
 * to a hold back, so the object can be rebuilt from Postgres. Its alarm work
 * sends changed holds a second after the first change (MIRROR_DELAY_MS), in
 * batches on one connection; the statements are in postgres.ts.
 */
import { loadConfig } from "../../core/config";
import { createDb } from "../../core/db/client";
import { log } from "../../core/logger";
import type { AlarmSource } from "../lib/alarm-scheduler";
import type { Holds } from "./holds";
import type { Places } from "./places";
import { loadInventoryConfig, loadInventorySnapshot, markInventoryPrepared, mirrorHolds } from "./postgres";

/** How soon changed holds reach Postgres. */
const MIRROR_DELAY_MS = 1_000;
/** Retry delay when Postgres is unreachable or refuses a batch. */
export const MIRROR_RETRY_MS = 5_000;
/** Holds mirrored per statement. */
const MIRROR_BATCH = 2_000;
/** Most batches one alarm mirrors (the next alarm, a second later, goes on). */
const MIRROR_PASSES = 10;

/** What loading from Postgres did. */
export interface LoadOutcome {
  /** True when the chart and holds were written (a first load); false when only the settings were refreshed. */
  rebuilt: boolean;
  holdsRecovered: number;
}

/** What the mirror needs from the rest of the object. */
export interface MirrorParts {
  env: Env;
  /** Runs `fn` in one SQLite transaction (`ctx.storage.transactionSync`). */
  transaction: <T>(fn: () => T) => T;
  places: Places;
  holds: Holds;
}

/** Loads the inventory from Postgres and keeps Postgres in step with its holds. */
export class PostgresMirror implements AlarmSource {
  /** When changed holds are next sent (null: none waiting; undefined: not known since a restart). */
  private dueAt: number | null | undefined;

  constructor(private readonly parts: MirrorParts) {}

  /**
   * Loads the event from Postgres: the chart, prices and settings, and every
   * hold or sale Postgres knows of. On an object that is already prepared it
   * only refreshes the settings (holds in the object stay the truth).
   */
  async load(eventId: string): Promise<LoadOutcome> {
    const { places, holds } = this.parts;
    const { db, close } = createDb(loadConfig(this.parts.env));
    try {
      if (places.isPrepared()) {
        const config = await loadInventoryConfig(db, eventId);
        if (config) places.updateSettings(config);
        return { rebuilt: false, holdsRecovered: 0 };
      }
      const snapshot = await loadInventorySnapshot(db, eventId, Date.now());
      if (!snapshot) throw new Error(`event ${eventId} does not exist in Postgres`);
      this.parts.transaction(() => {
        places.writeChart(snapshot);
        holds.restore(snapshot.holds);
      });
      await markInventoryPrepared(db, eventId);
      return { rebuilt: true, holdsRecovered: snapshot.holds.length };
    } finally {
      await close();
    }
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
    const eventId = this.parts.places.settings()?.eventId;
    if (eventId === undefined) return;
    this.dueAt = null; // changes from here on are noted again while the batches are sent
    try {
      await this.send(eventId);
      if (this.parts.holds.hasUnmirrored()) this.noteChange(Date.now());
    } catch (error) {
      log.warn("inventory_mirror_failed", { eventId, error: String(error) });
      this.dueAt = Math.min(this.dueAt ?? Infinity, now + MIRROR_RETRY_MS);
    }
  }

  /** Sends changed holds to Postgres, a batch at a time on one connection, until none is left (or MIRROR_PASSES batches). */
  private async send(eventId: string): Promise<void> {
    const { holds } = this.parts;
    let connection: ReturnType<typeof createDb> | undefined;
    try {
      for (let pass = 0; pass < MIRROR_PASSES; pass++) {
        const batch = holds.unmirrored(MIRROR_BATCH);
        if (batch.holds.length === 0) return;
        connection ??= createDb(loadConfig(this.parts.env));
        await mirrorHolds(connection.db, eventId, batch.holds);
        holds.markMirrored(batch.versions);
        if (batch.holds.length < MIRROR_BATCH) return;
      }
    } finally {
      await connection?.close();
    }
  }
}
