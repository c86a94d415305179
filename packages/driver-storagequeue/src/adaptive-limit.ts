/**
 * An additive-increase / multiplicative-decrease bound on requests in flight. A storage account
 * answers `503 ServerBusy` past its rate (about 2,000 messages/s per queue, 20,000 requests/s per
 * account); halving the requests in flight on throttling and growing them back one at a time
 * keeps the rate just under the limit, where a fixed concurrency either leaves throughput unused
 * or keeps hitting the limit and loses each throttled request's back-off. Urgent requests (the
 * stage queue's: each moves a job forward, and there are few) take the next free slot before the
 * others waiting, so a job's hop does not queue behind another job's thousands of task calls.
 * @module
 */

/** Options of {@link AdaptiveLimit}. */
export interface AdaptiveLimitOptions {
  /** Most requests in flight (the configured `sendConcurrency`). */
  max: number;
  /** Fewest requests in flight after repeated throttling. @defaultValue 2 */
  min?: number;
  /** Throttling answers within this long of a decrease count as the same episode. @defaultValue 500 */
  episodeMs?: number;
}

export class AdaptiveLimit {
  private inFlight = 0;
  private current: number;
  private readonly min: number;
  private readonly max: number;
  private readonly episodeMs: number;
  private lastDecrease = 0;
  private successes = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly urgentWaiting: (() => void)[] = [];

  constructor(options: AdaptiveLimitOptions) {
    this.max = Math.max(1, options.max);
    this.min = Math.min(this.max, Math.max(1, options.min ?? 2));
    this.episodeMs = options.episodeMs ?? 500;
    this.current = this.max;
  }

  /** Requests allowed in flight now. */
  get limit(): number {
    return this.current;
  }

  /** Runs `task` once a slot is free; an `urgent` one before the others waiting. */
  async run<T>(task: () => Promise<T>, urgent = false): Promise<T> {
    // A woken waiter's slot is taken for it by `next`, so no other caller can slip in between.
    if (this.inFlight >= this.current) {
      const queue = urgent ? this.urgentWaiting : this.waiting;
      await new Promise<void>((r) => queue.push(r));
    } else this.inFlight++;
    try {
      return await task();
    } finally {
      this.inFlight--;
      this.next();
    }
  }

  /** A request succeeded: after a window's worth of successes, one more slot. */
  succeeded(): void {
    if (this.current >= this.max) return;
    if (++this.successes >= this.current) {
      this.successes = 0;
      this.current++;
      this.next();
    }
  }

  /** A request was throttled: halve the slots (once per episode). */
  throttled(now = Date.now()): void {
    this.successes = 0;
    if (now - this.lastDecrease < this.episodeMs) return;
    this.lastDecrease = now;
    this.current = Math.max(this.min, Math.floor(this.current / 2));
  }

  private next(): void {
    while (this.inFlight < this.current) {
      const wake = this.urgentWaiting.shift() ?? this.waiting.shift();
      if (!wake) return;
      this.inFlight++;
      wake();
    }
  }
}
