/**
 * Schedules across a fleet, with the evaluator killed inside its pass: 3 worker processes
 * (`schedule-worker.ts`) evaluate the same cron schedules on one PostgreSQL database while the
 * harness SIGKILLs the evaluating one at a chosen point of its pass and starts a replacement:
 * - `created`: a fire's job committed, its first stage message not sent;
 * - `submitted`: a fire's job submitted, the schedule's cursor not moved past it;
 * - `catch-up`: in a pass submitting several fires (the backlog the previous kill left while its
 *   lease ran out), after one of them;
 * - `between`: the evaluator (the last process to report a fire) at a random moment.
 * Checked once every process has stopped: the fires between the first and the last are
 * consecutive (none lost), each has one job and was reported created by one process at most
 * (none doubled), and every fire's job succeeded (a job killed before its message was sent still
 * ran).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  type KillPoint,
  SCHEDULES,
  type ScheduleWorkerConfig,
  type ScheduleWorkerLine,
} from './schedule-worker.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'schedule-worker.ts');
const CHAOS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export type ScheduleKill = KillPoint | 'between';
const ROTATION: readonly ScheduleKill[] = ['created', 'submitted', 'catch-up', 'between'];

export interface ScheduleChaosOptions {
  databaseUrl: string;
  /** SIGKILLs of the evaluator, rotating through the kill points. */
  kills: number;
  /** Worker processes alive at once. @defaultValue 3 */
  workers?: number;
  log?: (line: string) => void;
}

export interface ScheduleChaosReport {
  kills: number;
  killsBy: Record<ScheduleKill, number>;
  /** Armed kill points no process reached in time (no kill made for them). */
  missedPoints: number;
  /** Per schedule: fires with a job, job creations, re-submissions (the job existed: idempotent). */
  schedules: Record<string, { fires: number; created: number; resubmitted: number }>;
  /** Fires missing between a schedule's first and last. */
  lost: number;
  /** Fires with more than one job, or whose job more than one process created. */
  doubled: number;
  /** Fires whose job did not succeed. */
  notRun: number;
  /** Fires at a kill point (`created`, `submitted`) whose job a later process re-submitted. */
  resumedAfterKill: number;
  violations: string[];
  durationMs: number;
}

interface Worker {
  child: ChildProcess;
  exited: Promise<void>;
}

export async function runScheduleChaos(
  options: ScheduleChaosOptions,
): Promise<ScheduleChaosReport> {
  const log = options.log ?? (() => {});
  const started = Date.now();
  const schema = `sched_chaos_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: options.databaseUrl, max: 2 });
  const config: ScheduleWorkerConfig = {
    databaseUrl: options.databaseUrl,
    schema,
    // A takeover comes at least ~2.3 s after the killed pass's "now": a backlog of 2+ every-second
    // fires, which a catch-up kill needs.
    leaseMs: 2500,
    passEveryMs: 200,
  };
  let fires = 0;
  const submits: { key: string; created: boolean; at: number }[] = [];
  const kills: { kind: ScheduleKill; schedule?: string; fireAt?: string; at: number }[] = [];
  let missedPoints = 0;
  let evaluator: Worker | undefined;
  let onPoint: ((w: Worker, line: ScheduleWorkerLine & { ev: 'point' }) => void) | undefined;
  const fleet: Worker[] = [];

  const start = (): Worker => {
    const child = spawn(
      process.execPath,
      ['--conditions=@switchyard/source', '--import', 'tsx', WORKER],
      {
        cwd: CHAOS_DIR,
        detached: true,
        env: { ...process.env, SCHEDULE_WORKER: JSON.stringify(config) },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    // A write to a process that was just killed fails: ignored.
    child.stdin!.on('error', () => {});
    const worker: Worker = { child, exited: new Promise((r) => child.once('exit', () => r())) };
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as ScheduleWorkerLine;
      if (line.ev === 'fired') {
        evaluator = worker;
        fires++;
      }
      if (line.ev === 'submit') submits.push({ ...line, at: Date.now() });
      if (line.ev === 'point') onPoint?.(worker, line);
    });
    return worker;
  };
  const kill = async (w: Worker) => {
    try {
      process.kill(-w.child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
    await w.exited;
  };
  const tell = (command: { arm: KillPoint | null; schedule?: string } | { passes: false }) => {
    for (const w of fleet) w.child.stdin!.write(`${JSON.stringify(command)}\n`);
  };
  const arm = (point: KillPoint | null, schedule?: string) =>
    tell({ arm: point, ...(schedule ? { schedule } : {}) });
  const replace = (w: Worker) => {
    fleet.splice(fleet.indexOf(w), 1, start());
  };

  try {
    for (let i = 0; i < (options.workers ?? 3); i++) fleet.push(start());
    // The schedules' first pass starts their cursors; wait for real fires before killing.
    while (fires < 3) await sleep(200);
    for (let k = 0; k < options.kills; k++) {
      const kind = ROTATION[k % ROTATION.length]!;
      // A catch-up needs the backlog the previous kill left (armed at once); the other points
      // are armed at a random moment, in a backlog pass or a steady one.
      if (kind !== 'catch-up') await sleep(500 + Math.random() * 3500);
      if (kind === 'between') {
        const victim = evaluator && fleet.includes(evaluator) ? evaluator : fleet[0]!;
        await kill(victim);
        kills.push({ kind, at: Date.now() });
        replace(victim);
        continue;
      }
      const hit = await new Promise<
        { worker: Worker; line: ScheduleWorkerLine & { ev: 'point' } } | undefined
      >((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 30_000);
        onPoint = (worker, line) => {
          clearTimeout(timer);
          onPoint = undefined;
          resolve({ worker, line });
        };
        // A fire of either schedule (a catch-up: whichever has a backlog).
        const schedule =
          kind === 'catch-up' ? undefined : SCHEDULES[Math.floor(Math.random() * 2)]!.name;
        arm(kind, schedule);
      });
      if (!hit) {
        missedPoints++;
        arm(null);
        log(`[schedules] kill ${k + 1}: no process reached "${kind}" in 30 s`);
        continue;
      }
      // The worker stopped at the point; the kill lands there.
      await kill(hit.worker);
      arm(null);
      kills.push({ kind, schedule: hit.line.schedule, fireAt: hit.line.fireAt, at: Date.now() });
      replace(hit.worker);
      log(
        `[schedules] kill ${k + 1}/${options.kills}: ${kind} ${hit.line.schedule} ${hit.line.fireAt}`,
      );
    }
    // The last kill's backlog is caught up; then no more fires, and every fire's job is given
    // time to finish.
    await sleep(4000);
    tell({ passes: false });
    await sleep(1000);
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${schema}.jobs WHERE status <> 'succeeded'`,
      );
      if (rows[0]!.n === 0) break;
      await sleep(500);
    }
    for (const w of fleet) w.child.kill('SIGTERM');
    const stopping = fleet.map((w) => w.exited);
    const force = setTimeout(() => {
      for (const w of fleet) void kill(w);
    }, 15_000);
    await Promise.all(stopping);
    clearTimeout(force);

    return await verify();
  } finally {
    for (const w of fleet) await kill(w);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.end();
  }

  async function verify(): Promise<ScheduleChaosReport> {
    const violations: string[] = [];
    const { rows } = await admin.query<{ key: string; status: string; n: number }>(
      `SELECT idempotency_key AS key, min(status) AS status, count(*)::int AS n
         FROM ${schema}.jobs WHERE idempotency_key LIKE 'schedule:%' GROUP BY 1`,
    );
    const report: ScheduleChaosReport = {
      kills: kills.length,
      killsBy: { created: 0, submitted: 0, 'catch-up': 0, between: 0 },
      missedPoints,
      schedules: {},
      lost: 0,
      doubled: 0,
      notRun: 0,
      resumedAfterKill: 0,
      violations,
      durationMs: 0,
    };
    for (const k of kills) report.killsBy[k.kind]++;
    for (const { name, periodMs } of SCHEDULES) {
      const prefix = `schedule:${name}:`;
      const jobs = rows.filter((r) => r.key.startsWith(prefix));
      const times = jobs.map((r) => Date.parse(r.key.slice(prefix.length))).sort((a, b) => a - b);
      for (let i = 1; i < times.length; i++) {
        const gap = Math.round((times[i]! - times[i - 1]!) / periodMs) - 1;
        if (gap > 0) {
          report.lost += gap;
          violations.push(
            `${name}: ${gap} fire(s) lost after ${new Date(times[i - 1]!).toISOString()}`,
          );
        }
      }
      for (const j of jobs) {
        if (j.n > 1) {
          report.doubled++;
          violations.push(`${name}: ${j.n} jobs for ${j.key}`);
        }
        if (j.status !== 'succeeded') {
          report.notRun++;
          violations.push(`${name}: the job of ${j.key} is ${j.status}`);
        }
      }
      const mine = submits.filter((f) => f.key.startsWith(prefix));
      const created = mine.filter((f) => f.created).map((f) => f.key);
      const twice = created.length - new Set(created).size;
      if (twice > 0) {
        report.doubled += twice;
        violations.push(`${name}: ${twice} fire(s) whose job two processes created`);
      }
      report.schedules[name] = {
        fires: times.length,
        created: created.length,
        resubmitted: mine.length - created.length,
      };
      if (times.length < 2) violations.push(`${name}: only ${times.length} fire(s)`);
    }
    for (const k of kills) {
      if (k.kind !== 'created' && k.kind !== 'submitted') continue;
      const key = `schedule:${k.schedule}:${k.fireAt}`;
      if (!rows.some((r) => r.key === key)) violations.push(`killed fire ${key} has no job`);
      // Its pass never finished: a later evaluator re-submitted it (the job existed).
      const later = submits.find((s) => s.key === key && s.at >= k.at && !s.created);
      if (later) report.resumedAfterKill++;
      else violations.push(`killed fire ${key} was not re-submitted after the kill`);
    }
    report.durationMs = Date.now() - started;
    return report;
  }
}
