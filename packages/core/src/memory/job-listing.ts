/**
 * Job filters and keyset cursors of the memory store's `listJobs` and `purgeJobs`.
 * @module
 */
import { ValidationError } from '../errors.js';
import { FINISHED_STATUSES } from '../operations/statuses.js';
import type { JobRecord, JobStatus, JobSummary, ListJobsFilter, PurgeFilter } from '../store.js';

/** Statuses a filter accepts (undefined: any). */
export function statusSet(
  status: JobStatus | readonly JobStatus[] | undefined,
): ReadonlySet<JobStatus> | undefined {
  if (status === undefined) return undefined;
  return new Set(typeof status === 'string' ? [status] : status);
}

/** True when `job` passes every field of `filter` but the cursor. */
export function matchesListFilter(job: JobRecord, filter: ListJobsFilter): boolean {
  const statuses = statusSet(filter.status);
  if (statuses && !statuses.has(job.status)) return false;
  if (filter.name !== undefined && job.name !== filter.name) return false;
  if (filter.transport !== undefined && job.transport !== filter.transport) return false;
  if (filter.priority !== undefined && (job.priority ?? 'normal') !== filter.priority) return false;
  if (filter.createdAfter && job.createdAt < filter.createdAfter) return false;
  if (filter.createdBefore && job.createdAt >= filter.createdBefore) return false;
  return true;
}

/** True when `job` is terminal, finished before the cutoff and passes the filter. */
export function matchesPurgeFilter(job: JobRecord, filter: PurgeFilter): boolean {
  const statuses = statusSet(filter.status) ?? FINISHED_STATUSES;
  if (!FINISHED_STATUSES.has(job.status) || !statuses.has(job.status)) return false;
  if (!job.finishedAt || job.finishedAt >= filter.finishedBefore) return false;
  return filter.name === undefined || job.name === filter.name;
}

/** Newest first: created at descending, then id descending. */
export function newestFirst(a: JobRecord, b: JobRecord): number {
  const byTime = b.createdAt.getTime() - a.createdAt.getTime();
  if (byTime !== 0) return byTime;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export function encodeJobCursor(job: JobRecord): string {
  return Buffer.from(`${job.createdAt.getTime()}:${job.id}`).toString('base64url');
}

/**
 * The (created at, id) position a cursor names.
 * @throws ValidationError naming `cursor` when it is not one `listJobs` returned.
 */
export function decodeJobCursor(cursor: string): { createdAt: number; id: string } {
  const match = /^(\d{1,15}):(.+)$/s.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match)
    throw new ValidationError('cursor is malformed', [
      { path: 'cursor', message: 'not a cursor from listJobs' },
    ]);
  return { createdAt: Number(match[1]), id: match[2]! };
}

/** True when `job` comes after the cursor position in newest-first order. */
export function isAfterCursor(job: JobRecord, at: { createdAt: number; id: string }): boolean {
  const t = job.createdAt.getTime();
  return t < at.createdAt || (t === at.createdAt && job.id < at.id);
}

/** The summary `listJobs` returns for a job record. */
export function toSummary(job: JobRecord): JobSummary {
  return {
    id: job.id,
    name: job.name,
    status: job.status,
    transport: job.transport,
    ...(job.priority === undefined ? {} : { priority: job.priority }),
    createdAt: job.createdAt,
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
    ...(job.currentStage >= 0 ? { currentStage: job.currentStage } : {}),
    ...(job.error ? { error: job.error } : {}),
  };
}
