import { describe, expect, it } from 'vitest';
import { OutcomeLanes } from '../src/outcome-lanes.js';
import { CreditBucket } from '../src/rate-limit.js';

describe('OutcomeLanes', () => {
  it('never has two different outcomes in flight, and coalesces equal ones', async () => {
    const lanes = new OutcomeLanes();
    const inFlight = new Map<string, number>();
    let violations = 0;
    let maxParallel = 0;
    const keys = ['complete', 'abandon', 'deadLetter:a', 'deadLetter:b'];
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        lanes.submit(keys[i % keys.length]!, async () => {
          const key = keys[i % keys.length]!;
          inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
          if ([...inFlight].some(([k, n]) => k !== key && n > 0)) violations++;
          maxParallel = Math.max(maxParallel, inFlight.get(key)!);
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          inFlight.set(key, inFlight.get(key)! - 1);
        }),
      ),
    );
    expect(violations).toBe(0);
    expect(maxParallel).toBeGreaterThan(1);
    expect(lanes.groupsRun).toBeLessThanOrEqual(8);
  });

  it('reports each failure to its own caller and keeps going', async () => {
    const lanes = new OutcomeLanes();
    const results = await Promise.allSettled([
      lanes.submit('complete', async () => {
        throw new Error('boom');
      }),
      lanes.submit('abandon', async () => {}),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
  });
});

describe('CreditBucket', () => {
  it('holds a fan-out under the budget', async () => {
    const bucket = new CreditBucket({ perSecond: 200 });
    const started = Date.now();
    // 200 immediately (full bucket), then 200 more at 200/s ≈ 1 s.
    for (let i = 0; i < 8; i++) await bucket.take(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('spends at most rate + burst in any second, and pauses and slows down when throttled', async () => {
    const bucket = new CreditBucket({ perSecond: 100, burst: 10 });
    const started = Date.now();
    for (let i = 0; i < 11; i++) await bucket.take(10); // 10 at once, then 100 at 100/s ≈ 1 s
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const t = Date.now();
    bucket.throttled(300);
    expect(bucket.perSecond).toBeLessThan(100);
    await bucket.take(1);
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
  });
});
