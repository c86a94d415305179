/**
 * Credit-based throttling as a Standard namespace applies it: each one-second period starts with
 * the namespace's credits; operations spend them; an operation finding none left is refused with
 * `com.microsoft:server-busy`, and the namespace stays throttled for the penalty.
 * @module
 */

/** The condition and text the service answers a throttled operation with. */
export const SERVER_BUSY = {
  condition: 'com.microsoft:server-busy',
  description:
    'The request was terminated because the entity is being throttled. Error code: 50009. Please wait 2 seconds and try again.',
} as const;

const PERIOD_MS = 1000;

/** Counters of a {@link CreditThrottle}, for tests and benchmarks. */
export interface ThrottleStats {
  /** Credits spent by admitted operations. */
  credits: number;
  /** Operations refused with `server-busy`. */
  throttled: number;
  /** Deliveries held back while throttled (receives are delayed, not refused). */
  deliveriesDelayed: number;
}

export class CreditThrottle {
  private periodStart = 0;
  private balance: number;
  private blockedUntil = 0;
  readonly stats: ThrottleStats = { credits: 0, throttled: 0, deliveriesDelayed: 0 };

  constructor(
    private readonly perSecond: number,
    private readonly penaltyMs: number,
  ) {
    this.balance = perSecond;
  }

  /** Spends `credits` if the namespace has them now; false (counted as throttled) if not. */
  tryCharge(credits: number, now = Date.now()): boolean {
    if (!this.available(now)) {
      this.stats.throttled++;
      this.blockedUntil = Math.max(this.blockedUntil, now + this.penaltyMs);
      return false;
    }
    this.balance -= credits;
    this.stats.credits += credits;
    return true;
  }

  /**
   * Spends a credit for a delivery if one is available; false (the delivery waits for
   * {@link nextPeriodIn}) if not. A receive is not refused: the link simply delivers later.
   */
  tryDeliver(now = Date.now()): boolean {
    if (!this.available(now)) {
      this.stats.deliveriesDelayed++;
      return false;
    }
    this.balance -= 1;
    this.stats.credits += 1;
    return true;
  }

  /**
   * Spends credits that cannot be refused (a disposition already on the wire is applied): the
   * balance may go below zero, and the debt is carried into the next periods.
   */
  chargeAnyway(credits: number, now = Date.now()): void {
    this.refill(now);
    this.balance -= credits;
    this.stats.credits += credits;
  }

  /** Milliseconds until operations may be admitted again (0 when they may now). */
  waitMs(now = Date.now()): number {
    if (this.available(now)) return 0;
    const nextPeriod = this.periodStart + PERIOD_MS;
    return Math.max(1, Math.max(this.blockedUntil, nextPeriod) - now);
  }

  private available(now: number): boolean {
    this.refill(now);
    return now >= this.blockedUntil && this.balance > 0;
  }

  private refill(now: number): void {
    const start = now - (now % PERIOD_MS);
    if (start === this.periodStart) return;
    const periods = Math.max(1, Math.floor((start - this.periodStart) / PERIOD_MS));
    this.periodStart = start;
    // Credits do not accumulate beyond one period's worth; debt is paid off period by period.
    this.balance = Math.min(this.perSecond, this.balance + periods * this.perSecond);
  }
}
