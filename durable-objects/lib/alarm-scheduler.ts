/**
 * One alarm per object, shared by its parts. Each part that has work falling
 * due (holds expiring, changes to send to Postgres...) says when, from its own
 * state, and does that work when the alarm runs; the scheduler keeps the
 * object's single alarm at the earliest of their times. Like the `agents`
 * SDK's scheduler, the due times are derived from what is stored, so an
 * early or repeated alarm costs nothing: each run does what is due then.
 *
 * The alarm is never later than the earliest due time; after each run it is
 * exactly that time (none when nothing is due).
 */

/** A part of an object with work that falls due. */
export interface AlarmSource {
  /** Epoch milliseconds when it next has work (null: none). Early is harmless; late is a bug. */
  nextAlarmAt(): number | null;
  /** Does what is due at `now`. Running it again, or early, changes nothing that is not due. */
  runDue(now: number): void | Promise<void>;
}

/** The alarm calls of `DurableObjectStorage` the scheduler uses. */
export type AlarmStorage = Pick<DurableObjectStorage, "getAlarm" | "setAlarm" | "deleteAlarm">;

/** Keeps an object's one alarm at the earliest time any of its sources is due. */
export class AlarmScheduler {
  /** The alarm as stored, as far as this instance knows (undefined: not read yet). */
  private stored: number | null | undefined;
  private reading: Promise<number | null> | undefined;

  constructor(
    private readonly storage: AlarmStorage,
    private readonly sources: readonly AlarmSource[],
  ) {}

  /** The earliest time any source is due (null: none is). */
  nextAlarmAt(): number | null {
    let earliest: number | null = null;
    for (const source of this.sources) {
      const at = source.nextAlarmAt();
      if (at !== null && (earliest === null || at < earliest)) earliest = at;
    }
    return earliest;
  }

  /**
   * Moves the alarm earlier when a source's due time came before it (call
   * after anything that may have added work). Outside the alarm it never moves
   * later: a source whose work got done some other way (holds expired by a
   * request) may report a later time, and an alarm a little early only runs
   * sooner, while a due time that moves with the clock ("now, or the next
   * interval") must not push the alarm ahead of itself. Costs no storage call
   * when the alarm is already early enough (the usual case on the hot path);
   * only the first call reads the stored alarm.
   */
  async reschedule(): Promise<void> {
    if (this.stored === undefined) {
      const stored = await (this.reading ??= this.storage.getAlarm());
      this.stored ??= stored;
    }
    const at = this.nextAlarmAt();
    if (at === null || (this.stored !== null && this.stored <= at)) return;
    await this.write(at);
  }

  /**
   * The object's alarm handler: each source, in order, does what is due; then
   * the alarm is set to exactly the next due time (or removed), whatever this
   * instance thought was stored.
   */
  async run(now: number): Promise<void> {
    for (const source of this.sources) await source.runDue(now);
    await this.write(this.nextAlarmAt());
  }

  private async write(at: number | null): Promise<void> {
    this.stored = at;
    if (at === null) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(at);
  }
}
