/**
 * `PutWake`: wakes the receive calls of a queue without lanes when this transport puts a message
 * in it.
 *
 * A Storage queue has no push: an idle receive polls, backing off to a poll a second, so a message
 * sent to an idle queue waits up to that second. When the sender is this same transport (a stage
 * message sent by the barrier or by `submit` in the process that also receives), it knows the
 * message is there: sleeping receive calls of that queue wake when it becomes visible and poll at
 * once, with their back-off reset. Messages from other processes still wait for the next poll.
 * (With priority lanes, the task queue's `LaneClock` does the same per lane.)
 * @module
 */

export class PutWake {
  private readonly sleepers = new Set<() => void>();
  /** The single timer for the earliest delayed put not yet visible, and when it fires. */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  /** This transport put a message that becomes visible `delayMs` from now. */
  put(delayMs: number): void {
    if (delayMs <= 0) {
      this.wakeAll();
      return;
    }
    const at = Date.now() + delayMs;
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.wakeAll();
    }, delayMs);
    // A pending wake-up alone must not keep the process alive.
    this.timer.unref?.();
  }

  /**
   * Waits `ms`, or less if the signal aborts or a put becomes visible meanwhile. Resolves `true`
   * when a put woke it.
   */
  sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(false);
      const finish = (woken: boolean): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        signal.removeEventListener('abort', abort);
        resolve(woken);
      };
      const wake = (): void => finish(true);
      const abort = (): void => finish(false);
      const timer = setTimeout(() => finish(false), ms);
      this.sleepers.add(wake);
      signal.addEventListener('abort', abort, { once: true });
    });
  }

  /** Cancels the pending delayed wake-up (the transport is closing). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private wakeAll(): void {
    for (const wake of [...this.sleepers]) wake();
  }
}
