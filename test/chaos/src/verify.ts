/**
 * The invariant checks, read from the store's tables, the chaos tables and the queues.
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import { type ChaosParams, expectedResults } from './job.js';
import type { QueueDepth } from './paths.js';

export interface SubmittedJob {
  jobId: string;
  params: Pick<ChaosParams, 'n' | 'seed'> & { chunk?: number };
  /**
   * Each `retry` that re-opened tasks of the job: the stage and the tasks. A re-opened task may be
   * applied once more, and its stage completed once more, per retry.
   */
  reopened?: { stage: number; taskIds: readonly string[] }[];
  /** Submitted as the job without finalize: it succeeds with no result and no finalize effect. */
  plain?: boolean;
}

export interface Verdict {
  jobs: number;
  /** Of them, jobs without finalize (finished by their last stage's completion). */
  plainJobs: number;
  tasks: number;
  /** Invariant violations, one line each (must be empty). */
  violations: string[];
  /** Jobs not succeeded and tasks without a recorded result: work that was lost. */
  lost: number;
  /** finalize calls (more than one per job is allowed: the effect must still apply once). */
  finalizeCalls: number;
  /**
   * Applies / advances the engine made that the recorder missed because the worker died between the
   * store call and the record (not violations; with `strict` they are).
   */
  unrecorded: number;
  /**
   * Tasks whose recorded `attempts` exceed the handler runs recorded for them: an attempt counted
   * that no handler made (a violation with `strictAttempts`; a kill between a claim and the
   * handler's start explains it otherwise).
   */
  attemptsBeyondRuns: number;
  /** Tasks with more than one recorded attempt. */
  retriedTasks: number;
  depth: QueueDepth;
}

const STAGES = 3;

/**
 * Checks every job: succeeded with the crash-free result; per stage the expected tasks, each
 * succeeded with the expected result and applied once; each stage advanced once and completed
 * once; the finalize effect once (none for a job without finalize); queues empty and no
 * dead-letters (unless `expectedDeadLetters`).
 */
export async function verify(
  pool: pg.Pool,
  schema: string,
  jobs: readonly SubmittedJob[],
  depth: QueueDepth,
  options: {
    strict?: boolean;
    expectedDeadLetters?: number;
    /** Attempts above the recorded handler runs are violations (no kill can explain them). */
    strictAttempts?: boolean;
    /** Every task must have exactly one attempt (no failures were injected, nothing killed). */
    singleAttempt?: boolean;
  } = {},
): Promise<Verdict> {
  const t = (name: string) => `"${schema}".${name}`;
  const violations: string[] = [];
  let lost = 0;
  let tasks = 0;
  let unrecorded = 0;
  let finalizeCalls = 0;
  let attemptsBeyondRuns = 0;
  let retriedTasks = 0;
  for (const { jobId, params, reopened = [], plain = false } of jobs) {
    const reopenedTask = (id: string) => reopened.filter((r) => r.taskIds.includes(id)).length;
    const reopenedStage = (s: number) => reopened.filter((r) => r.stage === s).length;
    const counted = (
      await pool.query<{ stage: number; idx: number; attempts: number; runs: number }>(
        `SELECT t.stage, t.idx, t.attempts, coalesce(r.n, 0)::int AS runs
           FROM ${t('tasks')} t
           LEFT JOIN (SELECT task_id, count(*) AS n FROM ${t('chaos_runs')} WHERE job_id = $1 GROUP BY task_id) r
             ON r.task_id = t.job_id || '.' || t.stage || '.' || t.idx
          WHERE t.job_id = $1 AND (t.attempts > coalesce(r.n, 0) OR t.attempts > 1)`,
        [jobId],
      )
    ).rows;
    for (const c of counted) {
      const id = `${jobId}.${c.stage}.${c.idx}`;
      if (c.attempts > 1) retriedTasks++;
      if (c.attempts > c.runs) {
        attemptsBeyondRuns++;
        if (options.strictAttempts)
          violations.push(`${id}: ${c.attempts} attempts recorded, ${c.runs} handler run(s)`);
      }
      if (options.singleAttempt && c.attempts > 1)
        violations.push(`${id}: ${c.attempts} attempts, want 1 (no failure injected)`);
    }
    const expected = expectedResults(params);
    const job = (
      await pool.query<{ status: string; result: unknown; error: unknown }>(
        `SELECT status, result, error FROM ${t('jobs')} WHERE id = $1`,
        [jobId],
      )
    ).rows[0];
    if (job?.status !== 'succeeded') {
      violations.push(
        `${jobId}: job ${job?.status ?? 'missing'} ${job?.error ? JSON.stringify(job.error) : ''}`,
      );
      lost++;
      continue;
    }
    const wantResult = plain ? null : expected.result;
    if (!isDeepStrictEqual(job.result, wantResult))
      violations.push(
        `${jobId}: result ${JSON.stringify(job.result)} != crash-free ${JSON.stringify(wantResult)}`,
      );
    const stages = (
      await pool.query<{
        idx: number;
        status: string;
        total: number;
        succeeded: number;
        failed: number;
      }>(
        `SELECT idx, status, total, succeeded, failed FROM ${t('stages')} WHERE job_id = $1 ORDER BY idx`,
        [jobId],
      )
    ).rows;
    const rows = (
      await pool.query<{ stage: number; idx: number; status: string; result: unknown }>(
        `SELECT stage, idx, status, result FROM ${t('tasks')} WHERE job_id = $1 ORDER BY stage, idx`,
        [jobId],
      )
    ).rows;
    const applied = new Map<string, number>();
    for (const r of (
      await pool.query<{ task_id: string; n: string }>(
        `SELECT task_id, count(*) AS n FROM ${t('chaos_applied')} WHERE job_id = $1 GROUP BY task_id`,
        [jobId],
      )
    ).rows)
      applied.set(r.task_id, Number(r.n));
    const perStage = async (table: string) => {
      const m = new Map<number, number>();
      for (const r of (
        await pool.query<{ stage: number; n: string }>(
          `SELECT stage, count(*) AS n FROM ${t(table)} WHERE job_id = $1 GROUP BY stage`,
          [jobId],
        )
      ).rows)
        m.set(r.stage, Number(r.n));
      return m;
    };
    const advances = await perStage('chaos_advances');
    const completions = await perStage('chaos_completions');
    for (let s = 0; s < STAGES; s++) {
      const want = expected.stages[s]!;
      const stage = stages[s];
      if (
        stage?.status !== 'complete' ||
        stage.total !== want.length ||
        stage.succeeded !== want.length ||
        stage.failed !== 0
      )
        violations.push(
          `${jobId}: stage ${s} counters ${JSON.stringify(stage)}, want ${want.length} succeeded`,
        );
      const got = rows.filter((r) => r.stage === s);
      if (got.length !== want.length)
        violations.push(`${jobId}: stage ${s} has ${got.length} task rows, want ${want.length}`);
      for (const [i, value] of want.entries()) {
        const row = got[i];
        const id = `${jobId}.${s}.${i}`;
        tasks++;
        if (row?.idx !== i || row.status !== 'succeeded' || !isDeepStrictEqual(row.result, value)) {
          violations.push(
            `${id}: ${row ? `${row.status} ${JSON.stringify(row.result)}` : 'missing'}, want ${value}`,
          );
          lost++;
        }
        const n = applied.get(id) ?? 0;
        if (n > 1 + reopenedTask(id))
          violations.push(
            `${id}: completion applied ${n} times (re-opened ${reopenedTask(id)} times)`,
          );
        if (n === 0) unrecorded++;
      }
      const adv = advances.get(s) ?? 0;
      if (adv > 1) violations.push(`${jobId}: stage ${s} advanced ${adv} times`);
      if (adv === 0) unrecorded++;
      const done = completions.get(s) ?? 0;
      if (done > 1 + reopenedStage(s))
        violations.push(
          `${jobId}: stage ${s} reported complete ${done} times (re-opened ${reopenedStage(s)} times)`,
        );
      if (done === 0) unrecorded++;
    }
    const fin = (
      await pool.query<{ result: unknown }>(
        `SELECT result FROM ${t('chaos_finalized')} WHERE job_id = $1`,
        [jobId],
      )
    ).rows;
    const finalizeOk = plain
      ? fin.length === 0
      : fin.length === 1 && isDeepStrictEqual(fin[0]?.result, expected.result);
    if (!finalizeOk) violations.push(`${jobId}: finalize effect ${JSON.stringify(fin)}`);
    finalizeCalls += Number(
      (
        await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${t('chaos_finalize_calls')} WHERE job_id = $1`,
          [jobId],
        )
      ).rows[0]?.n ?? 0,
    );
  }
  if (depth.pending > 0) violations.push(`${depth.pending} message(s) left in the queues`);
  if (depth.deadLettered !== (options.expectedDeadLetters ?? 0))
    violations.push(
      `${depth.deadLettered} dead-letter(s), expected ${options.expectedDeadLetters ?? 0}`,
    );
  if (options.strict && unrecorded > 0)
    violations.push(
      `${unrecorded} apply/advance/completion(s) never recorded (no crash to explain it)`,
    );
  return {
    jobs: jobs.length,
    plainJobs: jobs.filter((j) => j.plain).length,
    tasks,
    violations,
    lost,
    finalizeCalls,
    unrecorded,
    attemptsBeyondRuns,
    retriedTasks,
    depth,
  };
}

/** A job cancelled by the harness: when its `cancel` call returned. */
export interface CancelledJob {
  jobId: string;
  cancelledAt: number;
}

export interface CancelVerdict {
  violations: string[];
  /** Handler runs that started after the cancel returned (each within the bound, or a violation). */
  startsAfterCancel: number;
  /** The latest handler start after a cancel returned, ms after it (null: none started after). */
  latestStartAfterCancelMs: number | null;
  /** Cancelled jobs already deleted (retention), checked fully gone. */
  gone: number;
}

/**
 * Checks cancelled jobs: each is `cancelled` (or deleted, with nothing of it left); no handler of
 * it started later than `boundMs` after the cancel returned; no task was applied twice, no stage
 * advanced or completed twice, the finalize effect at most once.
 */
export async function verifyCancelled(
  pool: pg.Pool,
  schema: string,
  jobs: readonly CancelledJob[],
  boundMs: number,
): Promise<CancelVerdict> {
  const t = (name: string) => `"${schema}".${name}`;
  const verdict: CancelVerdict = {
    violations: [],
    startsAfterCancel: 0,
    latestStartAfterCancelMs: null,
    gone: 0,
  };
  for (const { jobId, cancelledAt } of jobs) {
    const job = (
      await pool.query<{ status: string }>(`SELECT status FROM ${t('jobs')} WHERE id = $1`, [jobId])
    ).rows[0];
    if (!job) {
      verdict.gone++;
      verdict.violations.push(...(await leftovers(pool, schema, [jobId])));
    } else if (job.status !== 'cancelled') {
      verdict.violations.push(`${jobId}: cancelled, but ${job.status}`);
    }
    const late = (
      await pool.query<{ task_id: string; started_at: string }>(
        `SELECT task_id, started_at FROM ${t('chaos_runs')}
          WHERE job_id = $1 AND started_at > $2 ORDER BY started_at`,
        [jobId, cancelledAt],
      )
    ).rows;
    verdict.startsAfterCancel += late.length;
    for (const run of late) {
      const after = Number(run.started_at) - cancelledAt;
      verdict.latestStartAfterCancelMs = Math.max(verdict.latestStartAfterCancelMs ?? 0, after);
      if (after > boundMs)
        verdict.violations.push(
          `${run.task_id}: started ${after} ms after its job's cancel returned (bound ${boundMs} ms)`,
        );
    }
    const twice = async (sql: string, what: string) => {
      for (const row of (await pool.query<{ k: string; n: string }>(sql, [jobId])).rows)
        verdict.violations.push(`${jobId}: ${what} ${row.k} ${row.n} times`);
    };
    await twice(
      `SELECT task_id AS k, count(*) AS n FROM ${t('chaos_applied')} WHERE job_id = $1 GROUP BY task_id HAVING count(*) > 1`,
      'completion applied to',
    );
    await twice(
      `SELECT stage::text AS k, count(*) AS n FROM ${t('chaos_advances')} WHERE job_id = $1 GROUP BY stage HAVING count(*) > 1`,
      'advanced into stage',
    );
    await twice(
      `SELECT stage::text AS k, count(*) AS n FROM ${t('chaos_completions')} WHERE job_id = $1 GROUP BY stage HAVING count(*) > 1`,
      'reported complete stage',
    );
    await twice(
      `SELECT job_id AS k, count(*) AS n FROM ${t('chaos_finalized')} WHERE job_id = $1 GROUP BY job_id HAVING count(*) > 1`,
      'finalize effect',
    );
  }
  return verdict;
}

/** Rows left of jobs that were deleted: any job, stage or task row is a violation. */
export async function leftovers(
  pool: pg.Pool,
  schema: string,
  jobIds: readonly string[],
): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const t = (name: string) => `"${schema}".${name}`;
  const { rows } = await pool.query<{
    job_id: string;
    jobs: string;
    stages: string;
    tasks: string;
  }>(
    `SELECT id AS job_id,
            (SELECT count(*) FROM ${t('jobs')} WHERE id = x.id) AS jobs,
            (SELECT count(*) FROM ${t('stages')} WHERE job_id = x.id) AS stages,
            (SELECT count(*) FROM ${t('tasks')} WHERE job_id = x.id) AS tasks
       FROM unnest($1::text[]) AS x(id)`,
    [jobIds],
  );
  return rows
    .filter((r) => Number(r.jobs) + Number(r.stages) + Number(r.tasks) > 0)
    .map(
      (r) =>
        `${r.job_id}: purged, but ${r.jobs} job, ${r.stages} stage and ${r.tasks} task row(s) left`,
    );
}
