/**
 * The operations campaign, small: on the PostgreSQL path, while workers are SIGKILLed, a failed job
 * is healed and retried, a running job cancelled, the previous run's jobs purged and cancelled jobs
 * deleted by the workers' retention; every check of `runOperations` must hold.
 */
import { describe, expect, it } from 'vitest';
import { liveWorkers } from '../src/fleet.js';
import { runOperations } from '../src/operations.js';

describe('operations campaign with real worker processes (SIGKILL)', () => {
  it('postgres: retried jobs succeed once, cancelled jobs start nothing late, purged jobs are gone', async () => {
    const report = await runOperations({
      path: 'postgres',
      runs: 2,
      killsPerRun: 2,
      workers: 2,
      n: 60,
      cancelledRetentionMs: 2000,
      log: (line) => console.info(line),
    });
    if (report.skipped) {
      console.warn(`[operations] postgres skipped: ${report.skipped}`);
      return;
    }
    console.info(`[operations] ${JSON.stringify({ ...report, violations: undefined })}`);
    expect(report.violations).toEqual([]);
    expect(report.lost).toBe(0);
    expect(report.runs).toBe(2);
    expect(report.retried.jobs).toBe(2);
    // Run 2 purged run 1's succeeded jobs; the workers' retention deleted every cancelled job.
    expect(report.purged.byPurge.jobs).toBeGreaterThanOrEqual(2);
    expect(report.purged.byRetention).toBe(report.cancelled.jobs);
    expect(report.purged.checkedGone).toBe(report.purged.byPurge.jobs + report.cancelled.jobs);
    expect(report.kills).toBeGreaterThan(0);
    expect(liveWorkers()).toBe(0);
  });
});
