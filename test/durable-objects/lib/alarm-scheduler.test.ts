/**
 * The alarm scheduler against a real object's storage: whatever its sources
 * report and whenever it runs, the stored alarm is never later than the
 * earliest due time (and never missing while something is due), a run sets it
 * to exactly that time, and a second run does no work and changes nothing.
 * The times lie a day ahead of the real clock, so workerd never fires the
 * alarm by itself during the test.
 */
import { env, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AlarmScheduler, type AlarmSource, type AlarmStorage } from "../../../durable-objects/lib/alarm-scheduler";

const DAY_MS = 86_400_000;

/** A source with one due time: work done at a run sets it to null. */
class TestSource implements AlarmSource {
  works = 0;
  constructor(public dueAt: number | null) {}
  nextAlarmAt(): number | null {
    return this.dueAt;
  }
  runDue(now: number): void {
    if (this.dueAt === null || this.dueAt > now) return;
    this.works++;
    this.dueAt = null;
  }
}

/** The storage's alarm calls, with the writes counted. */
function countingStorage(storage: DurableObjectStorage): AlarmStorage & { writes: number } {
  const counted = {
    writes: 0,
    getAlarm: (options?: DurableObjectGetAlarmOptions) => storage.getAlarm(options),
    setAlarm: (at: number | Date, options?: DurableObjectSetAlarmOptions) => {
      counted.writes++;
      return storage.setAlarm(at, options);
    },
    deleteAlarm: (options?: DurableObjectSetAlarmOptions) => {
      counted.writes++;
      return storage.deleteAlarm(options);
    },
  };
  return counted;
}

function earliest(sources: TestSource[]): number | null {
  const times = sources.map((s) => s.dueAt).filter((at): at is number => at !== null);
  return times.length === 0 ? null : Math.min(...times);
}

const offset = fc.integer({ min: 0, max: 60_000 });
const step = fc.oneof(
  /** New work at a source: its due time can only come earlier. */
  fc.record({ kind: fc.constant("add" as const), source: fc.nat(), at: offset }),
  /** A source's work got done some other way (a request expired the holds): its time moves later or goes. */
  fc.record({ kind: fc.constant("doneElsewhere" as const), source: fc.nat(), at: fc.option(offset, { nil: null }) }),
  /** The alarm runs at some time (early, on time or late). */
  fc.record({ kind: fc.constant("run" as const), at: offset }),
  /** The object restarts: a new scheduler that has not read the stored alarm. */
  fc.record({ kind: fc.constant("restart" as const) }),
);

describe("AlarmScheduler", () => {
  it("keeps the alarm no later than the earliest due time, sets it to exactly that on each run, and a second run is harmless", async () => {
    const stub = env.SEAT_MAP_FEED.getByName(crypto.randomUUID());
    await runInDurableObject(stub, async (_feed, state) => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.option(offset, { nil: null }), { minLength: 1, maxLength: 5 }), fc.array(step, { maxLength: 30 }), async (initial, steps) => {
          await state.storage.deleteAlarm();
          const base = Date.now() + DAY_MS;
          const sources = initial.map((at) => new TestSource(at === null ? null : base + at));
          const storage = countingStorage(state.storage);
          let scheduler = new AlarmScheduler(storage, sources);
          const stored = () => state.storage.getAlarm();
          /** Never late, never missing while something is due. */
          const checkNeverLate = async () => {
            const due = earliest(sources);
            const alarm = await stored();
            if (due !== null) {
              expect(alarm).not.toBeNull();
              expect(alarm ?? Infinity).toBeLessThanOrEqual(due);
            }
          };

          await scheduler.reschedule();
          expect(await stored()).toBe(earliest(sources)); // from no alarm: exactly the earliest
          for (const s of steps) {
            const source = "source" in s ? sources[s.source % sources.length] : undefined;
            if (s.kind === "add" && source) {
              const before = await stored();
              source.dueAt = Math.min(source.dueAt ?? Infinity, base + s.at);
              const writes = storage.writes;
              await scheduler.reschedule();
              // Moved only if the new work came before the alarm; then it is exactly the new time.
              if (before !== null && before <= base + s.at) {
                expect(storage.writes).toBe(writes);
                expect(await stored()).toBe(before);
              } else {
                expect(await stored()).toBe(base + s.at);
              }
            } else if (s.kind === "doneElsewhere" && source) {
              const before = await stored();
              source.dueAt = s.at === null || source.dueAt === null ? null : Math.max(source.dueAt, base + s.at);
              const writes = storage.writes;
              await scheduler.reschedule();
              expect(storage.writes).toBe(writes); // never moved later outside a run
              expect(await stored()).toBe(before);
            } else if (s.kind === "run") {
              const now = base + s.at;
              await scheduler.run(now);
              for (const each of sources) if (each.dueAt !== null) expect(each.dueAt).toBeGreaterThan(now);
              expect(await stored()).toBe(earliest(sources));
              // Again, at the same time: no work, same alarm.
              const works = sources.map((each) => each.works);
              await scheduler.run(now);
              expect(sources.map((each) => each.works)).toEqual(works);
              expect(await stored()).toBe(earliest(sources));
            } else if (s.kind === "restart") {
              scheduler = new AlarmScheduler(storage, sources);
              await scheduler.reschedule();
            }
            await checkNeverLate();
          }
        }),
        { numRuns: 150 },
      );
      await state.storage.deleteAlarm();
    });
  });

  it("asks the storage once for the stored alarm, and writes nothing while the alarm is early enough", async () => {
    const stub = env.SEAT_MAP_FEED.getByName(crypto.randomUUID());
    await runInDurableObject(stub, async (_feed, state) => {
      const base = Date.now() + DAY_MS;
      await state.storage.setAlarm(base + 500);
      let reads = 0;
      const storage = countingStorage(state.storage);
      const counted: AlarmStorage = { ...storage, getAlarm: (options) => (reads++, storage.getAlarm(options)) };
      const source = new TestSource(base + 1_000);
      const scheduler = new AlarmScheduler(counted, [source]);
      await Promise.all([scheduler.reschedule(), scheduler.reschedule(), scheduler.reschedule()]);
      for (let i = 0; i < 100; i++) await scheduler.reschedule();
      expect({ reads, writes: storage.writes, alarm: await state.storage.getAlarm() }).toEqual({ reads: 1, writes: 0, alarm: base + 500 });
      source.dueAt = base + 100;
      await scheduler.reschedule();
      expect({ reads, writes: storage.writes, alarm: await state.storage.getAlarm() }).toEqual({ reads: 1, writes: 1, alarm: base + 100 });
      await scheduler.run(base + 100);
      expect({ works: source.works, alarm: await state.storage.getAlarm() }).toEqual({ works: 1, alarm: null });
    });
  });
});
