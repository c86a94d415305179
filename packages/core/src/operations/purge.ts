/**
 * Deleting finished jobs: on demand ({@link purgeJobs}) and by retention ({@link retentionPass},
 * run by the reconciler under its lease). Both delete in the store's small batches with a pause
 * between them, so a purge never holds long locks nor crowds out running jobs.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { PurgeFilter, Store } from '../store.js';
import { type Duration, parseDuration } from './duration.js';
import { checkInstants, INSTANT_RANGE } from './instant.js';
import { FINISHED_JOB_STATUSES } from './statuses.js';

/**
 * How long finished jobs are kept, per final status, counted from when the job finished; a status
 * left out is kept for ever. A {@link Duration}: `'7d'`, `'12h'`, or milliseconds.
 */
export interface RetentionOptions {
  /** How long a succeeded job is kept after it finished. @defaultValue kept for ever */
  succeeded?: Duration;
  /** How long a failed job is kept after it finished (it can be retried until then). @defaultValue kept for ever */
  failed?: Duration;
  /** How long a cancelled job is kept after its cancel. @defaultValue kept for ever */
  cancelled?: Duration;
}

/** The statuses retention applies to, in the order a pass purges them. */
export const RETENTION_STATUSES = FINISHED_JOB_STATUSES;

/** Retention in milliseconds per status (a status absent: kept for ever). */
export type RetentionMs = Partial<Record<(typeof RETENTION_STATUSES)[number], number>>;

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
 * Deletes every finished job matching `filter` (up to `filter.limit` jobs), batch by batch, until
 * none is left, `maxBatches` batches were made or `signal` aborts.
 * @throws ValidationError when `finishedBefore` is not a valid date of the years 0001-9999.
 */
export async function purgeJobs(
  store: Pick<Store, 'purgeJobs'>,
  filter: PurgeFilter,
  pacing: PurgePacing & { maxBatches?: number } = {},
): Promise<PurgeTotals & { more: boolean; batches: number }> {
  if (filter.finishedBefore === undefined)
    throw new ValidationError('finishedBefore must be a date', [
      { path: 'finishedBefore', message: 'expected a valid date' },
    ]);
  checkInstants({ finishedBefore: filter.finishedBefore });
  const totals = { jobs: 0, tasks: 0, more: true, batches: 0 };
  const limit = filter.limit ?? Number.POSITIVE_INFINITY;
  const maxBatches = pacing.maxBatches ?? Number.POSITIVE_INFINITY;
  while (totals.more && totals.jobs < limit && totals.batches < maxBatches) {
    if (pacing.signal?.aborted) break;
    if (totals.batches > 0) await sleep(pacing.pauseMs ?? 20);
    const batch = await store.purgeJobs(filter, {
      jobs: Math.min(pacing.batchJobs ?? 100, limit - totals.jobs),
      tasks: pacing.batchTasks ?? 5000,
    });
    totals.batches++;
    totals.jobs += batch.jobs;
    totals.tasks += batch.tasks;
    totals.more = batch.more;
  }
  return totals;
}

/**
 * Retention in milliseconds per status.
 * @throws ValidationError naming the field (`retention.failed: …`) for a value that is not a
 * duration, or a key that is not a final status.
 */
export function resolveRetention(retention: RetentionOptions): RetentionMs {
  if (typeof retention !== 'object' || retention === null || Array.isArray(retention))
    invalid('retention', "expected an object such as { succeeded: '7d', failed: '30d' }");
  for (const key of Object.keys(retention))
    if (!(RETENTION_STATUSES as readonly string[]).includes(key))
      invalid(`retention.${key}`, `not a final status (${RETENTION_STATUSES.join(', ')})`);
  const out: RetentionMs = {};
  for (const status of RETENTION_STATUSES) {
    const value = retention[status];
    if (value !== undefined) out[status] = parseDuration(value, `retention.${status}`);
  }
  return out;
}

/**
 * One retention pass: purges jobs finished longer ago than their status's retention, at most
 * `maxBatches` store batches in all (the rest waits for the next pass) and none started after
 * `signal` aborts, so the pass's work is bounded whatever the backlog.
 */
export async function retentionPass(
  store: Pick<Store, 'purgeJobs'>,
  retention: RetentionMs,
  pacing: PurgePacing & { maxBatches?: number; now?: Date } = {},
): Promise<PurgeTotals> {
  const now = (pacing.now ?? new Date()).getTime();
  const totals = { jobs: 0, tasks: 0 };
  let batchesLeft = pacing.maxBatches ?? 10;
  for (const status of RETENTION_STATUSES) {
    const keepMs = retention[status];
    if (keepMs === undefined) continue;
    if (batchesLeft <= 0 || pacing.signal?.aborted) break;
    // A retention longer than the calendar reaches back keeps every job: nothing to purge.
    if (now - keepMs < INSTANT_RANGE.firstMs) continue;
    const done = await purgeJobs(
      store,
      { status, finishedBefore: new Date(now - keepMs) },
      { ...pacing, maxBatches: batchesLeft },
    );
    batchesLeft -= done.batches;
    totals.jobs += done.jobs;
    totals.tasks += done.tasks;
  }
  return totals;
}

function invalid(field: string, message: string): never {
  throw new ValidationError(`${field}: ${message}`, [{ path: field, message }]);
}
