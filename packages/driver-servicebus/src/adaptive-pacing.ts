/**
 * Adaptive credit pacing: what the transport does when it is given neither a `tier` nor a
 * `rateLimit`. It does not know the namespace's tier, so it paces nothing until the namespace says
 * it is spending too much, and then paces at what it learnt.
 *
 * The rule (figures from {@link ADAPTIVE_PACING}); `s` is the most credits the transport spent in
 * any one second from a second before the refused operation began until the refusal reached it
 * (an SDK retry can report a refusal long after the service gave it, so the window starts at the
 * operation, not at the report):
 *
 * - **Unrefused: unpaced.** `take` returns `undefined` at once; the transport only reports the
 *   credits its operations spent (`spent`, one addition to a per-100 ms history). A Premium
 *   namespace does not throttle on credits, so a transport that is never refused never waits for
 *   a credit.
 * - **Every refusal pauses** for the wait the service asks (2 s) and empties the bucket: each
 *   operation sent into a throttled namespace is refused again and prolongs the throttling.
 * - **The first refusal engages pacing** at `s × decrease` (0.75) with a ceiling of
 *   `s × ceilingShare` (0.85): `s` is the rate the namespace refused, and a second at the ceiling
 *   plus a full burst (a tenth of a second's credits) spends ~0.94 `s`, under it, as the
 *   `standard` tier's 850/s + 100 stay under the 1,000 credits. Unless `s` is under
 *   `minRefusedPerSecond` (100, a tenth of a Standard namespace's credits): a transport spending
 *   that little did not exhaust the namespace (another client did), pacing it would not relieve
 *   the namespace, and a ceiling learnt from so low a rate would hold it back long after that
 *   client stopped. It only pauses.
 * - **A further refusal lowers both.** Refused while pacing at `rate`, the transport was refused
 *   at `r = min(rate, s)` (its spending can pass the rate by a burst, and a second's peak then
 *   says more about the burst than the rate): the ceiling becomes `min(ceiling, r × ceilingShare)`
 *   and the rate `r × decrease`, so the ceiling only ever moves down, to below a rate that was
 *   refused. It only pauses when the transport was spending under `usedShare` (half) of its rate
 *   (others' load, not its own), or when the operation began before the last decrease: that one
 *   was sent at the old rate (or is an SDK retry of one) and says nothing about the new rate.
 *   Concurrent operations refused together therefore lower the rate once, not once each.
 * - **Unrefused, the rate recovers** by 5 % of the ceiling per second (from a decrease back to the
 *   ceiling in about 2.5 s) and never passes the ceiling: the namespace refused a little above
 *   it, and probing up to the refused rate again would cost a 2 s pause each time.
 * - **Five minutes without a refusal disengage pacing:** the transport is unpaced again and the
 *   next refusal measures afresh. The limit it learnt may be stale (another client of the
 *   namespace stopped, or the load moved); re-learning costs one pause every five minutes at
 *   most, under 1 % of the time, and a transport refused in one burst does not pay the pacing
 *   wait forever.
 * - **Floor:** never below `minPerSecond` (10) credits per second.
 * @module
 */

/** Tuning of {@link AdaptiveCreditBucket}; the defaults are {@link ADAPTIVE_PACING}. */
export interface AdaptivePacingOptions {
  /** Share of the refused rate (or of the current rate, the lower) pacing continues at after a refusal. */
  decrease: number;
  /** Share of the refused rate the rate may recover to (and never pass). */
  ceilingShare: number;
  /** Share of the ceiling the rate regains per unrefused second. */
  recoveryPerSecond: number;
  /** The bucket holds this many seconds of credits at the current rate (at least one credit). */
  burstSeconds: number;
  /** A refusal while the transport spent less than this (credits per second) does not engage pacing. */
  minRefusedPerSecond: number;
  /** A refusal while pacing lowers the rate only if the transport spent at least this share of it. */
  usedShare: number;
  /** Unpaced again after this long without a refusal, ms. */
  resetAfterMs: number;
  /** Lowest rate, credits per second. */
  minPerSecond: number;
}

/** The adaptive pacing's defaults (see the module's rule). */
export const ADAPTIVE_PACING: Readonly<AdaptivePacingOptions> = {
  decrease: 0.75,
  ceilingShare: 0.85,
  recoveryPerSecond: 0.05,
  burstSeconds: 0.1,
  minRefusedPerSecond: 100,
  usedShare: 0.5,
  resetAfterMs: 5 * 60_000,
  minPerSecond: 10,
};

/** Spending history: 100 ms slots, 60 s of them (an operation refused after longer is measured over its last 60 s). */
const SLOT_MS = 100;
const SLOTS = 600;
const SLOTS_PER_SECOND = 1000 / SLOT_MS;

/** The pacing of an {@link AdaptiveCreditBucket} while engaged. */
export interface AdaptivePacingState {
  /** Credits per second it paces at now. */
  creditsPerSecond: number;
  /** The most it will pace at until it is unpaced again. */
  ceiling: number;
}

export class AdaptiveCreditBucket {
  private readonly options: AdaptivePacingOptions;
  /** Credits spent per slot; slot `i` (epoch ms / SLOT_MS) lives at `i % SLOTS`. */
  private readonly history = new Float64Array(SLOTS);
  private newestSlot = 0;
  /** 0 while unpaced. */
  private rate = 0;
  private ceiling = 0;
  private tokens = 0;
  private last = 0;
  private pausedUntil = 0;
  private lastRefusal = 0;
  private lastDecrease = Number.NEGATIVE_INFINITY;
  private tail: Promise<void> = Promise.resolve();

  constructor(options: Partial<AdaptivePacingOptions> = {}) {
    this.options = { ...ADAPTIVE_PACING, ...options };
  }

  /** True while pacing: from the refusal that engaged it until `resetAfterMs` without one. */
  engaged(now = Date.now()): boolean {
    if (this.rate === 0) return false;
    if (now - this.lastRefusal < this.options.resetAfterMs) return true;
    this.rate = 0;
    this.ceiling = 0;
    return false;
  }

  /** The rate and ceiling while engaged; `undefined` while unpaced. */
  state(now = Date.now()): AdaptivePacingState | undefined {
    if (!this.engaged(now)) return undefined;
    this.refill(now);
    return { creditsPerSecond: this.rate, ceiling: this.ceiling };
  }

  /** Records `n` credits spent at `now` (by operations the service carried out, not refused ones). */
  spent(n: number, now = Date.now()): void {
    const slot = Math.floor(now / SLOT_MS);
    this.advance(slot);
    if (this.newestSlot - slot < SLOTS) this.history[slot % SLOTS]! += n;
  }

  /**
   * Waits for `n` credits while pacing or paused, in request order (one request larger than the
   * bucket drives it negative, and the next waits longer). Unpaced and not paused: returns
   * `undefined`, nothing to wait for.
   */
  take(n: number, signal?: AbortSignal, now = Date.now()): Promise<void> | undefined {
    if (!this.engaged(now) && now >= this.pausedUntil) return undefined;
    const run = this.tail.then(() => this.wait(n, signal));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * The service answered `ServerBusy` at `now` to an operation begun at `startedAt`: pause for
   * `pauseMs`, and engage or lower the pacing by the module's rule.
   */
  throttled(pauseMs: number, now = Date.now(), startedAt = now): void {
    const engaged = this.engaged(now);
    if (engaged) this.refill(now);
    this.lastRefusal = now;
    this.pausedUntil = Math.max(this.pausedUntil, now + pauseMs);
    this.tokens = Math.min(this.tokens, 0);
    if (startedAt < this.lastDecrease) return; // sent at the old rate
    const { decrease, ceilingShare, minRefusedPerSecond, usedShare, minPerSecond } = this.options;
    const spent = this.peakSecond(startedAt, now);
    if (engaged) {
      if (spent < this.rate * usedShare) return; // others' load
      const refusedAt = Math.min(this.rate, spent);
      this.ceiling = Math.min(this.ceiling, refusedAt * ceilingShare);
      this.rate = refusedAt * decrease;
    } else {
      if (spent < minRefusedPerSecond) return; // another client exhausted the namespace
      this.ceiling = spent * ceilingShare;
      this.rate = spent * decrease;
      this.tokens = 0;
    }
    this.ceiling = Math.max(minPerSecond, this.ceiling);
    this.rate = Math.max(minPerSecond, Math.min(this.rate, this.ceiling));
    this.last = now;
    this.lastDecrease = now;
  }

  private get burst(): number {
    return Math.max(1, this.rate * this.options.burstSeconds);
  }

  /** Adds the credits and rate regained since the last refill; none while paused. */
  private refill(now: number): void {
    const from = Math.max(this.last, this.pausedUntil);
    this.last = Math.max(this.last, now);
    if (now <= from) return;
    const elapsed = (now - from) / 1000;
    this.rate = Math.min(
      this.ceiling,
      this.rate + elapsed * this.ceiling * this.options.recoveryPerSecond,
    );
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
  }

  private async wait(n: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      let ms: number;
      if (now < this.pausedUntil) ms = this.pausedUntil - now;
      else if (!this.engaged(now)) return;
      else {
        this.refill(now);
        const need = Math.min(n, this.burst);
        if (this.tokens >= need) {
          this.tokens -= n;
          return;
        }
        ms = Math.ceil(((need - this.tokens) / this.rate) * 1000);
      }
      signal?.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, ms)));
    }
  }

  /** Moves the history's newest slot to `slot`, emptying the slots passed over. */
  private advance(slot: number): void {
    if (slot <= this.newestSlot) return;
    const passed = Math.min(SLOTS, slot - this.newestSlot);
    for (let i = 1; i <= passed; i++) this.history[(this.newestSlot + i) % SLOTS] = 0;
    this.newestSlot = slot;
  }

  /** The most credits spent in any one second (ten consecutive slots) from a second before `startedAt` to `now`. */
  private peakSecond(startedAt: number, now: number): number {
    const end = Math.floor(now / SLOT_MS);
    this.advance(end);
    const first = Math.max(
      Math.floor((Math.min(startedAt, now) - 1000) / SLOT_MS),
      end - SLOTS + 1,
    );
    let sum = 0;
    let peak = 0;
    for (let i = first; i <= end; i++) {
      sum += this.history[i % SLOTS]!;
      if (i - SLOTS_PER_SECOND >= first) sum -= this.history[(i - SLOTS_PER_SECOND) % SLOTS]!;
      peak = Math.max(peak, sum);
    }
    return peak;
  }
}
