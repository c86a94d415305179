/** The `Switchyard` interface: what an application calls on a configured Switchyard. */
import type {
  JobDefinition,
  JobInput,
  JobOutputs,
  JobParams,
  JobResult,
  TaskResult,
} from '../define.js';
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
  SchedulePassResult,
  ScheduleView,
  SubmitOptions,
  SubmitResult,
  WaitForOptions,
  WorkOptions,
} from './types.js';

export type AnyJob = JobDefinition<string, unknown, unknown>;
export type NamedJob = { readonly name: string };
/**
 * A job id as `submit` returns it: a string that also carries, in types only, the name of its
 * job, so `waitFor`, `getJob` and `results` know its result and stage output types.
 */
export type JobId<N extends string = string> = string & { readonly '~job'?: N };
/** A job id not known to belong to a given job (any string): views and results are `unknown`. */
export type UntypedJobId = string & { readonly '~job'?: undefined };
/** The names of the jobs in a list of job definitions. */
export type JobName<Jobs extends readonly NamedJob[]> = Jobs[number]['name'];
/** The job definition registered under name N (any job when the names are not literal types). */
export type JobNamed<Jobs extends readonly NamedJob[], N> = [
  Extract<Jobs[number], { name: N }>,
] extends [never]
  ? Jobs[number]
  : Extract<Jobs[number], { name: N }>;

/** The view of a job of definition J: its `result` and `params` typed. */
export type JobViewOf<J> = JobView<JobResult<J>, JobParams<J>>;

/** A configured Switchyard: submit jobs, run workers, handle serverless deliveries, report. */
export interface Switchyard<Jobs extends readonly NamedJob[] = readonly NamedJob[]> {
  /**
   * Validates params and creates the job (idempotent: the same name and params — or the same
   * `idempotencyKey` — return the existing job), then starts its first stage.
   * @throws {SwitchyardError} `UNKNOWN_JOB`, `UNKNOWN_TRANSPORT`, `INVALID_INPUT`, `NOT_SERIALIZABLE`
   */
  submit<N extends JobName<Jobs>>(
    jobName: N,
    params: JobInput<JobNamed<Jobs, N>>,
    options?: SubmitOptions,
  ): Promise<SubmitResult<N>>;
  /**
   * The job's status, current stage, per-stage counts and timings; undefined if unknown. With a
   * {@link JobId} from `submit` the view's `result` and `params` have the job's types.
   */
  getJob(jobId: UntypedJobId): Promise<JobView | undefined>;
  getJob<N extends JobName<Jobs>>(
    jobId: JobId<N>,
  ): Promise<JobViewOf<JobNamed<Jobs, N>> | undefined>;
  /**
   * Streams succeeded task results of a job (one stage by name or index, or all), in task order.
   * With a {@link JobId} from `submit`, `stage` must be one of the job's stage names and the
   * results have that stage's task output type.
   */
  results<O = unknown>(jobId: UntypedJobId, stage?: string | number): AsyncIterable<TaskResult<O>>;
  results<O = unknown>(jobId: string, stage?: number): AsyncIterable<TaskResult<O>>;
  results<N extends JobName<Jobs>, K extends keyof JobOutputs<JobNamed<Jobs, N>> & string>(
    jobId: JobId<N>,
    stage: K,
  ): AsyncIterable<TaskResult<JobOutputs<JobNamed<Jobs, N>>[K]>>;
  /**
   * Cancels the job: no new task starts, and its running handlers' `ctx.signal` aborts with
   * `JOB_CANCELLED` — at once on this instance and where the store notifies cancels, otherwise
   * within `cancelCheckIntervalMs`. True if it was cancelled by this call.
   */
  cancel(jobId: string): Promise<boolean>;
  /**
   * Resolves with the job once it is terminal (succeeded, failed or cancelled): at once when this
   * Switchyard ended it, otherwise at the next poll (`pollIntervalMs`). With a {@link JobId} from
   * `submit` the view's `result` and `params` have the job's types.
   */
  waitFor(jobId: UntypedJobId, options?: WaitForOptions): Promise<JobView>;
  waitFor<N extends JobName<Jobs>>(
    jobId: JobId<N>,
    options?: WaitForOptions,
  ): Promise<JobViewOf<JobNamed<Jobs, N>>>;
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
  /**
   * Cancels every delayed (`scheduled`), queued or running job a filter matches, as
   * {@link Switchyard.cancel} does.
   */
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
  /** Runs workers on every configured transport until `signal` aborts; resolves once drained. */
  work(options?: WorkOptions): Promise<void>;
  /** Processes one message delivered by a serverless trigger and says how to settle it. */
  handle(message: unknown, meta?: HandleMeta): Promise<HandleSettlement>;
  /**
   * One reconciler pass: re-drives stuck work (safe with many workers: a lease). A call while
   * this instance runs a pass joins that pass.
   */
  reconcile(options?: Omit<ReconcileOptions, 'intervalMs'>): Promise<ReconcileResult>;
  /**
   * One scheduler pass (one instance at a time, under a store lease): releases delayed jobs that
   * are due, cancels jobs past their deadline, submits the schedules' due fires. `work()` runs it
   * on `scheduler.intervalMs`; a serverless host calls it from a timer trigger.
   */
  runSchedules(): Promise<SchedulePassResult>;
  /** Every configured schedule with its last and next fire. */
  listSchedules(): Promise<ScheduleView[]>;
  /** Pauses a schedule: its fires are skipped until resumed. @throws {SwitchyardError} `UNKNOWN_SCHEDULE` */
  pauseSchedule(name: string): Promise<void>;
  /** Resumes a paused schedule (fires missed while paused are not run). @throws {SwitchyardError} `UNKNOWN_SCHEDULE` */
  resumeSchedule(name: string): Promise<void>;
  /** Submits the schedule's job now, outside its cron. @throws {SwitchyardError} `UNKNOWN_SCHEDULE` */
  triggerSchedule(name: string): Promise<SubmitResult>;
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
