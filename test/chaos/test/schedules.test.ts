/**
 * Schedules across a fleet: 3 worker processes evaluate the same schedules (every second and every
 * 3 s) on one PostgreSQL database while the harness SIGKILLs the evaluating one (the lease holder)
 * three times and replaces it. Each fire between the first and the last
 * must have exactly one job (none lost), and be reported created by at most one process (none
 * doubled).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ScheduleWorkerConfig } from '../src/schedule-worker.js';

const CHAOS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORKER = join(CHAOS_DIR, 'src', 'schedule-worker.ts');
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `sched_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
const children = new Set<ChildProcess>();

interface Fired {
  schedule: string;
  fireAt: string;
  created: boolean;
}
const fired: Fired[] = [];
/** The process that reported the latest fire: the scheduler lease holder. */
let evaluator: ChildProcess | undefined;

function start(): { child: ChildProcess; ready: Promise<void> } {
  const config: ScheduleWorkerConfig = { databaseUrl, schema, leaseMs: 1500, passEveryMs: 200 };
  const child = spawn(
    process.execPath,
    ['--conditions=@switchyard/source', '--import', 'tsx', WORKER],
    {
      cwd: CHAOS_DIR,
      detached: true,
      env: { ...process.env, SCHEDULE_WORKER: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as { ev: string } & Fired;
      if (line.ev === 'ready') resolve();
      if (line.ev === 'fired') evaluator = child;
      if (line.ev === 'fired')
        fired.push({ schedule: line.schedule, fireAt: line.fireAt, created: line.created });
    });
  });
  return { child, ready };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}

afterAll(async () => {
  for (const c of [...children]) await kill(c);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await admin.end();
});

describe('schedules across 3 worker processes', () => {
  it('submits each fire exactly once while evaluators are killed', {
    timeout: 120_000,
  }, async () => {
    try {
      await admin.query('SELECT 1');
    } catch (err) {
      if (process.env.REQUIRE_SERVICES === '1') throw err;
      console.warn(`[schedules] PostgreSQL unreachable, skipped: ${(err as Error).message}`);
      return;
    }
    const fleet = [start(), start(), start()];
    await Promise.all(fleet.map((w) => w.ready));
    // Three times, the evaluating process (the one that just reported a fire) is SIGKILLed in the
    // middle of its passes and replaced.
    let kills = 0;
    for (let round = 0; round < 3; round++) {
      await sleep(4000);
      const victim = fleet.findIndex((w) => w.child === evaluator);
      if (victim < 0) continue;
      await kill(fleet[victim]!.child);
      kills++;
      fleet[victim] = start();
    }
    expect(kills).toBe(3);
    await sleep(4000);
    for (const w of fleet) {
      w.child.kill('SIGTERM');
    }
    await Promise.all(
      fleet.map(
        (w) => new Promise((r) => (w.child.exitCode !== null ? r(0) : w.child.once('exit', r))),
      ),
    );

    const { rows } = await admin.query<{ key: string }>(
      `SELECT idempotency_key AS key FROM ${schema}.jobs WHERE idempotency_key LIKE 'schedule:%'`,
    );
    for (const [name, stepMs] of [
      ['every-second', 1000],
      ['every-3s', 3000],
    ] as const) {
      const times = rows
        .map((r) => r.key)
        .filter((k) => k.startsWith(`schedule:${name}:`))
        .map((k) => Date.parse(k.slice(`schedule:${name}:`.length)))
        .sort((x, y) => x - y);
      expect(times.length, name).toBeGreaterThan(name === 'every-second' ? 12 : 4);
      // None lost: consecutive fires, no gap (catchUp 'all' across the killed evaluators).
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, name).toBe(stepMs);
      // None doubled: at most one process saw its fire's job created.
      const created = fired.filter((f) => f.schedule === name && f.created).map((f) => f.fireAt);
      expect(new Set(created).size, name).toBe(created.length);
      expect(created.length, name).toBeLessThanOrEqual(times.length);
      const resubmitted = fired.filter((f) => f.schedule === name && !f.created).length;
      console.info(
        `[schedules] ${name}: ${times.length} fires, ${created.length} reported created, ${resubmitted} re-submitted (idempotent), 0 lost, 0 doubled`,
      );
    }
    const byKey = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema}.jobs GROUP BY idempotency_key HAVING count(*) > 1`,
    );
    expect(byKey.rows).toEqual([]);
  });
});
