/**
 * Bounded crash campaign per path: real worker processes SIGKILLed at random moments, inside
 * fan-outs and around stage advances; every invariant checked from the store and the queues.
 * A path whose service is missing is skipped with a message (REQUIRE_SERVICES=1: fails).
 * On Postgres the workers also run an OpenTelemetry SDK and their exported spans are checked.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FLEET_OWNER, liveWorkers } from '../src/fleet.js';
import { runCampaign } from '../src/harness.js';
import { PATHS } from '../src/paths.js';

describe('crash campaign with real worker processes (SIGKILL)', () => {
  for (const path of PATHS) {
    it(`${path}: every job completes exactly once through kills`, async () => {
      const report = await runCampaign({
        path,
        kills: 3,
        killsPerRun: 3,
        maxRuns: 1,
        workers: 3,
        jobsPerRun: 2,
        n: 100,
        // Small: each stage is released a few tasks at a time, so kills land between releases.
        window: 16,
        otel: path === 'postgres',
        log: (line) => console.info(line),
      });
      if (report.skipped) {
        console.warn(`[chaos] ${path} skipped: ${report.skipped}`);
        return;
      }
      console.info(
        `[chaos] ${path}: ${report.runs} runs, ${report.kills} kills ${JSON.stringify(report.killsBy)}, ${report.tasks} tasks, seed ${report.seed}`,
      );
      expect(report.violations).toEqual([]);
      expect(report.lost).toBe(0);
      // One of each run's two jobs has no finalize: its last completion finishes it in place.
      expect(report.plainJobs).toBe(1);
      expect(report.deadlocks).toBe(0);
      expect(report.kills).toBeGreaterThan(0);
      if (path === 'postgres') expect(report.otel?.inJobTrace).toBeGreaterThan(0);
      expect(liveWorkers()).toBe(0);
      expect(orphans()).toBe('');
    });
  }
});

/**
 * This campaign's worker processes still running (there must be none). Workers of the campaigns
 * running beside it, or of another checkout on the machine, carry other owner marks.
 */
function orphans(): string {
  try {
    // `--` ends pgrep's options: the pattern itself starts with dashes.
    return execFileSync('pgrep', ['-f', '--', `--owner=${FLEET_OWNER}`], {
      encoding: 'utf8',
    }).trim();
  } catch (err) {
    // Exit status 1: no process matched. Anything else is a failed check, not a clean one.
    if ((err as { status?: number }).status === 1) return '';
    throw err;
  }
}
