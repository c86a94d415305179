/** The `Switchyard` interface: what an application calls on a configured Switchyard. */
import type { JobDefinition, JobParams, TaskResult } from '../define.js';
import type { Store } from '../store.js';
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
