/**
 * The store seam: where job, stage and task state lives. A driver is a factory returning a
 * {@link Store}. Every method is atomic on its own; the engine's invariants rest on the few
 * compare-and-set methods documented below (checked by `storeConformance` in
 * `@switchyard/core/testing`).
 *
 * Values (`params`, task `input`, `result`) are JSON values; the engine checks that before it
 * calls the store.
 * @module
 */
import type { ErrorInfo } from './errors.js';
import type { Priority } from './priority.js';

/** `scheduled`: a delayed job waiting in the store for its `runAt`. */
export type JobStatus = 'scheduled' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type StageStatus = 'fanning_out' | 'sealed' | 'complete';
export type TaskStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** A terminal task status. */
export type TerminalTaskStatus = 'succeeded' | 'failed' | 'cancelled';

export interface JobRecord {
  id: string;
  name: string;
  params: unknown;
  /** The processing path (transport name) the job was submitted on. */
  transport: string;
  status: JobStatus;
  /** Index of the stage the job is in; -1 before the first stage starts. */
  currentStage: number;
  /** Number of stages the job definition had at submit. */
  stageCount: number;
  idempotencyKey?: string;
  /** A delayed job's due time: it stays `scheduled` until then. */
  runAt?: Date;
  /** The job is cancelled with `DEADLINE_EXCEEDED` if it is not finished by then. */
  deadlineAt?: Date;
  /** The lane its task messages are sent to. Absent: `normal`. */
  priority?: Priority;
  result?: unknown;
  error?: ErrorInfo;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  updatedAt: Date;
}

export interface StageRecord {
  jobId: string;
  index: number;
  name: string;
  status: StageStatus;
  /** Number of tasks; known once the stage is sealed. */
  total: number | null;
  /** Tasks inserted so far (grows during the fan-out). */
  created: number;
  succeeded: number;
  failed: number;
  /**
   * Tasks currently running (best effort: may lag under crashes or count a duplicate delivery's
   * run). A complete stage has none: completing it sets this to 0.
   */
  running: number;
  /**
   * With a fairness window (`batching.window`), the tasks released into the transport: indexes
   * below this one. `null`: every task was sent as it was inserted.
   */
  released: number | null;
  startedAt: Date;
  sealedAt?: Date;
  completedAt?: Date;
}

export interface TaskRecord {
  /** Deterministic: `${jobId}.${stage}.${index}` — see `taskId()`. */
  id: string;
  jobId: string;
  stage: number;
  index: number;
  status: TaskStatus;
  /** Attempts started so far. */
  attempts: number;
  /** Attempts that ended in a timeout. */
  timeouts: number;
  input: unknown;
  result?: unknown;
  error?: ErrorInfo;
  /** Send batch this task's message went out in (diagnostics). */
  batchId?: string;
  createdAt: Date;
  /**
   * Last time the task was (re)sent or settled: the reconciler's clock for a lost message. A task
   * waiting for a key slot or a rate limit has it set to when its deferred message is due.
   */
  updatedAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
}

export interface NewJob {
  id: string;
  name: string;
  params: unknown;
  transport: string;
  stageCount: number;
  idempotencyKey?: string;
  /** Delays the job: created `scheduled`, released by {@link Store.releaseDueJobs} once due. */
  runAt?: Date;
  /** See {@link JobRecord.deadlineAt}. */
  deadlineAt?: Date;
  /** See {@link JobRecord.priority}; stored only when not `normal`. */
  priority?: Priority;
}

/** A schedule's durable state (see {@link Store.getScheduleStates}). */
export interface ScheduleState {
  name: string;
  paused: boolean;
  /** Every fire at or before this is accounted for (fired or skipped); absent before the first pass. */
  cursor?: Date;
  /** The last fire submitted, and its job. */
  lastFireAt?: Date;
  lastJobId?: string;
}

/** Moves a schedule's cursor forward, recording the fire it submitted if any. */
export interface ScheduleAdvance {
  name: string;
  cursor: Date;
  lastFireAt?: Date;
  lastJobId?: string;
}

/** A delayed job released to run: its first stage message is due. */
export interface ReleasedJob {
  jobId: string;
  transport: string;
}

export interface NewTask {
  index: number;
  input: unknown;
  batchId?: string;
}

/** A task claimed for one attempt, or the reason it must not run. */
export interface TaskClaim {
  taskId: string;
  /**
   * `run`: the attempt may start (claimed: status running, attempts incremented; admitted: nothing
   * recorded yet). Otherwise why not.
   */
  outcome: 'run' | 'terminal' | 'missing' | 'job-inactive';
  /** With `run`: the number of this attempt (1 for the first). */
  attempt?: number;
  /** With `run` and {@link ClaimRef.withInput}: the task's stored input. */
  input?: unknown;
}

/** Names one task: its id, and the job, stage and index the id is made of (see `taskId`). */
export interface TaskRef {
  jobId: string;
  stage: number;
  /** The task's index in its stage (-1 when the id is not one the engine makes). */
  index: number;
  taskId: string;
}

/**
 * A fan-out's own pack of tasks at its first delivery, admitted as a whole: see
 * {@link Store.admitPacks}.
 */
export interface PackAdmission {
  jobId: string;
  stage: number;
  /** How many tasks the pack holds: added to the stage's running count. */
  tasks: number;
}

/** A task to claim. */
export interface ClaimRef extends TaskRef {
  /**
   * Return the stored input with the claim: the message carried it by reference. Claims return
   * only what the attempt needs, since a worker claims every task it runs.
   */
  withInput?: boolean;
  /**
   * Admit instead of claim: check that the task may run (exists, not terminal, job running) and
   * record nothing but the stage's running count; the outcome or retry records the attempt. The
   * engine admits the first delivery of a fan-out's own message — the common case, where a write
   * per task would be the costliest statement of the whole run — and claims every other delivery
   * (redeliveries, retries, re-drives), so a crashed admitted attempt is still counted by the
   * next delivery's `minAttempt`.
   */
  admitOnly?: boolean;
  /** The attempt number is at least this (a message's attempts before it was sent + its delivery count). */
  minAttempt?: number;
}

export interface TaskOutcome extends TaskRef {
  status: TerminalTaskStatus;
  result?: unknown;
  error?: ErrorInfo;
  /** The attempt ended in a timeout. */
  timedOut?: boolean;
  /** The attempt's number: the task's attempts become at least this. */
  attempt?: number;
  /** When the attempt started (the task's `startedAt`, if it had none). */
  startedAt?: Date;
}

export interface TaskRetry extends TaskRef {
  error: ErrorInfo;
  timedOut?: boolean;
  /** The failed attempt's number: the task's attempts become at least this. */
  attempt?: number;
  /** When the attempt started (the task's `startedAt`, if it had none). */
  startedAt?: Date;
}

/** A stage whose tasks are released into the transport a window at a time (`batching.window`). */
export interface StageWindow {
  jobId: string;
  stage: number;
  /**
   * Most of the stage's tasks released and waiting in the transport: neither finished (succeeded
   * or failed) nor running (the stage's `running` count: claimed or admitted by a worker).
   */
  window: number;
  /**
   * The caller is the stage's fan-out: a stage not windowed yet becomes windowed. Any other
   * caller leaves such a stage alone: its fan-out sent every task as it was inserted.
   */
  fanOut?: boolean;
}

/** What one release let into the transport: these tasks' messages are the caller's to send. */
export interface ReleasedTasks {
  jobId: string;
  stage: number;
  /** The pending tasks among the indexes the release gained, in index order. */
  tasks: { index: number; input: unknown }[];
}

/** What `completeTasks` / `sealStage` found: a stage this very call completed. */
export interface StageCompletion {
  jobId: string;
  stage: number;
  succeeded: number;
  failed: number;
  total: number;
}

export interface CompleteTasksResult {
  /** Ids of tasks this call moved to a terminal status (the others were terminal already). */
  applied: string[];
  /** Stages this call completed: exactly one caller ever sees a given stage here. */
  completedStages: StageCompletion[];
}

export interface ListTasksOptions {
  stage?: number;
  status?: TaskStatus;
  /** Only tasks sent in this send batch (the `batchId` given to {@link Store.insertTasks}). */
  batchId?: string;
  /** With `stage`: only tasks whose index is greater than this (resuming a fan-out). */
  afterIndex?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** Page size (default 100, the store may cap it). */
  limit?: number;
}

/** A succeeded task's result, as {@link Store.listResults} pages them. */
export interface StoredResult {
  index: number;
  result: unknown;
}

export interface TaskPage {
  tasks: TaskRecord[];
  /** Cursor of the next page, absent on the last page. */
  nextCursor?: string;
}

/** Aggregates per transport, computed by the store from its records. */
export interface TransportMetrics {
  transport: string;
  jobs: {
    total: number;
    queued: number;
    running: number;
    succeeded: number;
    failed: number;
    cancelled: number;
  };
  /** Finished jobs' latency (created → finished), milliseconds. */
  jobLatencyMs: { mean: number | null; p95: number | null };
  /** Tasks' wait between being sent and their first attempt starting, milliseconds. */
  queueWaitMs: { mean: number | null; p95: number | null };
  /** Task executions finished per second of finished jobs' running time. */
  tasksPerSecond: number | null;
  tasks: { total: number; succeeded: number; failed: number };
  /** Attempts beyond the first, summed over tasks. */
  retries: number;
  /** Attempts that timed out. */
  timeouts: number;
  /** Tasks failed for good (poisoned). */
  poisoned: number;
  /** Reconciler re-drives, by reason. */
  redrives: Record<string, number>;
  /**
   * Open tasks of running jobs waiting for a key slot (`concurrency`) or a rate limit
   * (`rateLimit`); reported by stores with flow control.
   */
  waiting?: TasksWaiting;
  /**
   * Tasks of running jobs' windowed stages (`batching.window`) not released into the transport
   * yet: created, waiting for the stage's earlier tasks to finish. Reported by stores with
   * `releaseTasks`.
   */
  waitingForWindow?: number;
  /**
   * Billable operations of the path's transport in this process (transports with `usage()`;
   * added by `withCost`, absent otherwise).
   */
  usage?: {
    operations: Record<string, number>;
    billableOperations: number;
    throttled: number;
    /**
     * `billableOperations` over the task attempts this process settled on the path (a Switchyard's
     * `metrics()`; `tasks.total` when `withCost` is called without `executions`); null before any,
     * e.g. in a process that only submits or reads.
     */
    perTask: number | null;
  };
  /** Estimated cost of those operations at the driver's list prices (added by `withCost`). */
  cost?: {
    currency: string;
    amount: number;
    /** `amount` scaled to 1,000,000 task executions; null before any. */
    perMillionTasks: number | null;
    basis: string;
  };
}

/** Which jobs {@link Store.listJobs} returns; every field narrows the list. */
export interface ListJobsFilter {
  /** One status or any of several. */
  status?: JobStatus | readonly JobStatus[];
  /** Exact job (definition) name. */
  name?: string;
  /** Processing path the job was submitted on. */
  transport?: string;
  /** Submitted with this priority (`normal` matches jobs submitted without one). */
  priority?: Priority;
  /** Created at or after this instant. */
  createdAfter?: Date;
  /** Created strictly before this instant. */
  createdBefore?: Date;
  /** Opaque cursor from {@link JobPage.nextCursor}: the page after it. */
  cursor?: string;
  /** Page size. @defaultValue 50 (at most {@link MAX_JOB_PAGE}) */
  limit?: number;
}

/** Default page size of {@link Store.listJobs}. */
export const DEFAULT_JOB_PAGE = 50;
/** Largest page {@link Store.listJobs} returns. */
export const MAX_JOB_PAGE = 500;

/** A job as {@link Store.listJobs} lists it: its record without params and result. */
export interface JobSummary {
  id: string;
  name: string;
  status: JobStatus;
  transport: string;
  /** See {@link JobRecord.priority}. Absent: `normal`. */
  priority?: Priority;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  /** Index of the stage the job is in; absent before the first stage starts. */
  currentStage?: number;
  error?: ErrorInfo;
}

/** One page of jobs, newest first (created at descending, then id descending). */
export interface JobPage {
  jobs: JobSummary[];
  /** Cursor of the next page, absent on the last page. */
  nextCursor?: string;
}

/** Which failed tasks {@link Store.reopenTasks} puts back to pending. */
export interface ReopenTasksRequest {
  jobId: string;
  /**
   * The stage whose failed tasks re-open. @defaultValue the stage of `taskIds`, else the latest
   * stage that has failed tasks
   */
  stage?: number;
  /** Only these tasks (each must be failed and in one stage). @defaultValue every failed task of the stage */
  taskIds?: readonly string[];
}

/** What {@link Store.reopenTasks} did. */
export interface ReopenedTasks {
  /** The job after the call (status `running` when tasks re-opened). */
  job: JobRecord;
  /** The re-opened stage; absent when nothing re-opened. */
  stage?: number;
  /** Ids of the tasks this call put back to pending, in index order: send one message for each. */
  taskIds: string[];
}

/** Which finished jobs {@link Store.purgeJobs} deletes. */
export interface PurgeFilter {
  /** Terminal statuses to purge. @defaultValue every terminal status */
  status?: JobStatus | readonly JobStatus[];
  /** Only jobs that finished strictly before this instant. */
  finishedBefore: Date;
  /** Only jobs of this name. */
  name?: string;
  /**
   * At most this many jobs in total: `purge` applies it across batches; a store batch takes
   * {@link PurgeBatch.jobs} instead.
   */
  limit?: number;
}

/** Bounds of one {@link Store.purgeJobs} batch, so no statement holds locks for long. */
export interface PurgeBatch {
  /** Most jobs this batch considers. @defaultValue 100 */
  jobs?: number;
  /** Most task rows this batch deletes. @defaultValue 5000 */
  tasks?: number;
}

/** What one {@link Store.purgeJobs} batch deleted. */
export interface PurgeResult {
  /** Jobs deleted (with their stages). */
  jobs: number;
  /** Task rows deleted. */
  tasks: number;
  /** True when matching jobs (or their tasks) remain: call again. */
  more: boolean;
}

/** Most doublings of a re-sent task's lost-message wait; see {@link Store.touchTasks}. */
export const MAX_REDRIVE_DOUBLINGS = 6;

/** Work the reconciler found stuck; see `Store.findStuck`. */
export type StuckWork =
  /** Job queued but its first stage never started. */
  | { kind: 'job-not-started'; jobId: string; transport: string }
  /** Stage started but its fan-out never sealed (the stage message was lost mid fan-out). */
  | { kind: 'fanout-incomplete'; jobId: string; transport: string; stage: number }
  /** Stage complete but the job never moved past it (the advance message was lost). */
  | { kind: 'stage-not-advanced'; jobId: string; transport: string; stage: number }
  /** Every stage done but the job never finished (the finalize message was lost). */
  | { kind: 'finalize-not-done'; jobId: string; transport: string }
  /** Non-terminal tasks of the current stage not touched for too long (their message was lost). */
  | {
      kind: 'task-message-lost';
      jobId: string;
      transport: string;
      stage: number;
      taskIds: string[];
    };

/** How many tasks wait for a key slot and how many for a rate limit. */
export interface TasksWaiting {
  /** Tasks refused a key slot (`concurrency`), waiting to ask again. */
  concurrency: number;
  /** Tasks refused a rate-limit start (`rateLimit`), waiting to ask again. */
  rateLimit: number;
}

/** The open tasks of one stage that wait, as {@link FlowControlCapability.waitingTasks} counts them. */
export interface StageWaiting extends TasksWaiting {
  stage: number;
}

/** Names one held key slot. */
export interface SlotRef {
  /** The limit's scope: the task definition's name. */
  scope: string;
  /** The key within the scope (empty for a limit over the whole task). */
  key: string;
  /** Unique per acquisition. */
  holder: string;
}

/** A key slot to take: at most `limit` unexpired holders of one (scope, key) at once. */
export interface SlotRequest extends SlotRef {
  limit: number;
  /** The slot is held this long from now unless renewed ({@link FlowControlCapability.renewSlots}). */
  leaseMs: number;
}

/** A rate-limit start to take: at most `limit` starts of one (scope, key) in any `periodMs` window. */
export interface RateRequest {
  scope: string;
  key: string;
  limit: number;
  periodMs: number;
}

/** What a task needs before its handler may start; see {@link FlowControlCapability.admitTask}. */
export interface FlowAdmission extends TaskRef {
  slot?: SlotRequest;
  rate?: RateRequest;
  /**
   * When refused, the caller re-sends the task's message this long from now (a rate-limit refusal:
   * plus its `retryAfterMs`): the task's lost-message clock (`updatedAt`) is set to that time.
   */
  waitMs: number;
}

/**
 * The store's answer to a {@link FlowAdmission}: `admitted` (the slot is held, the start taken),
 * `not-runnable` (the task is terminal or missing, or its job is not running: nothing taken, the
 * claim says why), or what it waits for (nothing taken; the task is marked waiting).
 */
export type FlowDecision =
  | { outcome: 'admitted' | 'not-runnable' | 'concurrency' }
  /** With the time until the window frees a start, ms. */
  | { outcome: 'rateLimit'; retryAfterMs: number };

/**
 * Per-key concurrency slots and rate limits, shared by every worker of the store. A store offers
 * all of these methods or none; a task with `concurrency` or `rateLimit` needs them.
 */
export interface FlowControlCapability {
  /**
   * Atomically checks that the task may run (exists, not terminal, its job running), then takes
   * its key slot and its rate-limit start, both or neither: a slot is free when fewer than `limit`
   * unexpired holders hold its key; a start is free when fewer than `limit` starts of its key were
   * taken in the last `periodMs` (by the store's clock, the same for every worker). A refusal marks
   * the task waiting for what it lacks (counted by {@link FlowControlCapability.waitingTasks} and
   * `metrics().waiting`, cleared by its next admission) and sets its `updatedAt` as `waitMs` says.
   */
  admitTask(admission: FlowAdmission): Promise<FlowDecision>;
  /**
   * Extends held slots to `leaseMs` from now; returns the holders renewed (a slot missing from the
   * answer was released, or expired and taken by another).
   */
  renewSlots(slots: readonly SlotRef[], leaseMs: number): Promise<string[]>;
  /** Gives slots back (a slot already gone is ignored). */
  releaseSlots(slots: readonly SlotRef[]): Promise<void>;
  /** Per stage of the job with any: its open tasks waiting for a key slot or a rate limit. */
  waitingTasks(jobId: string): Promise<StageWaiting[]>;
}

/**
 * Optional capability: the store's task rows can be a transport's task queue (see the transport's
 * `TaskRowClaimsCapability`). The engine claims them through a transport only when both name the
 * same rows.
 */
export interface TaskRowsCapability {
  /** Names where this store's task rows live (its database and schema), stable across restarts. */
  taskRowsIdentity(): Promise<string>;
}

export interface Store extends Partial<FlowControlCapability>, Partial<TaskRowsCapability> {
  /** Creates tables / migrations if needed. Called once by `createSwitchyard`; idempotent. */
  init?(): Promise<void>;

  /** Inserts the job unless a job with that id exists; returns the stored job either way. */
  createJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  getStages(jobId: string): Promise<StageRecord[]>;

  /**
   * Compare-and-set stage advance: moves the job from `stage - 1` (or -1 for the first stage) to
   * `stage`, status `running`, and creates the stage row (`fanning_out`). `advanced` is true for
   * exactly one caller; a caller finding the job already at `stage` gets `advanced: false` and the
   * current records (a redelivered stage message resumes the fan-out). A terminal job is returned
   * unchanged.
   */
  startStage(
    jobId: string,
    stage: number,
    stageName: string,
  ): Promise<{ advanced: boolean; job: JobRecord; stage?: StageRecord }>;

  /** Inserts tasks of one stage, skipping indexes that exist. Returns how many were inserted. */
  insertTasks(jobId: string, stage: number, tasks: readonly NewTask[]): Promise<number>;

  /**
   * Seals the stage with its total. Returns the completion if every task is already terminal
   * (then this call, not a task completion, completed the stage). Sealing a sealed stage is a no-op.
   */
  sealStage(jobId: string, stage: number, total: number): Promise<StageCompletion | undefined>;

  /**
   * Starts one attempt of each task that is not terminal and whose job is running: status
   * `running`, attempts + 1 (at least `minAttempt`), `startedAt` set on the first attempt — or, for
   * refs with `admitOnly`, only checks that it may start. One round trip for the batch.
   */
  claimTasks(tasks: readonly ClaimRef[]): Promise<TaskClaim[]>;

  /**
   * Admits the first delivery of fan-outs' own packs with one check per pack instead of one per
   * task: true when the job is running and the stage is not complete, and then the pack's task
   * count is added to the stage's best-effort running count. Nothing about the tasks is read: the
   * fan-out inserted them just before sending the pack, so each is pending and starts attempt 1;
   * the outcome records it. (A resumed fan-out's packs, whose tasks may have run already, and
   * every later delivery go through {@link Store.claimTasks} task by task.) One round trip for
   * the batch. Optional: without it the engine admits each task through `claimTasks`.
   */
  admitPacks?(packs: readonly PackAdmission[]): Promise<boolean[]>;

  /**
   * The fan-in barrier, batched: moves each task to its terminal status only if it is not
   * terminal yet, bumps its stage's counters, and reports the stages this call completed (sealed,
   * and terminal count reached the total). Under any concurrency exactly one call reports a stage.
   * Also records the attempt: attempts at least `attempt`, `startedAt` if unset, and the stage's
   * running count down by one per applied outcome (each ends an attempt that was admitted or
   * claimed, and so counted; never below zero). Reading the task's previous status instead would
   * cost a second index lookup per task, the largest share of the statement.
   */
  completeTasks(outcomes: readonly TaskOutcome[]): Promise<CompleteTasksResult>;

  /**
   * Records failed attempts that will be retried: status back to `pending`, error kept, attempts
   * at least `attempt`, `startedAt` if unset, the stage's running count down as in `completeTasks`.
   */
  retryTasks(retries: readonly TaskRetry[]): Promise<void>;

  /**
   * Releases tasks into the transport a window at a time (fairness between jobs). For each stage
   * of a running job that is windowed (or becomes so, with `fanOut`) and not complete, the
   * released indexes grow to `min(created, succeeded + failed + running + window)` — at most
   * `window` released tasks wait in the transport, however many workers run others — and the
   * pending tasks among the indexes gained are returned: each index goes to one caller only,
   * however many release at once. Stages that gained no pending task are left out. `findStuck`
   * never reports an unreleased task lost, and counts a released task's silence from the stage's
   * latest release at the earliest. One round trip for the batch.
   */
  releaseTasks(windows: readonly StageWindow[]): Promise<ReleasedTasks[]>;

  /**
   * Marks non-terminal tasks as re-sent now, for the reconciler's lost-message clock. Each re-send
   * doubles the wait before `findStuck` reports the task lost again (`olderThanMs × 2^k` after
   * the k-th, at most {@link MAX_REDRIVE_DOUBLINGS} doublings): a backlog the reconciler takes for lost
   * messages must not be flooded with a new copy of every task at every pass.
   */
  touchTasks?(taskIds: readonly string[]): Promise<void>;

  /** Finishes the job if it is not terminal (compare-and-set). True for exactly one caller. */
  finishJob(
    jobId: string,
    outcome: { status: 'succeeded' | 'failed'; result?: unknown; error?: ErrorInfo },
  ): Promise<boolean>;

  /** Cancels a non-terminal job; its non-terminal tasks become `cancelled`. True if it was cancelled now. */
  cancelJob(jobId: string): Promise<boolean>;

  /**
   * Pages through jobs newest first (created at descending, then id descending) with a keyset
   * cursor, so a page costs the same at any depth.
   * @throws ValidationError when `cursor` is not one this store returned.
   */
  listJobs(filter?: ListJobsFilter): Promise<JobPage>;

  /**
   * Of these job ids, the ones that are cancelled (or no longer exist): how a worker learns, in one
   * round trip per tick, which of the jobs it is running handlers for were cancelled.
   */
  cancelledJobs(jobIds: readonly string[]): Promise<string[]>;

  /**
   * Re-opens failed tasks for another run, atomically: each named (or every) failed task of one
   * stage goes back to `pending` with attempts, timeouts, error and times reset; the stage
   * becomes `sealed` again with its failed count lowered by as many (so the barrier completes it
   * exactly once more, when the re-run tasks end); stages after it are deleted with their tasks,
   * so they fan out afresh; the job returns to `running` at that stage, its result, error and
   * finish time cleared. The tasks' `updatedAt` is now: if the caller dies before re-sending
   * their messages, the reconciler finds them as lost messages and re-sends them.
   *
   * Allowed on a `failed` or `succeeded` job, and on a `running` job for failed tasks of its
   * current stage while that stage is not complete (a dead letter replayed while the job goes
   * on). A job that is cancelled, queued, or has no matching failed task is returned unchanged
   * with no task ids.
   * @throws ValidationError when `taskIds` name tasks of more than one stage or another job.
   * @throws SwitchyardError `JOB_NOT_FOUND` for an unknown job.
   */
  reopenTasks(request: ReopenTasksRequest): Promise<ReopenedTasks>;

  /**
   * Deletes one small batch of terminal jobs that match the filter, with their stages and tasks:
   * at most `batch.tasks` task rows, then the jobs left without tasks. The per-path metrics keep
   * the deleted records' counts and sums (means stay exact; p95 covers the records kept). Short
   * statements on rows no running job touches: call it in a loop, pausing between calls.
   */
  purgeJobs(filter: PurgeFilter, batch?: PurgeBatch): Promise<PurgeResult>;

  /**
   * Optional: calls `listener` with the id of each job cancelled anywhere, at once (Postgres:
   * `LISTEN/NOTIFY`). Best effort — a missed call is caught by {@link Store.cancelledJobs}.
   * Resolves to a function that stops listening.
   */
  onCancel?(listener: (jobId: string) => void): Promise<() => Promise<void>>;

  getTask(taskId: string): Promise<TaskRecord | undefined>;
  /** Pages through a job's tasks ordered by (stage, index). */
  listTasks(jobId: string, options?: ListTasksOptions): Promise<TaskPage>;

  /**
   * Up to `limit` results of a stage's succeeded tasks with index above `afterIndex`, in index
   * order: what a later stage's `ctx.results()` streams, read without the rest of each record.
   * Optional: without it the engine pages through `listTasks`.
   */
  listResults?(
    jobId: string,
    stage: number,
    page: { afterIndex: number; limit: number },
  ): Promise<StoredResult[]>;

  /** Per-path aggregates. */
  metrics(): Promise<TransportMetrics[]>;
  /** Adds to a per-path counter (reconciler re-drives), shown in `metrics().redrives`. */
  incrementCounter(transport: string, name: string, by: number): Promise<void>;

  /**
   * Finds work stuck for longer than `olderThanMs`, at most `limit` items (task ids count one each).
   * Jobs that are terminal are never returned.
   */
  findStuck(options: { olderThanMs: number; limit: number }): Promise<StuckWork[]>;

  /**
   * A named lease held by one owner at a time, for `ttlMs`. Returns true if `owner` now holds it
   * (acquired or renewed). Used so one reconciler pass runs at a time across workers.
   */
  acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean>;

  /**
   * Moves up to `limit` `scheduled` jobs whose `runAt` has passed to `queued` and returns them;
   * the caller then sends their first stage message. A crash in between leaves a queued job that
   * never started, which the reconciler re-drives (`job-not-started`).
   */
  releaseDueJobs(limit: number): Promise<ReleasedJob[]>;

  /**
   * Cancels up to `limit` non-terminal jobs whose `deadlineAt` has passed, as {@link Store.cancelJob}
   * does, recording the error `DEADLINE_EXCEEDED`; returns their ids (each reported once).
   */
  expireJobs(limit: number): Promise<string[]>;

  /** Every schedule's stored state (schedules never evaluated nor paused have none). */
  getScheduleStates(): Promise<ScheduleState[]>;

  /**
   * Compare-and-set: moves the schedule's cursor to `cursor` (creating its state) only if it is
   * later than the stored one, then records `lastFireAt` / `lastJobId` when given. True if applied.
   */
  advanceSchedule(advance: ScheduleAdvance): Promise<boolean>;

  /** Pauses or resumes a schedule (creating its state). */
  setSchedulePaused(name: string, paused: boolean): Promise<void>;

  /** Resolves when the backend is reachable (used by `/readyz`). */
  ping?(): Promise<void>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/** The page size `listJobs` uses for a requested `limit`: the default, clamped to 1…{@link MAX_JOB_PAGE}. */
export function jobPageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_JOB_PAGE;
  return Math.max(1, Math.min(Math.floor(limit), MAX_JOB_PAGE));
}
