/**
 * The contention run: several worker processes with the engine's defaults on the Postgres path
 * (store and queue), several large jobs at once, nothing killed and no failure injected, repeated.
 * Each run has a database of its own; it must end with every job exact, no deadlock counted by the
 * server, no worker error naming one, and exactly one recorded attempt — and one handler run — per
 * task.
 * @module
 */
import pg from 'pg';
import { Fleet, prepare, waitDrained, waitTerminal } from './harness.js';
import { CHAOS_JOB } from './job.js';
import { startPath } from './paths.js';
import { type SubmittedJob, verify } from './verify.js';

export interface ContentionOptions {
  /** Repetitions. @defaultValue 20 */
  runs?: number;
  /** Worker processes. @defaultValue 3 */
  workers?: number;
  /** Jobs submitted at once per run. @defaultValue 3 */
  jobs?: number;
  /** First-stage tasks per job (the chaos job runs n, n and n/10). @defaultValue 5000 */
  n?: number;
  /** `batching.packTasks` of the workers. @defaultValue the transport's recommendation (64) */
  packTasks?: number;
  log?: (line: string) => void;
}

export interface ContentionRun {
  run: number;
  tasks: number;
  durationMs: number;
  deadlocks: number;
  conflictLogs: number;
  retriedTasks: number;
  attemptsBeyondRuns: number;
  violations: string[];
}

export interface ContentionReport {
  runs: number;
  workers: number;
  jobsPerRun: number;
  tasks: number;
  deadlocks: number;
  conflictLogs: number;
  retriedTasks: number;
  attemptsBeyondRuns: number;
  violations: number;
  lost: number;
  durationMs: number;
  perRun: ContentionRun[];
}

export async function runContention(options: ContentionOptions = {}): Promise<ContentionReport> {
  const log = options.log ?? (() => {});
  const runs = options.runs ?? 20;
  const workers = options.workers ?? 3;
  const jobsPerRun = options.jobs ?? 3;
  const n = options.n ?? 5000;
  const started = Date.now();
  const report: ContentionReport = {
    runs: 0,
    workers,
    jobsPerRun,
    tasks: 0,
    deadlocks: 0,
    conflictLogs: 0,
    retriedTasks: 0,
    attemptsBeyondRuns: 0,
    violations: 0,
    lost: 0,
    durationMs: 0,
    perRun: [],
  };
  for (let run = 1; run <= runs; run++) {
    const runStarted = Date.now();
    const service = await startPath('postgres');
    const admin = new pg.Pool({ connectionString: service.env.databaseUrl, max: 2 });
    // An ended pool's sessions close after end() resolves; a late server-side end is no error.
    admin.on('error', () => {});
    let fleet: Fleet | undefined;
    try {
      const submitter = await prepare(service, admin);
      const before = await service.deadlocks();
      fleet = new Fleet({
        service,
        workers,
        lingerMs: 0,
        engineDefaults: true,
        ...(options.packTasks === undefined ? {} : { packTasks: options.packTasks }),
      });
      await fleet.ready();
      const jobs: SubmittedJob[] = [];
      for (let j = 0; j < jobsPerRun; j++) {
        const params = { n, seed: run * 100 + j, chunk: 10, maxWorkMs: 0, failEvery: 0 };
        const { jobId } = await submitter.submit(CHAOS_JOB, params);
        jobs.push({ jobId, params });
      }
      const done = await waitTerminal(
        submitter,
        jobs.map((j) => j.jobId),
        600_000,
      );
      const depth = await waitDrained(service, done ? 60_000 : 1000);
      const stderr = fleet.slots.map((w) => `${w.name}: ${w.stderr.slice(-5).join(' | ')}`);
      await fleet.stop();
      const conflictLogs = fleet.conflictLogs();
      fleet = undefined;
      await submitter.close();
      const verdict = await verify(admin, service.env.schema, jobs, depth, {
        strict: true,
        strictAttempts: true,
        singleAttempt: true,
      });
      await admin.end();
      const deadlocks = (await service.deadlocks({ settled: true })) - before;
      const violations = [...verdict.violations];
      if (!done) violations.push('jobs did not finish within 600 s');
      if (deadlocks > 0)
        violations.push(`${deadlocks} deadlock(s) counted by the server (pg_stat_database)`);
      if (conflictLogs > 0)
        violations.push(
          `${conflictLogs} worker error line(s) name a deadlock or serialization failure`,
        );
      const result: ContentionRun = {
        run,
        tasks: verdict.tasks,
        durationMs: Date.now() - runStarted,
        deadlocks,
        conflictLogs,
        retriedTasks: verdict.retriedTasks,
        attemptsBeyondRuns: verdict.attemptsBeyondRuns,
        violations,
      };
      if (violations.length > 0) for (const line of stderr) log(`[contention] ${line}`);
      report.perRun.push(result);
      report.runs++;
      report.tasks += verdict.tasks;
      report.deadlocks += deadlocks;
      report.conflictLogs += conflictLogs;
      report.retriedTasks += verdict.retriedTasks;
      report.attemptsBeyondRuns += verdict.attemptsBeyondRuns;
      report.violations += violations.length;
      report.lost += verdict.lost;
      log(
        `[contention] run ${run}: ${verdict.tasks} tasks in ${(result.durationMs / 1000).toFixed(1)} s, deadlocks ${deadlocks}, tasks with attempts > 1: ${verdict.retriedTasks}, violations ${violations.length}${violations.length ? ` (${violations.slice(0, 3).join('; ')})` : ''}`,
      );
    } finally {
      await fleet?.stop();
      await admin.end().catch(() => {});
      await service.close();
    }
  }
  report.durationMs = Date.now() - started;
  return report;
}
