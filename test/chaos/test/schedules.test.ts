/**
 * Schedules across a fleet: 3 worker processes evaluate the same schedules (every second and every
 * 3 s) on one PostgreSQL database while the harness SIGKILLs the evaluating one inside its pass —
 * after a fire's job is committed but before its message is sent, after a fire is submitted but
 * before the cursor moves past it, in the middle of a catch-up — and once between passes,
 * replacing it each time. Each fire between the first and the last must have exactly one job (none
 * lost, none doubled) that succeeded. `npm run chaos -- schedules --kills 30` is the long run.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runScheduleChaos } from '../src/schedules.js';

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function reachable(): Promise<boolean> {
  const admin = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await admin.query('SELECT 1');
    return true;
  } catch (err) {
    if (process.env.REQUIRE_SERVICES === '1') throw err;
    console.warn(`[schedules] PostgreSQL unreachable, skipped: ${(err as Error).message}`);
    return false;
  } finally {
    await admin.end();
  }
}

describe('schedules across 3 worker processes', () => {
  it('submits each fire exactly once while evaluators are killed inside their passes', {
    timeout: 240_000,
  }, async () => {
    if (!(await reachable())) return;
    const report = await runScheduleChaos({ databaseUrl, kills: 4, log: console.info });
    console.info(`[schedules] ${JSON.stringify({ ...report, violations: undefined })}`);
    expect(report.violations).toEqual([]);
    expect(report.killsBy).toEqual({ created: 1, submitted: 1, 'catch-up': 1, between: 1 });
    expect(report.resumedAfterKill).toBe(2);
    expect(report.lost + report.doubled + report.notRun).toBe(0);
    expect(report.schedules['every-second']!.fires).toBeGreaterThan(5);
  });
});
