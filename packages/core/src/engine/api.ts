/** The `Switchyard` interface: what an application calls on a configured Switchyard. */
import type { JobDefinition, JobParams, TaskResult } from '../define.js';
import type { RetryOptions, RetryResult } from '../operations/retry.js';
import type {
  JobPage,
  ListJobsFilter,
  ListTasksOptions,
  PurgeFilter,
  Store,
  TaskPage,
} from '../store.js';
import type { QueueKind } from '../transport.js';
import type {
  HandleMeta,
  HandleSettlement,
  JobView,
  MetricsReport,
  ReconcileOptions,
  ReconcileResult,
  SubmitOptions,
  SubmitResult,
  WaitForOptions,
  WorkOptions,
} from './types.js';

export type AnyJob = JobDefinition<string, unknown, unknown>;
export type NamedJob = { readonly name: string };
/** The job definition registered under name N (any job when the names are not literal types). */
export type JobNamed<Jobs extends readonly NamedJob[], N> = [
  Extract<Jobs[number], { name: N }>,
] extends [never]
  ? Jobs[number]
  : Extract<Jobs[number], { name: N }>;

/** A configured Switchyard: submit jobs, run workers, handle serverless deliveries, report. */
export interface Switchyard<Jobs extends readonly NamedJob[] = readonly NamedJob[]> {
  /**
   * Validates params and creates the job (idempotent: the same name and params — or the same
   * `idempotencyKey` — return the existing job), then starts its first stage.
   * @throws {SwitchyardError} `UNKNOWN_JOB`, `UNKNOWN_TRANSPORT`, `INVALID_INPUT`, `NOT_SERIALIZABLE`
   */
  submit<N extends Jobs[number]['name']>(
    jobName: N,
    params: JobParams<JobNamed<Jobs, N>>,
    options?: SubmitOptions,
  ): Promise<SubmitResult>;
  /** The job's status, current stage, per-stage counts and timings; undefined if unknown. */
  getJob(jobId: string): Promise<JobView | undefined>;
  /** Streams succeeded task results of a job (one stage by name or index, or all), in task order. */
  results<O = unknown>(jobId: string, stage?: string | number): AsyncIterable<TaskResult<O>>;
  /** Cancels the job: no new task starts; true if it was cancelled by this call. */
  cancel(jobId: string): Promise<boolean>;
  /**
   * Pages through jobs newest first (keyset cursor: follow `nextCursor`), filtered by status,
   * name, path and creation time.
   * @throws {SwitchyardError} `INVALID_INPUT` for a cursor this store did not return
   */
  listJobs(filter?: ListJobsFilter): Promise<JobPage>;
  /** Pages through a job's tasks by (stage, index), filtered by status, stage or send batch. */
  listTasks(jobId: string, options?: ListTasksOptions): Promise<TaskPage>;
  /**
   * Re-runs a job's failed tasks — all, one stage's, or named ones — with their attempts reset:
   * the stage re-opens and the job runs on from it to its end (also for a job that succeeded
   * with tolerated failures). A cancelled job is not retried (`retried: 0`).
   * @throws {SwitchyardError} `JOB_NOT_FOUND`, `INVALID_INPUT` (a stage the job does not have,
   * task ids of several stages)
   */
  retry(jobId: string, options?: RetryOptions): Promise<RetryResult>;
  /** Retries every job a filter matches (by default the failed ones). */
  retryJobs(filter: ListJobsFilter): Promise<{ jobs: number; retried: number }>;
  /** Cancels every queued or running job a filter matches. */
  cancelJobs(filter: ListJobsFilter): Promise<{ cancelled: number }>;
  /**
   * Deletes finished jobs matching the filter with their stages and tasks, in small batches;
   * metrics keep their totals.
   * @throws {SwitchyardError} `INVALID_INPUT` when `finishedBefore` is not a date
   */
  purge(filter: PurgeFilter): Promise<{ jobs: number; tasks: number }>;
  /**
   * Moves a path's dead letters back to their queue in one terminating pass, re-opening each
   * replayed task first so it runs again; a letter that cannot re-run (its task succeeded, its
   * job was cancelled, it is malformed) stays dead-lettered. Returns how many moved.
   * @throws {SwitchyardError} `UNKNOWN_TRANSPORT`, `INVALID_INPUT` for a path without dead letters
   */
  replayDeadLetters(
    transport: string,
    queue: QueueKind,
    options?: { limit?: number; ids?: readonly string[] },
  ): Promise<number>;
  /** Resolves with the job once it is terminal (succeeded, failed or cancelled). */
  waitFor(jobId: string, options?: WaitForOptions): Promise<JobView>;
  /** Runs workers on every configured transport until `signal` aborts; resolves once drained. */
  work(options?: WorkOptions): Promise<void>;
  /** Processes one message delivered by a serverless trigger and says how to settle it. */
  handle(message: unknown, meta?: HandleMeta): Promise<HandleSettlement>;
  /**
   * One reconciler pass: re-drives stuck work (safe with many workers: a lease). A call while
   * this instance runs a pass joins that pass.
   */
  reconcile(options?: Omit<ReconcileOptions, 'intervalMs'>): Promise<ReconcileResult>;
  /** Per-path comparison: jobs, latency, queue wait, tasks/s, retries, timeouts, poisoned. */
  metrics(): Promise<MetricsReport>;
  /** Checks the store and every transport; resolves with their state. */
  ready(): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; error?: string }> }>;
  /** The job definitions by name. */
  readonly jobs: ReadonlyMap<string, AnyJob>;
  /** Configured path names. */
  readonly transportNames: readonly string[];
  readonly store: Store;
  /** Stops workers and closes the store and transports. */
  close(): Promise<void>;
}
