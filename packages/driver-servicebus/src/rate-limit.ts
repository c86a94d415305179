/**
 * A token bucket for the Service Bus credit budget (Standard namespaces are throttled at 1,000
 * credits/s; each message sent, received or settled costs one). Keeping a fan-out under the budget
 * is cheaper than being throttled (`ServerBusy` costs a 10 s back-off on the service side).
 * @module
 */

export class CreditBucket {
  private tokens: number;
  private last = Date.now();
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  /**
   * Waits until `n` credits are available, then spends them. Requests are served in order, and one
   * larger than the bucket may drive it negative (a batch of 100 at 50/s simply waits longer next time).
   */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const run = this.tail.then(() => this.wait(n, signal));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async wait(n: number, signal?: AbortSignal): Promise<void> {
    const need = Math.min(n, this.perSecond);
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(
        this.perSecond,
        this.tokens + ((now - this.last) / 1000) * this.perSecond,
      );
      this.last = now;
      if (this.tokens >= need) {
        this.tokens -= n;
        return;
      }
      signal?.throwIfAborted();
      const ms = Math.ceil(((need - this.tokens) / this.perSecond) * 1000);
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, ms)));
    }
  }
}
