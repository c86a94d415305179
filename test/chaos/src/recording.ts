/**
 * A store wrapper that records, in tables of its own, what only the engine's callers can see: which
 * `startStage` call advanced, which `completeTasks` call applied a task, which call completed a
 * stage. Each is counted per key afterwards: more than one is an invariant violation. It can also
 * announce these moments (for the harness to kill the worker right there) and linger a little.
 * @module
 */
import type { Store } from '@switchyard/core/driver';
import type pg from 'pg';
import type { ChaosResult, FinalizeEffect } from './job.js';

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
    CREATE TABLE IF NOT EXISTS ${s}.chaos_runs (task_id text NOT NULL, job_id text NOT NULL, attempt int NOT NULL, worker text, at bigint);
    CREATE INDEX IF NOT EXISTS chaos_runs_job ON ${s}.chaos_runs (job_id);
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
    ran: runRecorder(pool, schema, worker),
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

/** A handler run: which attempt of which task, and when it started (ms since the epoch). */
type Run = { jobId: string; taskId: string; attempt: number; at: number };

/**
 * Handler runs into `chaos_runs`, written in groups (one insert carries every run that arrived
 * while the previous one was in flight); each run's promise settles with the insert that carries
 * it, so a handler never works on an unrecorded run. A failed insert is tried again: a run lost
 * here would look like an attempt no handler made.
 */
function runRecorder(
  pool: pg.Pool,
  schema: string,
  worker: string,
): (run: Omit<Run, 'at'>) => Promise<void> {
  let pending: { run: Run; done: (err?: unknown) => void }[] = [];
  let flushing = false;
  const insert = async (runs: Run[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await pool.query(
          `INSERT INTO "${schema}".chaos_runs (task_id, job_id, attempt, worker, at)
           SELECT t, j, a, $4, at FROM unnest($1::text[], $2::text[], $3::int[], $5::bigint[]) AS x(t, j, a, at)`,
          [
            runs.map((r) => r.taskId),
            runs.map((r) => r.jobId),
            runs.map((r) => r.attempt),
            worker,
            runs.map((r) => r.at),
          ],
        );
        return;
      } catch (err) {
        if (attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  };
  const flush = async () => {
    flushing = true;
    while (pending.length > 0) {
      const group = pending;
      pending = [];
      try {
        await insert(group.map((g) => g.run));
        for (const g of group) g.done();
      } catch (err) {
        for (const g of group) g.done(err);
      }
    }
    flushing = false;
  };
  return (started) =>
    new Promise<void>((resolve, reject) => {
      const run = { ...started, at: Date.now() };
      pending.push({ run, done: (err) => (err ? reject(err) : resolve()) });
      if (!flushing) void flush();
    });
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
  const wrapped: Partial<Store> = {
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
