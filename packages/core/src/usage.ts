/**
 * `UsageCounter`: what a transport keeps to implement `usage()` — billable operations by kind
 * and the throttling answers it met.
 * @module
 */
import type { TransportUsage } from './transport.js';

export class UsageCounter {
  private readonly counts = new Map<string, number>();
  private throttledCount = 0;

  /** Counts `n` billable operations of `kind` (`n` ≤ 0 counts nothing). */
  add(kind: string, n = 1): void {
    if (n > 0) this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }

  /** Counts a throttling answer (`ServerBusy`, 503). */
  throttled(n = 1): void {
    this.throttledCount += n;
  }

  /** A snapshot of the counters. */
  usage(): TransportUsage {
    const operations = Object.fromEntries(this.counts);
    let billable = 0;
    for (const n of this.counts.values()) billable += n;
    return { operations, billable, throttled: this.throttledCount };
  }
}
