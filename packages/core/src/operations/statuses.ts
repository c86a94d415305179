/**
 * Which job statuses each operation can act on: one list each, so the library, the HTTP API and
 * the CLI accept and refuse the same filters.
 * @module
 */
import type { JobStatus } from '../store.js';

/** Every job status, in a job's order of life. */
export const JOB_STATUSES: readonly JobStatus[] = [
  'scheduled',
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
];

/** A job's final statuses: what purge and retention delete. */
export const FINISHED_JOB_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;

/**
 * The same three as a set, for every check of "finished" in core — a task's final statuses are
 * these too (`TerminalTaskStatus`).
 */
export const FINISHED_STATUSES: ReadonlySet<string> = new Set(FINISHED_JOB_STATUSES);

/**
 * Statuses a bulk retry can act on: a finished job's failed tasks re-open, and a running job's
 * in its current stage (see `Store.reopenTasks`); any other status could never match.
 */
export const RETRYABLE_STATUSES: readonly JobStatus[] = ['failed', 'succeeded', 'running'];

/** Statuses a bulk cancel can act on: the jobs not finished yet (a delayed one included). */
export const CANCELLABLE_STATUSES: readonly JobStatus[] = ['scheduled', 'queued', 'running'];
