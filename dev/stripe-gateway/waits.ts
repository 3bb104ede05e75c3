/** Waits the gateway can cut short: held requests and webhook timers end at once when it closes. */

/** A wait of `ms` milliseconds that `wake()` ends early. While it runs its `wake` is in `wakers`, so the owner of the set can end every wait at once. `done` tells whether the time ran out. */
export function wakeableWait(ms: number, wakers: Set<() => void>): { done: Promise<boolean>; wake: () => void } {
  let wake = (): void => undefined;
  const done = new Promise<boolean>((resolve) => {
    const finish = (timedOut: boolean) => {
      clearTimeout(timer);
      wakers.delete(wake);
      resolve(timedOut);
    };
    const timer = setTimeout(() => finish(true), ms);
    wake = () => finish(false);
    wakers.add(wake);
  });
  return { done, wake };
}
