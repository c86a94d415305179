/**
 * A token bucket for the Service Bus credit budget. A Standard namespace gives 1,000 credits per
 * second; each message sent, received or settled costs one, and an operation finding none left is
 * refused with `ServerBusy` ("Please wait 2 seconds and try again"). Keeping under the budget is
 * cheaper than meeting it: a refused send waits seconds, a paced one milliseconds.
 *
 * The bucket holds at most `burst` credits, so in any one-second window at most
 * `perSecond + burst` are spent — under the namespace's limit when both are chosen below it
 * (the `standard` tier defaults: 850 + 100). A throttling answer despite that (another client
 * shares the namespace) pauses the bucket for the wait the service asks and lowers its rate by a
 * quarter; each second without one gives back a twentieth of the configured rate.
 * @module
 */

/** Options of {@link CreditBucket}. */
export interface CreditBucketOptions {
  /** Credits per second. */
  perSecond: number;
  /** Most credits spent at once after idling. @defaultValue `perSecond` */
  burst?: number;
}

/** Lowest share of the configured rate repeated throttling can bring the bucket to. */
const FLOOR = 0.1;
const DECREASE = 0.75;
const RECOVERY_PER_SECOND = 0.05;

export class CreditBucket {
  private readonly configured: number;
  private readonly burst: number;
  private rate: number;
  private tokens: number;
  private last = Date.now();
  private pausedUntil = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(options: CreditBucketOptions) {
    this.configured = options.perSecond;
    this.rate = options.perSecond;
    this.burst = Math.max(1, options.burst ?? options.perSecond);
    this.tokens = this.burst;
  }

  /** The current rate, credits per second (below the configured one after throttling). */
  get perSecond(): number {
    return this.rate;
  }

  /**
   * Waits until `n` credits are available, then spends them. Requests are served in order, and one
   * larger than the bucket drives it negative (the next request waits longer).
   */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const run = this.tail.then(() => this.wait(n, signal));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** The service answered `ServerBusy`: wait `pauseMs` before the next credit, and slow down. */
  throttled(pauseMs: number, now = Date.now()): void {
    this.pausedUntil = Math.max(this.pausedUntil, now + pauseMs);
    this.rate = Math.max(this.configured * FLOOR, this.rate * DECREASE);
    this.tokens = Math.min(this.tokens, 0);
  }

  private refill(now: number): void {
    const elapsed = (now - this.last) / 1000;
    this.last = now;
    if (now < this.pausedUntil) return;
    this.rate = Math.min(
      this.configured,
      this.rate + elapsed * this.configured * RECOVERY_PER_SECOND,
    );
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
  }

  private async wait(n: number, signal?: AbortSignal): Promise<void> {
    const need = Math.min(n, this.burst);
    for (;;) {
      const now = Date.now();
      this.refill(now);
      if (now >= this.pausedUntil && this.tokens >= need) {
        this.tokens -= n;
        return;
      }
      signal?.throwIfAborted();
      const ms =
        now < this.pausedUntil
          ? this.pausedUntil - now
          : Math.ceil(((need - this.tokens) / this.rate) * 1000);
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, ms)));
    }
  }
}
