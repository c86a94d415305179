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
}

export interface Verdict {
  jobs: number;
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
 * once; the finalize effect once; queues empty and no dead-letters (unless `expectedDeadLetters`).
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
  for (const { jobId, params } of jobs) {
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
    if (!isDeepStrictEqual(job.result, expected.result))
      violations.push(
        `${jobId}: result ${JSON.stringify(job.result)} != crash-free ${JSON.stringify(expected.result)}`,
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
        if (n > 1) violations.push(`${id}: completion applied ${n} times`);
        if (n === 0) unrecorded++;
      }
      const adv = advances.get(s) ?? 0;
      if (adv > 1) violations.push(`${jobId}: stage ${s} advanced ${adv} times`);
      if (adv === 0) unrecorded++;
      const done = completions.get(s) ?? 0;
      if (done > 1) violations.push(`${jobId}: stage ${s} reported complete ${done} times`);
      if (done === 0) unrecorded++;
    }
    const fin = (
      await pool.query<{ result: unknown }>(
        `SELECT result FROM ${t('chaos_finalized')} WHERE job_id = $1`,
        [jobId],
      )
    ).rows;
    if (fin.length !== 1 || !isDeepStrictEqual(fin[0]?.result, expected.result))
      violations.push(`${jobId}: finalize effect ${JSON.stringify(fin)}`);
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
