/**
 * Operating jobs: re-running failed ones, cancelling and purging by filter, retention, replay that
 * re-opens tasks, and the watch that carries a cancel to running handlers. The engine's
 * `retry`, `retryJobs`, `cancelJobs`, `purge` and dead-letter replay are built on these.
 * @module
 */

export { cancelJobs } from './cancel.js';
export {
  type Abortable,
  CancelWatch,
  type CancelWatchOptions,
  DEFAULT_CANCEL_CHECK_MS,
  deadlineExceededError,
  jobCancelledError,
  MIN_CANCEL_CHECK_MS,
} from './cancel-watch.js';
export { type Duration, type DurationUnit, parseDuration } from './duration.js';
export { eachJob } from './each-job.js';
export { INSTANT_RANGE, isStorableInstant, parseInstant } from './instant.js';
export {
  type PurgePacing,
  type PurgeTotals,
  purgeJobs,
  RETENTION_STATUSES,
  type RetentionMs,
  type RetentionOptions,
  resolveRetention,
  retentionPass,
} from './purge.js';
export { acceptForReplay, replayDeadLetters } from './replay.js';
export {
  type RetryDeps,
  type RetryOptions,
  type RetryResult,
  retryJob,
  retryJobs,
} from './retry.js';
export {
  CANCELLABLE_STATUSES,
  FINISHED_JOB_STATUSES,
  JOB_STATUSES,
  RETRYABLE_STATUSES,
} from './statuses.js';
