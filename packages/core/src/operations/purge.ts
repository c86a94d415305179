/**
 * Deleting finished jobs: on demand ({@link purgeJobs}) and by retention ({@link retentionPass},
 * run by the reconciler under its lease). Both delete in the store's small batches with a pause
 * between them, so a purge never holds long locks nor crowds out running jobs.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { PurgeFilter, Store } from '../store.js';
import { type Duration, parseDuration } from './duration.js';

/** How long finished jobs are kept, per final status; a status left out is kept for ever. */
export interface RetentionOptions {
  succeeded?: Duration;
  failed?: Duration;
  cancelled?: Duration;
}

/** Pacing of a purge. */
export interface PurgePacing {
  /** Jobs per store batch. @defaultValue 100 */
  batchJobs?: number;
  /** Task rows per store batch. @defaultValue 5000 */
  batchTasks?: number;
  /** Pause between batches, milliseconds. @defaultValue 20 */
  pauseMs?: number;
  /** Stops between batches. */
  signal?: AbortSignal;
}

export interface PurgeTotals {
  jobs: number;
  tasks: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Deletes every finished job matching `filter` (up to `filter.limit` jobs), batch by batch.
 * @throws ValidationError when `finishedBefore` is not a valid date.
 */
export async function purgeJobs(
  store: Pick<Store, 'purgeJobs'>,
  filter: PurgeFilter,
  pacing: PurgePacing & { maxBatches?: number } = {},
): Promise<PurgeTotals & { more: boolean }> {
  if (!(filter.finishedBefore instanceof Date) || Number.isNaN(filter.finishedBefore.getTime()))
    throw new ValidationError('finishedBefore must be a date', [
      { path: 'finishedBefore', message: 'expected a valid date' },
    ]);
  const totals = { jobs: 0, tasks: 0, more: true };
  const limit = filter.limit ?? Number.POSITIVE_INFINITY;
  const maxBatches = pacing.maxBatches ?? Number.POSITIVE_INFINITY;
  for (let batches = 0; totals.more && totals.jobs < limit && batches < maxBatches; batches++) {
    if (pacing.signal?.aborted) break;
    if (batches > 0) await sleep(pacing.pauseMs ?? 20);
    const batch = await store.purgeJobs(filter, {
      jobs: Math.min(pacing.batchJobs ?? 100, limit - totals.jobs),
      tasks: pacing.batchTasks ?? 5000,
    });
    totals.jobs += batch.jobs;
    totals.tasks += batch.tasks;
    totals.more = batch.more;
  }
  return totals;
}

/** Retention in milliseconds per status, validated. */
export function resolveRetention(
  retention: RetentionOptions,
): Partial<Record<keyof RetentionOptions, number>> {
  const out: Partial<Record<keyof RetentionOptions, number>> = {};
  for (const status of ['succeeded', 'failed', 'cancelled'] as const) {
    const value = retention[status];
    if (value !== undefined) out[status] = parseDuration(value, `retention.${status}`);
  }
  return out;
}

/**
 * One retention pass: purges jobs finished longer ago than their status's retention, at most
 * `maxBatches` store batches per status (the rest waits for the next pass, so a pass stays within
 * the reconciler's lease).
 */
export async function retentionPass(
  store: Pick<Store, 'purgeJobs'>,
  retention: Partial<Record<keyof RetentionOptions, number>>,
  pacing: PurgePacing & { maxBatches?: number; now?: Date } = {},
): Promise<PurgeTotals> {
  const now = (pacing.now ?? new Date()).getTime();
  const totals = { jobs: 0, tasks: 0 };
  for (const status of ['succeeded', 'failed', 'cancelled'] as const) {
    const keepMs = retention[status];
    if (keepMs === undefined) continue;
    const done = await purgeJobs(
      store,
      { status, finishedBefore: new Date(now - keepMs) },
      { maxBatches: 10, ...pacing },
    );
    totals.jobs += done.jobs;
    totals.tasks += done.tasks;
  }
  return totals;
}
