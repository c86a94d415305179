import type { RetryPolicy } from '../define.js';
import type { ErrorInfo } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RetentionOptions } from '../operations/purge.js';
import type { Priority } from '../priority.js';
import type { JobStatus, StageStatus, Store, TasksWaiting, TransportMetrics } from '../store.js';
import type { TelemetryOptions } from '../telemetry/telemetry.js';
import type { SettlementAction, Transport } from '../transport.js';
import type { JobId } from './api.js';
import type { BatchingOptions } from './batching.js';
import type { ScheduleFor, SchedulerOptions } from './schedules/types.js';

export type * from './schedules/types.js';

/** Options of {@link createSwitchyard}. */
export interface SwitchyardOptions<Jobs extends readonly { readonly name: string }[]> {
  /** The jobs this Switchyard can submit and run. */
  jobs: Jobs;
  store: Store;
  /** Transports by path name, e.g. `{ servicebus: serviceBusTransport(…), postgres: postgresTransport(…) }`, or a list (named by `transport.name`). */
  transports: Record<string, Transport> | readonly Transport[];
  /** Path used when `submit` names none. @defaultValue the first transport */
  defaultTransport?: string;
  /** Batching policy overrides, for all transports or per path name. */
  batching?: BatchingOptions | Record<string, BatchingOptions>;
  /** Default retry policy of tasks (a task's own `retry` wins). */
  retry?: RetryPolicy;
  logger?: Logger;
  /** Reconciler settings (see `reconcile()`). */
  reconcile?: ReconcileOptions;
  /**
   * How long finished jobs are kept, per final status, e.g.
   * `{ succeeded: '7d', failed: '30d', cancelled: '7d' }` (durations, or milliseconds); a job
   * older than that since it finished is deleted with its stages and tasks by the reconciler's
   * pass (one instance at a time, under its lease), in small paced batches. Metrics keep the
   * deleted jobs' totals. A status left out is kept for ever.
   * @defaultValue `{}` — nothing is deleted unless asked
   */
  retention?: RetentionOptions;
  /**
   * Cron schedules: each fire submits its job once across every instance. Each names one of
   * `jobs`, and its `params` are checked against that job's (a `params` function gets the fire
   * time, a `Date`).
   */
  schedules?: readonly ScheduleFor<NoInfer<Jobs>>[];
  /** How schedules are evaluated, delayed jobs released and deadlines enforced (see `runSchedules()`). */
  scheduler?: SchedulerOptions;
  /**
   * How often, in ms, the jobs of running handlers are checked for a cancel (`cancel`,
   * `cancelJobs`, an expired deadline) when the store cannot tell at once. It bounds how long a
   * handler that reads `ctx.signal` runs on before the signal aborts: at once where the store
   * notifies cancels (`Store.onCancel`: PostgreSQL `LISTEN/NOTIFY` once `work()` runs, the memory
   * store in process) or the cancel was made through this Switchyard, otherwise within this
   * interval plus a store round trip — always so for the handlers `handle()` runs. One
   * `cancelledJobs` round trip per interval, only while such handlers run. At least 10.
   * @defaultValue 1000
   */
  cancelCheckIntervalMs?: number;
  /**
   * Where spans and metrics go. Switchyard instruments itself with `@opentelemetry/api`: without
   * an OpenTelemetry SDK registered, every call is a no-op.
   * @defaultValue the global tracer and meter providers
   */
  telemetry?: TelemetryOptions;
  /** Leases and waits of tasks' per-key concurrency and rate limits (`defineTask`'s `concurrency`, `rateLimit`). */
  flowControl?: FlowControlOptions;
}

/** How tasks with `concurrency` or `rateLimit` hold their key slots and wait. */
export interface FlowControlOptions {
  /**
   * A key slot's lease, ms, renewed every third of it while the handler runs: a worker killed
   * while holding a slot loses it at most this long after its last renewal. @defaultValue 30000
   */
  slotLeaseMs?: number;
  /**
   * Longest wait, ms, before a task refused a key slot asks again (the wait doubles with each
   * refusal from 250 ms; a rate-limited task waits until a start is due, plus up to this).
   * @defaultValue 5000
   */
  maxWaitMs?: number;
}

export interface ReconcileOptions {
  /** Work untouched for this long counts as stuck. @defaultValue 300000 (5 min) */
  olderThanMs?: number;
  /** Most items re-driven per pass. @defaultValue 1000 */
  limit?: number;
  /** How often `work()` runs a pass; 0 disables it. @defaultValue 60000 */
  intervalMs?: number;
}

export interface SubmitOptions {
  /** Processing path (transport name). */
  transport?: string;
  /** Job identity: the same key returns the same job whatever the params. Default: the canonical params. */
  idempotencyKey?: string;
  /** Runs the job at this time: it waits in the store as `scheduled` until then. */
  runAt?: Date;
  /** Runs the job this many milliseconds from now (instead of `runAt`). */
  delayMs?: number;
  /**
   * Cancels the job with `DEADLINE_EXCEEDED` if it has not finished this many milliseconds after
   * it is due (submitted, or its `runAt`). @defaultValue the job definition's `deadlineMs`
   */
  deadlineMs?: number;
  /**
   * The lane of the job's tasks on its transport: `high` ones are received first, `low` ones
   * last but never starved (out of ten receives while every lane is busy, six start with `high`,
   * three with `normal`, one with `low`). Honoured by transports that keep lanes (memory and
   * PostgreSQL always; Service Bus and Storage Queues with `priorityLanes`); elsewhere every job
   * shares one lane. An idempotent resubmit keeps the first submit's priority.
   * @defaultValue 'normal'
   */
  priority?: Priority;
}

export interface SubmitResult<N extends string = string> {
  /** Carries the job's name in its type: `waitFor(jobId)` then knows the result type. */
  jobId: JobId<N>;
  /** False when an identical job existed already (idempotent resubmit). */
  created: boolean;
  status: JobStatus;
  transport: string;
}

/** Counts and timings of one stage. */
export interface StageView {
  index: number;
  name: string;
  status: StageStatus | 'waiting';
  /** Known once the fan-out is sealed; until then the tasks created so far. */
  total: number;
  sealed: boolean;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  /**
   * On a cancelled job (by `cancel` or its deadline), the tasks the cancel ended before they
   * finished; its stages then have none pending or running.
   */
  cancelled?: number;
  /**
   * Of the open tasks, those waiting for a key slot (`concurrency`) or a rate limit
   * (`rateLimit`): present on stages whose task declares either, while the job is open.
   */
  waiting?: TasksWaiting;
  /**
   * Of the pending tasks, those the fairness window (`batching.window`) has not released into the
   * transport yet: present on an open stage whose tasks are released a window at a time.
   */
  waitingForWindow?: number;
  startedAt?: Date;
  completedAt?: Date;
  durationMs?: number;
}

/** A job as `getJob` and `waitFor` report it: `R` its result type, `P` its params type. */
export interface JobView<R = unknown, P = unknown> {
  id: string;
  name: string;
  status: JobStatus;
  /** Processing path. */
  transport: string;
  /** The lane of its tasks (see {@link SubmitOptions.priority}). */
  priority: Priority;
  params: P;
  /** The stage the job is in (absent before it starts). */
  currentStage?: { index: number; name: string };
  stages: StageView[];
  createdAt: Date;
  /** A delayed job's due time. */
  runAt?: Date;
  /** When the job is cancelled with `DEADLINE_EXCEEDED` if it has not finished. */
  deadlineAt?: Date;
  startedAt?: Date;
  finishedAt?: Date;
  durationMs?: number;
  result?: R;
  error?: ErrorInfo;
}

export interface WaitForOptions {
  /** Ends the wait: `waitFor` rejects with a `SwitchyardError` coded `ABORTED`. */
  signal?: AbortSignal;
  /** Called on every poll with the current view. */
  onProgress?: (job: JobView) => void;
  /**
   * How often the job is read while it runs. A job this Switchyard ends (its last task ran here,
   * or it was cancelled here) resolves the wait at once, whatever the interval; one ended by
   * another process is seen at the next poll.
   * @defaultValue 200
   */
  pollIntervalMs?: number;
}

export interface WorkOptions {
  /** Task handlers running at once in this process. @defaultValue 64 */
  concurrency?: number;
  /**
   * The most received tasks a task loop may hold beyond `concurrency`, waiting for a slot (their
   * locks renewed meanwhile). The loop holds only as many as its slots finish in one receive
   * round trip — measured, for tasks of about a millisecond, hundreds; for tasks of a second,
   * none — so short tasks never wait for the next receive and each store statement covers more
   * of them, while slow tasks stay in the queue for other workers. For many short tasks on few
   * slots, 32 × `concurrency` runs them at about 0.85–0.95 of the rate of eight times the slots.
   * `0` turns it off.
   * @defaultValue the transport's recommendation per slot (`limits.prefetchPerSlot`: 32 on
   * PostgreSQL) × `concurrency`; none on the other transports
   */
  prefetch?: number;
  /** Stops the workers (in-flight tasks finish or are released) when aborted. */
  signal?: AbortSignal;
  /** Only these paths. @defaultValue all configured transports */
  transports?: string[];
  /** Visibility / lock duration asked of the transport, ms. @defaultValue 60000 */
  visibilityTimeoutMs?: number;
  /** Idle wait per receive call, ms. @defaultValue 1000 */
  waitMs?: number;
  /** Receive calls kept in flight per task queue, so the next batch arrives while one is processed. @defaultValue 2 */
  receivers?: number;
}

/** Trigger metadata a serverless host gives with a message. */
export interface HandleMeta {
  /** 1 on first delivery. @defaultValue 1 */
  deliveryCount?: number;
  /**
   * The host dead-letters after this many deliveries (Service Bus `maxDeliveryCount`, Storage
   * `maxDequeueCount`): the last delivery of a failing task is poisoned rather than retried.
   */
  maxDeliveries?: number;
  /**
   * When the queue accepted the message (Service Bus `enqueuedTimeUtc`, Storage Queues
   * `insertionTime`; the trigger helpers of both drivers set it): a task's queue wait is measured
   * from it. Absent or not a valid date: no queue wait is recorded for the message.
   */
  enqueuedAt?: Date;
}

/** What the host should do with the message it handed to `handle`. */
export type HandleSettlement = SettlementAction;

/** What one reconciler pass did (see `reconcile()`). */
export interface ReconcileResult {
  /** False when another worker holds the reconciler lease. */
  ran: boolean;
  /** Re-drives by reason. */
  redriven: Record<string, number>;
  /** Finished jobs (and their task rows) the pass deleted by `retention`. */
  purged: { jobs: number; tasks: number };
}

export interface MetricsReport {
  /** Aggregates per transport, for comparing the paths. */
  transports: TransportMetrics[];
  generatedAt: Date;
}

export type { JobStatus };
