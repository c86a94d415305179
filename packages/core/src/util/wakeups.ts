/**
 * One-shot wake-ups by key: a waiter takes the next wake-up of a key before it looks at what it
 * waits for (so one that comes while it looks is not missed), then waits for it — beside a
 * timer, since a wake-up only says what this process saw. The engine's `waitFor` waits on the
 * jobs this process ends; a driver's waiting receives on the messages it is told of.
 */
export class Wakeups<K> {
  private readonly waiters = new Map<K, Set<() => void>>();

  /** The next wake-up of `key`; `cancel()` once it is no longer awaited (it never rejects). */
  next(key: K): { promise: Promise<void>; cancel(): void } {
    let set = this.waiters.get(key);
    if (!set) {
      set = new Set();
      this.waiters.set(key, set);
    }
    const waiters = set;
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => {
      wake = resolve;
    });
    waiters.add(wake);
    return {
      promise,
      cancel: () => {
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key);
      },
    };
  }

  /** Wakes every waiter of `key`. */
  wake(key: K): void {
    const set = this.waiters.get(key);
    if (!set) return;
    this.waiters.delete(key);
    for (const wake of set) wake();
  }

  /** Wakes every waiter of every key (their owner is closing). */
  wakeAll(): void {
    for (const key of [...this.waiters.keys()]) this.wake(key);
  }
}
