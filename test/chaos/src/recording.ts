/**
 * A store wrapper that records, in tables of its own, what only the engine's callers can see: which
 * `startStage` call advanced, which `completeTasks` call applied a task, which call completed a
 * stage. Each is counted per key afterwards: more than one is an invariant violation. It can also
 * announce these moments (for the harness to kill the worker right there) and linger a little.
 * @module
 */
import type { Store } from '@switchyard/core/driver';
import type pg from 'pg';
import type { ChaosResult, FinalizeEffect, RunRecord } from './job.js';

/** The chaos tables, in the store's schema. */
export function chaosTablesSql(schema: string): string {
  const s = `"${schema}"`;
  return `
    CREATE SCHEMA IF NOT EXISTS ${s};
    CREATE TABLE IF NOT EXISTS ${s}.chaos_finalized (job_id text PRIMARY KEY, result json NOT NULL, worker text);
    CREATE TABLE IF NOT EXISTS ${s}.chaos_finalize_calls (job_id text NOT NULL, worker text);
    CREATE TABLE IF NOT EXISTS ${s}.chaos_advances (job_id text NOT NULL, stage int NOT NULL, worker text);
    CREATE TABLE IF NOT EXISTS ${s}.chaos_applied (task_id text NOT NULL, job_id text NOT NULL, worker text);
    CREATE TABLE IF NOT EXISTS ${s}.chaos_completions (job_id text NOT NULL, stage int NOT NULL, via text NOT NULL, worker text);
    CREATE TABLE IF NOT EXISTS ${s}.chaos_runs (task_id text NOT NULL, job_id text NOT NULL, attempt int NOT NULL, worker text,
      run_id text, key text, started_at bigint, ended_at bigint);
    CREATE INDEX IF NOT EXISTS chaos_runs_job ON ${s}.chaos_runs (job_id);
    CREATE INDEX IF NOT EXISTS chaos_runs_run ON ${s}.chaos_runs (run_id) WHERE run_id IS NOT NULL;
    CREATE TABLE IF NOT EXISTS ${s}.chaos_admissions (task_id text NOT NULL, job_id text NOT NULL, key text NOT NULL, asked_at bigint NOT NULL, answered_at bigint NOT NULL, worker text);
    CREATE TABLE IF NOT EXISTS ${s}.chaos_healed (job_id text PRIMARY KEY);
  `;
}

/** A moment worth killing a worker at. */
export type ChaosEvent =
  | { ev: 'fanout'; jobId: string; stage: number; first: number }
  | { ev: 'advanced'; jobId: string; stage: number }
  | { ev: 'stage-complete'; jobId: string; stage: number };

export interface RecordingOptions {
  pool: pg.Pool;
  schema: string;
  worker: string;
  /** Called at each {@link ChaosEvent}; the store call waits for it (the kill window). */
  onEvent?: (event: ChaosEvent) => Promise<void> | void;
}

export function finalizeEffect(pool: pg.Pool, schema: string, worker: string): FinalizeEffect {
  return {
    async finalized(jobId: string, result: ChaosResult) {
      // One statement: the call is counted and the effect is applied once per job.
      await pool.query(
        `WITH call AS (INSERT INTO "${schema}".chaos_finalize_calls (job_id, worker) VALUES ($1, $3))
         INSERT INTO "${schema}".chaos_finalized (job_id, result, worker) VALUES ($1, $2, $3)
         ON CONFLICT (job_id) DO NOTHING`,
        [jobId, JSON.stringify(result), worker],
      );
    },
    ran: grouped(async (runs: RunRecord[]) => {
      await pool.query(
        `INSERT INTO "${schema}".chaos_runs (task_id, job_id, attempt, worker, run_id, key, started_at)
         SELECT t, j, a, $4, r, k, s
           FROM unnest($1::text[], $2::text[], $3::int[], $5::text[], $6::text[], $7::bigint[])
             AS x(t, j, a, r, k, s)`,
        [
          runs.map((r) => r.taskId),
          runs.map((r) => r.jobId),
          runs.map((r) => r.attempt),
          worker,
          runs.map((r) => r.runId ?? null),
          runs.map((r) => r.key ?? null),
          runs.map((r) => r.startedAt ?? null),
        ],
      );
    }),
    ended: grouped(async (ends: { runId: string; endedAt: number }[]) => {
      await pool.query(
        `UPDATE "${schema}".chaos_runs c SET ended_at = x.e
           FROM unnest($1::text[], $2::bigint[]) AS x(r, e) WHERE c.run_id = x.r`,
        [ends.map((e) => e.runId), ends.map((e) => e.endedAt)],
      );
    }),
    healed: healedReader(pool, schema),
  };
}

/** Reads `chaos_healed`; a job once healed stays healed, so a yes is remembered. */
function healedReader(pool: pg.Pool, schema: string): (jobId: string) => Promise<boolean> {
  const healed = new Set<string>();
  return async (jobId) => {
    if (healed.has(jobId)) return true;
    const { rowCount } = await pool.query(
      `SELECT 1 FROM "${schema}".chaos_healed WHERE job_id = $1`,
      [jobId],
    );
    if (rowCount) healed.add(jobId);
    return Boolean(rowCount);
  };
}

/**
 * Records written in groups (one statement carries every record that arrived while the previous
 * one was in flight); each record's promise settles with the statement that carries it, so a
 * handler never works on an unrecorded run. A failed statement is tried again: a run lost here
 * would look like an attempt no handler made.
 */
function grouped<T>(write: (items: T[]) => Promise<void>): (item: T) => Promise<void> {
  let pending: { item: T; done: (err?: unknown) => void }[] = [];
  let flushing = false;
  const attempt = async (items: T[]) => {
    for (let n = 1; ; n++) {
      try {
        return await write(items);
      } catch (err) {
        if (n >= 10) throw err;
        await new Promise((r) => setTimeout(r, 100 * n));
      }
    }
  };
  const flush = async () => {
    flushing = true;
    while (pending.length > 0) {
      const group = pending;
      pending = [];
      try {
        await attempt(group.map((g) => g.item));
        for (const g of group) g.done();
      } catch (err) {
        for (const g of group) g.done(err);
      }
    }
    flushing = false;
  };
  return (item) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ item, done: (err) => (err ? reject(err) : resolve()) });
      if (!flushing) void flush();
    });
}

/**
 * Every admission the store granted, bracketed by when it was asked and answered (this
 * machine's clock, which the local database shares): the window check needs no handler timing.
 * Not waited on by the task (its start must not move); a killed worker loses its last few.
 */
function admissionRecorder(pool: pg.Pool, schema: string, worker: string) {
  return grouped(
    async (
      rows: { taskId: string; jobId: string; key: string; asked: number; answered: number }[],
    ) => {
      await pool.query(
        `INSERT INTO "${schema}".chaos_admissions (task_id, job_id, key, asked_at, answered_at, worker)
       SELECT t, j, k, a, b, $6
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS x(t, j, k, a, b)`,
        [
          rows.map((r) => r.taskId),
          rows.map((r) => r.jobId),
          rows.map((r) => r.key),
          rows.map((r) => r.asked),
          rows.map((r) => r.answered),
          worker,
        ],
      );
    },
  );
}

export function recordingStore(inner: Store, options: RecordingOptions): Store {
  const { pool, worker } = options;
  const t = (name: string) => `"${options.schema}".${name}`;
  const emit = async (event: ChaosEvent) => {
    await options.onEvent?.(event);
  };
  const recordCompletions = async (list: { jobId: string; stage: number }[], via: string) => {
    if (list.length === 0) return;
    await pool.query(
      `INSERT INTO ${t('chaos_completions')} (job_id, stage, via, worker)
       SELECT j, s, $3, $4 FROM unnest($1::text[], $2::int[]) AS x(j, s)`,
      [list.map((c) => c.jobId), list.map((c) => c.stage), via, worker],
    );
    for (const c of list) await emit({ ev: 'stage-complete', jobId: c.jobId, stage: c.stage });
  };
  const admitted = admissionRecorder(pool, options.schema, worker);
  const wrapped: Partial<Store> = {
    async admitTask(admission) {
      const asked = Date.now();
      const decision = await inner.admitTask!(admission);
      if (decision.outcome === 'admitted' && admission.rate) {
        const key = `${admission.rate.scope}/${admission.rate.key}`;
        const row = { taskId: admission.taskId, jobId: admission.jobId, key, asked };
        void admitted({ ...row, answered: Date.now() }).catch(() => {});
      }
      return decision;
    },
    async startStage(jobId, stage, stageName) {
      const result = await inner.startStage(jobId, stage, stageName);
      if (result.advanced) {
        await pool.query(
          `INSERT INTO ${t('chaos_advances')} (job_id, stage, worker) VALUES ($1, $2, $3)`,
          [jobId, stage, worker],
        );
        await emit({ ev: 'advanced', jobId, stage });
      }
      return result;
    },
    async insertTasks(jobId, stage, tasks) {
      await emit({ ev: 'fanout', jobId, stage, first: tasks[0]?.index ?? 0 });
      return inner.insertTasks(jobId, stage, tasks);
    },
    async sealStage(jobId, stage, total) {
      const completion = await inner.sealStage(jobId, stage, total);
      if (completion) await recordCompletions([completion], 'seal');
      return completion;
    },
    async completeTasks(outcomes) {
      const result = await inner.completeTasks(outcomes);
      if (result.applied.length > 0) {
        const jobOf = new Map(outcomes.map((o) => [o.taskId, o.jobId]));
        await pool.query(
          `INSERT INTO ${t('chaos_applied')} (task_id, job_id, worker)
           SELECT id, j, $3 FROM unnest($1::text[], $2::text[]) AS x(id, j)`,
          [result.applied, result.applied.map((id) => jobOf.get(id) ?? ''), worker],
        );
      }
      await recordCompletions(result.completedStages, 'barrier');
      return result;
    },
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const own = wrapped[prop as keyof Store];
      if (own) return own;
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}
