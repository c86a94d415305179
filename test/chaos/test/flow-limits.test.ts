/**
 * Per-key limits across real worker processes on PostgreSQL: every handler run's key, start and
 * end and every rate-limited admission are recorded; the limits must hold at every instant, every
 * task complete exactly once, and no key slot outlive its lease — with and without SIGKILLs.
 */
import { describe, expect, it } from 'vitest';
import { liveWorkers } from '../src/fleet.js';
import { runCampaign } from '../src/harness.js';

describe('flow control across worker processes (postgres)', () => {
  it('3 workers never exceed a per-key limit of 2 or a rate limit of 5 per second per key', async () => {
    const report = await runCampaign({
      path: 'postgres',
      kills: 0,
      maxRuns: 1,
      workers: 3,
      jobsPerRun: 1,
      n: 60,
      maxWorkMs: 40,
      flow: { keyLimit: 2, rate: { limit: 5, periodMs: 1000 }, slotLeaseMs: 2000 },
      log: (line) => console.info(line),
    });
    if (report.skipped) {
      console.warn(`[flow] postgres skipped: ${report.skipped}`);
      return;
    }
    console.info(`[flow] ${JSON.stringify(report.flow)}`);
    expect(report.violations).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.tasks).toBe(60 + 60 + 6);
    // Both stages' runs checked; the limit was reached (so it was tested), never passed.
    expect(report.flow?.runs).toBeGreaterThanOrEqual(120);
    expect(report.flow?.maxConcurrent).toBe(2);
    expect(report.flow?.admissions).toBeGreaterThanOrEqual(60);
    expect(liveWorkers()).toBe(0);
  });

  it('workers killed at random during a key-limited job: limits kept, nothing lost, no slot outlives its lease', async () => {
    const report = await runCampaign({
      path: 'postgres',
      kills: 3,
      killsPerRun: 3,
      maxRuns: 1,
      workers: 3,
      jobsPerRun: 1,
      n: 80,
      // Long enough that a kill usually lands while the worker holds key slots.
      maxWorkMs: 200,
      flow: { keyLimit: 2, slotLeaseMs: 2000 },
      log: (line) => console.info(line),
    });
    if (report.skipped) return;
    console.info(`[flow] kills ${report.kills}: ${JSON.stringify(report.flow)}`);
    expect(report.violations).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.kills).toBeGreaterThan(0);
    expect(report.flow?.maxConcurrent).toBe(2);
    expect(liveWorkers()).toBe(0);
  });
});
