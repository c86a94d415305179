import { afterEach, describe, expect, it, vi } from 'vitest';
import { ADAPTIVE_PACING, AdaptiveCreditBucket } from '../src/adaptive-pacing.js';

/** A round epoch time, so that 100 ms history slots start at it. */
const T = 1_700_000_000_000;
const PAUSE = 2000;
const { decrease, ceilingShare, recoveryPerSecond } = ADAPTIVE_PACING;

/** Spends `perSecond` credits evenly over the second before `end` (ten slots of 100 ms). */
function spendSecond(bucket: AdaptiveCreditBucket, perSecond: number, end: number): void {
  for (let i = 10; i >= 1; i--) bucket.spent(perSecond / 10, end - i * 100);
}

/** A bucket refused at `T` after spending `perSecond` in the second before. */
function refusedAt(perSecond: number): AdaptiveCreditBucket {
  const bucket = new AdaptiveCreditBucket();
  spendSecond(bucket, perSecond, T);
  bucket.throttled(PAUSE, T);
  return bucket;
}

describe('AdaptiveCreditBucket', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('unrefused, paces nothing: take has nothing to wait for', () => {
    const bucket = new AdaptiveCreditBucket();
    spendSecond(bucket, 5000, T);
    expect(bucket.take(100, undefined, T)).toBeUndefined();
    expect(bucket.engaged(T)).toBe(false);
    expect(bucket.state(T)).toBeUndefined();
  });

  it('the first refusal engages at the rate spent times the decrease, under a ceiling a little below it', () => {
    const bucket = refusedAt(1000);
    expect(bucket.engaged(T)).toBe(true);
    expect(bucket.state(T)).toEqual({
      creditsPerSecond: 1000 * decrease,
      ceiling: 1000 * ceilingShare,
    });
  });

  it('measures from a second before the refused operation began, however late the refusal arrives', () => {
    const bucket = new AdaptiveCreditBucket();
    // The operation began at T and was refused 20 s later (the SDK retried it meanwhile).
    spendSecond(bucket, 800, T);
    bucket.throttled(PAUSE, T + 20_000, T);
    expect(bucket.state(T + 20_000)?.ceiling).toBeCloseTo(800 * ceilingShare);
  });

  it('a refusal while spending next to nothing pauses without engaging', async () => {
    vi.useFakeTimers({ now: T });
    const bucket = new AdaptiveCreditBucket();
    spendSecond(bucket, 20, T);
    bucket.throttled(PAUSE, T);
    expect(bucket.engaged(T)).toBe(false);
    // Paused: a take waits out the pause, then the bucket is unpaced again.
    let done = false;
    void bucket.take(1, undefined, T)?.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(PAUSE - 10);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    expect(done).toBe(true);
    expect(bucket.take(1, undefined, T + PAUSE + 10)).toBeUndefined();
  });

  it('every refusal pauses: no credit until the wait the service asked is over', async () => {
    vi.useFakeTimers({ now: T });
    const bucket = refusedAt(1000);
    let done = false;
    void bucket.take(1, undefined, T)?.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(PAUSE - 10);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toBe(true);
  });

  it('a further refusal lowers the rate and the ceiling to below what was refused', () => {
    const bucket = refusedAt(1000);
    // Paced at 750 after the pause, the transport spends 700 a second and is refused again.
    const t = T + PAUSE + 1000;
    spendSecond(bucket, 700, t);
    const before = bucket.state(t)!;
    bucket.throttled(PAUSE, t);
    const after = bucket.state(t)!;
    expect(after.ceiling).toBeCloseTo(700 * ceilingShare);
    expect(after.creditsPerSecond).toBeCloseTo(Math.min(before.creditsPerSecond, 700) * decrease);
  });

  it('refused while spending past its rate (a burst), it counts the rate as the one refused', () => {
    const bucket = refusedAt(1000);
    const t = T + 60_000; // recovered to the ceiling, 850
    spendSecond(bucket, 1000, t);
    bucket.throttled(PAUSE, t);
    expect(bucket.state(t)).toEqual({
      creditsPerSecond: 850 * decrease,
      ceiling: 850 * ceilingShare,
    });
  });

  it('operations begun before the last decrease and refused together lower the rate once', () => {
    const bucket = refusedAt(1000);
    const rate = bucket.state(T)!.creditsPerSecond;
    // Seven more of the operations in flight at T are refused over the next moments.
    for (let i = 1; i <= 7; i++) bucket.throttled(PAUSE, T + i * 10, T - 5);
    expect(bucket.state(T + 100)!.creditsPerSecond).toBe(rate);
  });

  it('a refusal while spending well under the rate (others’ load) pauses without lowering it', () => {
    const bucket = refusedAt(1000);
    const t = T + 60_000;
    const before = bucket.state(t)!;
    spendSecond(bucket, 100, t);
    bucket.throttled(PAUSE, t);
    expect(bucket.state(t)).toEqual(before);
  });

  it('recovers by a twentieth of the ceiling per unrefused second after the pause, never past the ceiling', () => {
    const bucket = refusedAt(1000);
    const ceiling = 1000 * ceilingShare;
    const start = 1000 * decrease;
    expect(bucket.state(T + PAUSE)!.creditsPerSecond).toBeCloseTo(start);
    expect(bucket.state(T + PAUSE + 1000)!.creditsPerSecond).toBeCloseTo(
      start + ceiling * recoveryPerSecond,
    );
    expect(bucket.state(T + PAUSE + 60_000)).toEqual({ creditsPerSecond: ceiling, ceiling });
  });

  it('the ceiling only moves down while refusals keep coming', () => {
    const bucket = refusedAt(1000);
    let t = T;
    let ceiling = bucket.state(t)!.ceiling;
    for (let round = 0; round < 5; round++) {
      t += 10_000;
      const rate = bucket.state(t)!.creditsPerSecond;
      spendSecond(bucket, rate, t); // refused while spending its full rate
      bucket.throttled(PAUSE, t);
      const next = bucket.state(t)!.ceiling;
      expect(next).toBeLessThanOrEqual(ceiling);
      expect(next).toBeLessThan(rate);
      ceiling = next;
    }
  });

  it('never paces below the floor', () => {
    const bucket = refusedAt(200);
    let t = T;
    for (let round = 0; round < 30; round++) {
      t += 5000;
      spendSecond(bucket, bucket.state(t)!.creditsPerSecond, t);
      bucket.throttled(PAUSE, t);
    }
    expect(bucket.state(t)!.creditsPerSecond).toBe(ADAPTIVE_PACING.minPerSecond);
  });

  it('five minutes without a refusal: unpaced again, and the next refusal measures afresh', () => {
    const bucket = refusedAt(1000);
    const later = T + ADAPTIVE_PACING.resetAfterMs;
    expect(bucket.engaged(later - 1)).toBe(true);
    expect(bucket.engaged(later)).toBe(false);
    expect(bucket.take(100, undefined, later)).toBeUndefined();
    spendSecond(bucket, 2000, later + 1000);
    bucket.throttled(PAUSE, later + 1000);
    expect(bucket.state(later + 1000)?.ceiling).toBeCloseTo(2000 * ceilingShare);
  });

  it('engaged, hands out credits at the rate', async () => {
    vi.useFakeTimers({ now: T });
    const bucket = refusedAt(1000); // 750/s, bursts of 75, after the 2 s pause
    await vi.advanceTimersByTimeAsync(PAUSE);
    let taken = 0;
    const takes = Array.from({ length: 20 }, () => bucket.take(75)!.then(() => taken++));
    await vi.advanceTimersByTimeAsync(1000);
    // The bucket starts empty after a refusal: 75 credits every 100 ms.
    expect(taken).toBeGreaterThanOrEqual(9);
    expect(taken).toBeLessThanOrEqual(11);
    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all(takes);
  });
});
