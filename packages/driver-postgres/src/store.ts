import type { ErrorInfo } from '@switchyard/core';
import { SwitchyardError, ValidationError } from '@switchyard/core';
import type {
  ClaimRef,
  CompleteTasksResult,
  FlowAdmission,
  FlowControlCapability,
  FlowDecision,
  JobPage,
  JobRecord,
  JobStatus,
  ListJobsFilter,
  ListTasksOptions,
  NewJob,
  NewTask,
  PackAdmission,
  PurgeBatch,
  PurgeFilter,
  PurgeResult,
  ReleasedJob,
  ReleasedTasks,
  ReopenedTasks,
  ReopenTasksRequest,
  ScheduleAdvance,
  ScheduleState,
  SlotRef,
  StageCompletion,
  StageRecord,
  StageWaiting,
  StageWindow,
  Store,
  StoredResult,
  StuckWork,
  TaskClaim,
  TaskOutcome,
  TaskPage,
  TaskRecord,
  TaskRef,
  TaskRetry,
  TransportMetrics,
} from '@switchyard/core/driver';
import { jobPageSize, MAX_REDRIVE_DOUBLINGS, parseTaskId, taskId } from '@switchyard/core/driver';
import { type ConnectionOptions, connect, type SqlAdapter } from './adapter.js';
import { jsonArray, jsonText, quoteSchema } from './errors.js';
import { decodeJobCursor, encodeJobCursor, type JobSummaryRow, toJobSummary } from './job-page.js';
import { migrate } from './migrate.js';
import { type JobRow, type StageRow, type TaskRow, toJob, toStage, toTask } from './rows.js';
import { acquireLease } from './sql/acquireLease.js';
import { admitPacks } from './sql/admitPacks.js';
import { advanceSchedule } from './sql/advanceSchedule.js';
import { cancelJob } from './sql/cancelJob.js';
import { cancelledJobs } from './sql/cancelledJobs.js';
import { claimTasks } from './sql/claimTasks.js';
import { completeTasks } from './sql/completeTasks.js';
import { createDelayedJob } from './sql/createDelayedJob.js';
import { createJob } from './sql/createJob.js';
import { expireJobs } from './sql/expireJobs.js';
import { findLostTasks, findStuckStages } from './sql/findStuck.js';
import { finishJob } from './sql/finishJob.js';
import { admitTask, releaseSlots, renewSlots, waitingTasks } from './sql/flowControl.js';
import { getJob } from './sql/getJob.js';
import { getScheduleStates } from './sql/getScheduleStates.js';
import { getStages } from './sql/getStages.js';
import { getTask } from './sql/getTask.js';
import { incrementCounter } from './sql/incrementCounter.js';
import { insertTasks } from './sql/insertTasks.js';
import { type ListJobsShape, listJobs } from './sql/listJobs.js';
import { listResults } from './sql/listResults.js';
import { listTasks } from './sql/listTasks.js';
import { metrics } from './sql/metrics.js';
import { purgeEmptyJobs, purgeRemaining, purgeTasks } from './sql/purgeJobs.js';
import { releaseDueJobs } from './sql/releaseDueJobs.js';
import { releaseTasks } from './sql/releaseTasks.js';
import {
  reopenDropLaterStages,
  reopenDropLaterTasks,
  reopenFailedTasks,
  reopenJob,
  reopenLatestFailedStage,
  reopenLockJob,
  reopenLockStage,
  reopenStage,
} from './sql/reopenTasks.js';
import { retryTasks } from './sql/retryTasks.js';
import { taskRowsIdentity } from './sql/rowClaims.js';
import { sealStage } from './sql/sealStage.js';
import { setSchedulePaused } from './sql/setSchedulePaused.js';
import { startStage } from './sql/startStage.js';
import { touchTasks } from './sql/touchTasks.js';

/** Options of {@link postgresStore}. */
export interface PostgresStoreOptions extends ConnectionOptions {
  /** Schema holding the tables; created and migrated by `init()`. @defaultValue `'switchyard'` */
  schema?: string;
  /** Rows per `insertTasks` statement. @defaultValue 5000 */
  insertChunkSize?: number;
}

/** Extra, Postgres-specific operations of the store. */
export interface PostgresStore extends Store {
  /** The (validated) schema name. */
  readonly schema: string;
  /** Applies the migrations once per store instance (idempotent across workers). */
  init(): Promise<void>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  /**
   * Names this schema's task rows (a value its migrations drew): a `postgresTransport` on the same
   * database and schema names the same, and then claims the task rows in place of messages.
   */
  taskRowsIdentity(): Promise<string>;
  /** Admits fan-outs' own packs at their first delivery, one check per pack (see `Store.admitPacks`). */
  admitPacks(packs: readonly PackAdmission[]): Promise<boolean[]>;
  /** Resets non-terminal tasks' lost-message clock. */
  touchTasks(taskIds: readonly string[]): Promise<void>;
  /** Takes a task's key slot and rate-limit start, both or neither (see `Store.admitTask`). */
  admitTask: FlowControlCapability['admitTask'];
  /** Extends held key slots' leases (see `Store.renewSlots`). */
  renewSlots: FlowControlCapability['renewSlots'];
  /** Gives key slots back (see `Store.releaseSlots`). */
  releaseSlots: FlowControlCapability['releaseSlots'];
  /** A job's tasks waiting for a key slot or a rate limit, per stage (see `Store.waitingTasks`). */
  waitingTasks: FlowControlCapability['waitingTasks'];
  /** Applies missing migrations now; returns the ids this call applied (empty when up to date). */
  migrate(): Promise<number[]>;
  /**
   * Calls `listener` with each job id cancelled through any store on this schema, at once
   * (`LISTEN/NOTIFY`; PGlite within its process). See `Store.onCancel`.
   */
  onCancel(listener: (jobId: string) => void): Promise<() => Promise<void>>;
}

const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

const ALL_QUERIES = {
  acquireLease,
  admitPacks,
  admitTask,
  cancelJob,
  cancelledJobs,
  claimTasks,
  completeTasks,
  createJob,
  findLostTasks,
  findStuckStages,
  finishJob,
  getJob,
  getStages,
  getTask,
  incrementCounter,
  insertTasks,
  listResults,
  listTasks,
  metrics,
  purgeEmptyJobs,
  purgeRemaining,
  purgeTasks,
  reopenDropLaterStages,
  reopenDropLaterTasks,
  reopenFailedTasks,
  reopenJob,
  reopenLatestFailedStage,
  reopenLockJob,
  reopenLockStage,
  reopenStage,
  releaseSlots,
  releaseTasks,
  renewSlots,
  retryTasks,
  sealStage,
  startStage,
  taskRowsIdentity,
  touchTasks,
  waitingTasks,
  advanceSchedule,
  createDelayedJob,
  expireJobs,
  getScheduleStates,
  releaseDueJobs,
  setSchedulePaused,
};
type Queries = { [K in keyof typeof ALL_QUERIES]: string };

const MAX_PAGE = 10_000;

/**
 * A {@link Store} on PostgreSQL — a `pg` Pool, a connection string (inline or a secret), or an
 * in-process PGlite — with one implementation for both engines. `init()` applies the shipped
 * migrations into `schema` under an advisory lock.
 *
 * @throws ValidationError when `schema` is not a plain lower-case identifier.
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStoreImpl(options);
}

class PostgresStoreImpl implements PostgresStore {
  readonly schema: string;
  private readonly quoted: string;
  private readonly q: Queries;
  private readonly chunkSize: number;
  /** NOTIFY channel of cancellations on this schema. */
  private readonly cancelChannel: string;
  private readonly listJobsTexts = new Map<string, string>();
  private adapterPromise: Promise<SqlAdapter> | undefined;
  private initPromise: Promise<number[]> | undefined;
  private closed = false;

  constructor(private readonly options: PostgresStoreOptions) {
    this.schema = options.schema ?? 'switchyard';
    this.quoted = quoteSchema(this.schema);
    // Schema escaped once; every statement text is built here, values always go as $n.
    this.q = Object.fromEntries(
      Object.entries(ALL_QUERIES).map(([k, build]) => [k, build(this.quoted)]),
    ) as Queries;
    this.chunkSize = Math.max(1, options.insertChunkSize ?? 5000);
    this.cancelChannel = `${this.schema.slice(0, 50)}_cancel`;
  }

  private db(): Promise<SqlAdapter> {
    if (this.closed)
      return Promise.reject(
        new SwitchyardError('CLOSED', '[switchyard] [postgres] store used after close()'),
      );
    this.adapterPromise ??= connect(this.options, 'postgresStore').then((c) => c.adapter);
    return this.adapterPromise;
  }

  private async rows<R>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.db()).query<R>(text, params);
  }

  async init(): Promise<void> {
    this.initPromise ??= this.migrate();
    // A failed attempt may be retried by the next caller.
    this.initPromise.catch(() => {
      this.initPromise = undefined;
    });
    await this.initPromise;
  }

  async taskRowsIdentity(): Promise<string> {
    await this.init();
    const [row] = await this.rows<{ id: string }>(this.q.taskRowsIdentity);
    return row!.id;
  }

  async migrate(): Promise<number[]> {
    return migrate(await this.db(), this.schema, this.quoted);
  }

  async createJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    const params = [
      job.id,
      job.name,
      jsonText(job.params, 'params'),
      job.transport,
      job.stageCount,
      job.idempotencyKey ?? null,
      job.priority === undefined || job.priority === 'normal' ? null : job.priority,
    ];
    const timed = job.runAt !== undefined || job.deadlineAt !== undefined;
    const [row] = timed
      ? await this.rows<JobRow>(this.q.createDelayedJob, [
          ...params,
          job.runAt ?? null,
          job.deadlineAt ?? null,
        ])
      : await this.rows<JobRow>(this.q.createJob, params);
    if (row) return { job: toJob(row), created: true };
    const existing = await this.getJob(job.id);
    if (!existing)
      throw new SwitchyardError(
        'BACKEND_ERROR',
        `[switchyard] [postgres] job ${job.id} vanished during createJob`,
      );
    return { job: existing, created: false };
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const [row] = await this.rows<JobRow>(this.q.getJob, [jobId]);
    return row ? toJob(row) : undefined;
  }

  async getStages(jobId: string): Promise<StageRecord[]> {
    return (await this.rows<StageRow>(this.q.getStages, [jobId])).map(toStage);
  }

  async startStage(
    jobId: string,
    stage: number,
    stageName: string,
  ): Promise<{ advanced: boolean; job: JobRecord; stage?: StageRecord }> {
    const [row] = await this.rows<JobRow>(this.q.startStage, [jobId, stage, stageName]);
    if (row) {
      const job = toJob(row);
      // The stage row was inserted by the same statement with these values.
      const created: StageRecord = {
        jobId,
        index: stage,
        name: stageName,
        status: 'fanning_out',
        total: null,
        created: 0,
        succeeded: 0,
        failed: 0,
        running: 0,
        released: null,
        startedAt: job.updatedAt,
      };
      return { advanced: true, job, stage: created };
    }
    // Lost the race (or nothing to do): a new statement sees the winner's committed state.
    const [job, stages] = await Promise.all([this.getJob(jobId), this.getStages(jobId)]);
    if (!job)
      throw new SwitchyardError('JOB_NOT_FOUND', `[switchyard] [postgres] job ${jobId} not found`);
    const current = stages.find((s) => s.index === stage);
    return { advanced: false, job, ...(current ? { stage: current } : {}) };
  }

  async insertTasks(jobId: string, stage: number, tasks: readonly NewTask[]): Promise<number> {
    if (tasks.length === 0) return 0;
    // Lock order (README): new task rows in key order, so two copies of one fan-out (a redelivered
    // stage message) wait on each other's keys in one direction. Fan-outs yield in index order.
    const order = tasks.every((t, i) => i === 0 || tasks[i - 1]!.index < t.index)
      ? undefined
      : tasks.map((_, i) => i).sort((a, b) => tasks[a]!.index - tasks[b]!.index);
    const ordered = order ? order.map((i) => tasks[i]!) : tasks;
    const chunks: (readonly NewTask[])[] = [];
    for (let i = 0; i < ordered.length; i += this.chunkSize)
      chunks.push(ordered.slice(i, i + this.chunkSize));
    const db = await this.db();
    const runChunk = async (chunk: readonly NewTask[], offset: number) => {
      const idx = chunk.map((t) => t.index);
      const inputs = jsonArray(
        chunk.map((t) => t.input),
        (i) => `tasks[${order ? order[offset + i] : offset + i}].input`,
      );
      const batchIds = chunk.map((t) => t.batchId ?? null);
      const [row] = await db.query<{ inserted: number; stage_exists: boolean }>(
        this.q.insertTasks,
        [jobId, stage, idx, inputs, batchIds],
      );
      if (!row?.stage_exists) {
        throw new SwitchyardError(
          'INVALID_INPUT',
          `[switchyard] [postgres] stage ${stage} of job ${jobId} has not started`,
        );
      }
      return row.inserted;
    };
    // Chunks are independent (disjoint indexes), so a pool runs a few at once.
    let inserted = 0;
    let next = 0;
    const workers = Array.from(
      { length: Math.min(db.capabilities.parallelism, chunks.length) },
      async () => {
        while (next < chunks.length) {
          const i = next++;
          const n = await runChunk(chunks[i]!, i * this.chunkSize);
          inserted += n;
        }
      },
    );
    await Promise.all(workers);
    return inserted;
  }

  async sealStage(
    jobId: string,
    stage: number,
    total: number,
  ): Promise<StageCompletion | undefined> {
    const [row] = await this.rows<{
      status: string;
      succeeded: number;
      failed: number;
      total: number;
    }>(this.q.sealStage, [jobId, stage, total]);
    if (row?.status !== 'complete') return undefined;
    return { jobId, stage, succeeded: row.succeeded, failed: row.failed, total: row.total };
  }

  async claimTasks(refs: readonly ClaimRef[]): Promise<TaskClaim[]> {
    if (refs.length === 0) return [];
    const rows = await this.rows<{
      ord: string;
      outcome: TaskClaim['outcome'];
      attempts: number | null;
      input: unknown;
    }>(this.q.claimTasks, [
      ...keyColumns(refs.map(keyOf)),
      refs.map((r) => r.withInput === true),
      refs.map((r) => r.admitOnly === true),
      refs.map((r) => Math.max(1, Math.floor(r.minAttempt ?? 1))),
    ]);
    const claims: TaskClaim[] = refs.map((r) => ({ taskId: r.taskId, outcome: 'missing' }));
    for (const row of rows) {
      const i = Number(row.ord) - 1;
      const ref = refs[i];
      if (!ref) continue;
      claims[i] =
        row.outcome === 'run'
          ? {
              taskId: ref.taskId,
              outcome: 'run',
              attempt: row.attempts ?? 1,
              ...(ref.withInput ? { input: row.input ?? undefined } : {}),
            }
          : { taskId: ref.taskId, outcome: row.outcome };
    }
    return claims;
  }

  async admitPacks(packs: readonly PackAdmission[]): Promise<boolean[]> {
    if (packs.length === 0) return [];
    const [jobIds, jobNos, stages] = keyColumns(
      packs.map((p) => ({ jobId: p.jobId, stage: p.stage, index: 0 })),
    );
    const rows = await this.rows<{ ords: number[] }>(this.q.admitPacks, [
      jobIds,
      jobNos,
      stages,
      packs.map((p) => p.tasks),
    ]);
    const admitted = packs.map(() => false);
    for (const ord of rows[0]?.ords ?? []) admitted[ord - 1] = true;
    return admitted;
  }

  async completeTasks(outcomes: readonly TaskOutcome[]): Promise<CompleteTasksResult> {
    if (outcomes.length === 0) return { applied: [], completedStages: [] };
    const rows = await this.rows<{
      kind: 'applied' | 'stage';
      job_id: string;
      stage: number;
      ords: number[] | null;
      succeeded: number;
      failed: number;
      total: number;
    }>(this.q.completeTasks, [
      ...keyColumns(outcomes.map(keyOf)),
      outcomes.map((o) => o.status),
      jsonArray(
        outcomes.map((o) => o.result),
        (i) => `outcomes[${i}].result`,
      ),
      jsonArray(
        outcomes.map((o) => o.error),
        (i) => `outcomes[${i}].error`,
      ),
      outcomes.map((o) => o.timedOut === true),
      ...attemptColumns(outcomes),
    ]);
    const applied: string[] = [];
    const completedStages: StageCompletion[] = [];
    for (const r of rows) {
      if (r.kind === 'applied') {
        for (const ord of r.ords ?? []) applied.push(outcomes[ord - 1]!.taskId);
      } else
        completedStages.push({
          jobId: r.job_id,
          stage: r.stage,
          succeeded: r.succeeded,
          failed: r.failed,
          total: r.total,
        });
    }
    return { applied, completedStages };
  }

  async retryTasks(retries: readonly TaskRetry[]): Promise<void> {
    if (retries.length === 0) return;
    await this.rows(this.q.retryTasks, [
      ...keyColumns(retries.map(keyOf)),
      jsonArray(
        retries.map((r) => r.error),
        (i) => `retries[${i}].error`,
      ),
      retries.map((r) => r.timedOut === true),
      ...attemptColumns(retries),
    ]);
  }

  async releaseTasks(windows: readonly StageWindow[]): Promise<ReleasedTasks[]> {
    if (windows.length === 0) return [];
    const [jobIds, jobNos, stages] = keyColumns(
      windows.map((w) => ({ jobId: w.jobId, stage: w.stage, index: 0 })),
    );
    const rows = await this.rows<{
      job_id: string;
      stage: number;
      indexes: number[];
      inputs: unknown[];
    }>(this.q.releaseTasks, [
      jobIds,
      jobNos,
      stages,
      windows.map((w) => windowWidth(w.window)),
      windows.map((w) => w.fanOut === true),
    ]);
    return rows.map((r) => ({
      jobId: r.job_id,
      stage: r.stage,
      tasks: r.indexes.map((index, i) => ({ index, input: r.inputs[i] ?? undefined })),
    }));
  }

  async touchTasks(taskIds: readonly string[]): Promise<void> {
    const keys = taskIds.map((id) => parseTaskId(id)).filter((k) => k !== undefined);
    if (keys.length === 0) return;
    await this.rows(this.q.touchTasks, [
      keys.map((k) => k.jobId),
      keys.map((k) => k.stage),
      keys.map((k) => k.index),
    ]);
  }

  async finishJob(
    jobId: string,
    outcome: { status: 'succeeded' | 'failed'; result?: unknown; error?: ErrorInfo },
  ): Promise<boolean> {
    const rows = await this.rows(this.q.finishJob, [
      jobId,
      outcome.status,
      jsonText(outcome.result, 'result'),
      jsonText(outcome.error, 'error'),
    ]);
    return rows.length === 1;
  }

  async cancelJob(jobId: string): Promise<boolean> {
    const [row] = await this.rows<{ cancelled: number }>(this.q.cancelJob, [jobId]);
    if (row?.cancelled !== 1) return false;
    // Best effort: a worker that misses it learns through cancelledJobs at its next tick.
    await this.rows('SELECT pg_notify($1, $2)', [this.cancelChannel, jobId]).catch(() => {});
    return true;
  }

  async onCancel(listener: (jobId: string) => void): Promise<() => Promise<void>> {
    return (await this.db()).listen(this.cancelChannel, listener);
  }

  async cancelledJobs(jobIds: readonly string[]): Promise<string[]> {
    if (jobIds.length === 0) return [];
    const rows = await this.rows<{ id: string }>(this.q.cancelledJobs, [[...new Set(jobIds)]]);
    return rows.map((r) => r.id);
  }

  async listJobs(filter: ListJobsFilter = {}): Promise<JobPage> {
    const limit = jobPageSize(filter.limit);
    const after = filter.cursor === undefined ? undefined : decodeJobCursor(filter.cursor);
    const statuses =
      filter.status === undefined
        ? null
        : typeof filter.status === 'string'
          ? [filter.status]
          : [...filter.status];
    const shape: ListJobsShape = {};
    const params: unknown[] = [];
    if (statuses?.length === 1) {
      shape.status = 'one';
      params.push(statuses[0]);
    } else if (statuses) {
      shape.status = 'many';
      params.push(statuses);
    }
    if (filter.name !== undefined) {
      shape.name = true;
      params.push(filter.name);
    }
    if (filter.transport !== undefined) {
      shape.transport = true;
      params.push(filter.transport);
    }
    if (filter.priority !== undefined) {
      shape.priority = true;
      params.push(filter.priority);
    }
    if (filter.createdAfter) {
      shape.createdAfter = true;
      params.push(filter.createdAfter);
    }
    if (filter.createdBefore) {
      shape.createdBefore = true;
      params.push(filter.createdBefore);
    }
    if (after) {
      shape.cursor = true;
      params.push(after.createdUs, after.id);
    }
    // One extra row tells whether another page exists.
    params.push(limit + 1);
    const rows = await this.rows<JobSummaryRow>(this.listJobsText(shape), params);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const jobs = page.map(toJobSummary);
    return rows.length > limit && last ? { jobs, nextCursor: encodeJobCursor(last) } : { jobs };
  }

  /** The statement for one combination of filters, built once per store. */
  private listJobsText(shape: ListJobsShape): string {
    const key = JSON.stringify(shape);
    let text = this.listJobsTexts.get(key);
    if (!text) {
      text = listJobs(this.quoted, shape);
      this.listJobsTexts.set(key, text);
    }
    return text;
  }

  async reopenTasks(request: ReopenTasksRequest): Promise<ReopenedTasks> {
    const named = request.taskIds?.map((id) => {
      const key = parseTaskId(id);
      if (key?.jobId !== request.jobId)
        throw new ValidationError(
          `[switchyard] [postgres] task ${id} is not a task of job ${request.jobId}`,
          [{ path: 'taskIds', message: `unknown task ${id}` }],
        );
      return key;
    });
    const stages = new Set(named?.map((k) => k.stage));
    if (request.stage !== undefined) stages.add(request.stage);
    if (named && stages.size > 1)
      throw new ValidationError('[switchyard] [postgres] taskIds must name tasks of one stage', [
        { path: 'taskIds', message: `tasks of stages ${[...stages].join(', ')}` },
      ]);
    const db = await this.db();
    return db.transaction(async (tx) => {
      const [jobRow] = await tx.query<JobRow>(this.q.reopenLockJob, [request.jobId]);
      if (!jobRow)
        throw new SwitchyardError(
          'JOB_NOT_FOUND',
          `[switchyard] [postgres] job ${request.jobId} not found`,
        );
      const job = toJob(jobRow);
      const unchanged: ReopenedTasks = { job, taskIds: [] };
      if (job.status === 'cancelled' || job.status === 'queued') return unchanged;
      let stage = request.stage ?? named?.[0]?.stage;
      if (stage === undefined) {
        const [latest] = await tx.query<{ idx: number | null }>(this.q.reopenLatestFailedStage, [
          job.id,
        ]);
        if (latest?.idx === null || latest?.idx === undefined) return unchanged;
        stage = latest.idx;
      }
      if (named?.length === 0) return unchanged;
      const [st] = await tx.query<{ status: string; created: number; rows: number }>(
        this.q.reopenLockStage,
        [job.id, stage],
      );
      // Rows missing: a purge is deleting this job.
      if (!st || st.rows < st.created) return unchanged;
      if (job.status === 'running' && (stage !== job.currentStage || st.status === 'complete'))
        return unchanged;
      const indexes = named ? named.map((k) => k.index) : null;
      const reopened = await tx.query<{ idx: number }>(this.q.reopenFailedTasks, [
        job.id,
        stage,
        indexes,
      ]);
      if (reopened.length === 0) return unchanged;
      await tx.query(this.q.reopenDropLaterStages, [job.id, stage]);
      await tx.query(this.q.reopenDropLaterTasks, [job.id, stage]);
      await tx.query(this.q.reopenStage, [job.id, stage, reopened.length]);
      const [running] = await tx.query<JobRow>(this.q.reopenJob, [job.id, stage]);
      return {
        job: toJob(running!),
        stage,
        taskIds: reopened
          .map((r) => r.idx)
          .sort((a, b) => a - b)
          .map((idx) => taskId(job.id, stage, idx)),
      };
    });
  }

  async purgeJobs(filter: PurgeFilter, batch: PurgeBatch = {}): Promise<PurgeResult> {
    const requested =
      filter.status === undefined
        ? TERMINAL_JOB_STATUSES
        : typeof filter.status === 'string'
          ? [filter.status]
          : filter.status;
    const statuses = requested.filter((s) => TERMINAL_JOB_STATUSES.includes(s));
    if (statuses.length === 0) return { jobs: 0, tasks: 0, more: false };
    const maxJobs = Math.max(1, Math.floor(batch.jobs ?? 100));
    const maxTasks = Math.max(1, Math.floor(batch.tasks ?? 5000));
    const match = [statuses, filter.finishedBefore, filter.name ?? null, maxJobs];
    const [tasks] = await this.rows<{ tasks: number }>(this.q.purgeTasks, [...match, maxTasks]);
    const [jobs] = await this.rows<{ jobs: number }>(this.q.purgeEmptyJobs, match);
    const [left] = await this.rows<{ more: boolean }>(this.q.purgeRemaining, match.slice(0, 3));
    return { jobs: jobs?.jobs ?? 0, tasks: tasks?.tasks ?? 0, more: left?.more === true };
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const key = parseTaskId(id);
    if (!key) return undefined;
    const [row] = await this.rows<TaskRow>(this.q.getTask, [key.jobId, key.stage, key.index]);
    return row ? toTask(row) : undefined;
  }

  async listTasks(jobId: string, options: ListTasksOptions = {}): Promise<TaskPage> {
    const limit = Math.max(1, Math.min(options.limit ?? 100, MAX_PAGE));
    const [afterStage, afterIndex] = options.cursor
      ? decodeCursor(options.cursor)
      : options.stage !== undefined && options.afterIndex !== undefined
        ? [options.stage, options.afterIndex]
        : [-1, -1];
    // One extra row tells whether another page exists.
    const rows = await this.rows<TaskRow>(this.q.listTasks, [
      jobId,
      options.stage ?? null,
      options.status ?? null,
      afterStage,
      afterIndex,
      limit + 1,
      options.batchId ?? null,
    ]);
    const tasks = rows.slice(0, limit).map(toTask);
    const last = tasks[tasks.length - 1];
    return rows.length > limit && last
      ? { tasks, nextCursor: encodeCursor(last.stage, last.index) }
      : { tasks };
  }

  async listResults(
    jobId: string,
    stage: number,
    page: { afterIndex: number; limit: number },
  ): Promise<StoredResult[]> {
    const limit = Math.max(1, Math.min(Math.floor(page.limit), MAX_PAGE));
    const rows = await this.rows<{ idx: number; result: unknown }>(this.q.listResults, [
      jobId,
      stage,
      Math.floor(page.afterIndex),
      limit,
    ]);
    return rows.map((r) => ({ index: r.idx, result: r.result ?? undefined }));
  }

  async incrementCounter(transport: string, name: string, by: number): Promise<void> {
    await this.rows(this.q.incrementCounter, [transport, name, by]);
  }

  async metrics(): Promise<TransportMetrics[]> {
    const rows = await this.rows<MetricsRow>(this.q.metrics);
    return rows.map((r) => ({
      transport: r.transport,
      jobs: {
        total: r.jobs_total,
        queued: r.queued,
        running: r.running,
        succeeded: r.succeeded,
        failed: r.failed,
        cancelled: r.cancelled,
      },
      jobLatencyMs: { mean: num(r.latency_mean), p95: num(r.latency_p95) },
      queueWaitMs: { mean: num(r.wait_mean), p95: num(r.wait_p95) },
      tasksPerSecond:
        r.running_ms && r.running_ms > 0
          ? (Number(r.finished_tasks) * 1000) / Number(r.running_ms)
          : null,
      tasks: { total: r.tasks_total, succeeded: r.tasks_succeeded, failed: r.tasks_failed },
      retries: Number(r.retries),
      timeouts: Number(r.timeouts),
      poisoned: r.tasks_failed,
      redrives: r.redrives ?? {},
      waiting: { concurrency: r.waiting_concurrency, rateLimit: r.waiting_rate_limit },
      waitingForWindow: r.waiting_for_window,
    }));
  }

  async admitTask(admission: FlowAdmission): Promise<FlowDecision> {
    const { slot, rate } = admission;
    const [row] = await this.rows<{ outcome: FlowDecision['outcome']; retry_after_ms: string }>(
      this.q.admitTask,
      [
        admission.jobId,
        admission.stage,
        admission.index,
        slot?.scope ?? null,
        slot?.key ?? null,
        slot?.limit ?? null,
        slot?.holder ?? null,
        slot ? Math.max(1, Math.round(slot.leaseMs)) : null,
        rate?.scope ?? null,
        rate?.key ?? null,
        rate?.limit ?? null,
        rate ? Math.max(1, Math.round(rate.periodMs)) : null,
        Math.max(0, Math.round(admission.waitMs)),
      ],
    );
    if (!row)
      throw new SwitchyardError(
        'BACKEND_ERROR',
        '[switchyard] [postgres] flow_admit returned no row',
      );
    return row.outcome === 'rateLimit'
      ? { outcome: 'rateLimit', retryAfterMs: Number(row.retry_after_ms) }
      : { outcome: row.outcome };
  }

  async renewSlots(slots: readonly SlotRef[], leaseMs: number): Promise<string[]> {
    if (slots.length === 0) return [];
    const rows = await this.rows<{ holder: string }>(this.q.renewSlots, [
      ...slotColumns(slots),
      Math.max(1, Math.round(leaseMs)),
    ]);
    return rows.map((r) => r.holder);
  }

  async releaseSlots(slots: readonly SlotRef[]): Promise<void> {
    if (slots.length === 0) return;
    await this.rows(this.q.releaseSlots, slotColumns(slots));
  }

  async waitingTasks(jobId: string): Promise<StageWaiting[]> {
    const rows = await this.rows<{ stage: number; concurrency: number; rate_limit: number }>(
      this.q.waitingTasks,
      [jobId],
    );
    return rows.map((r) => ({
      stage: r.stage,
      concurrency: r.concurrency,
      rateLimit: r.rate_limit,
    }));
  }

  async findStuck({
    olderThanMs,
    limit,
  }: {
    olderThanMs: number;
    limit: number;
  }): Promise<StuckWork[]> {
    if (limit <= 0) return [];
    const age = Math.max(0, Math.floor(olderThanMs));
    const found: StuckWork[] = [];
    const stageRows = await this.rows<{
      kind: StuckWork['kind'];
      job_id: string;
      transport: string;
      stage: number | null;
    }>(this.q.findStuckStages, [age, limit]);
    for (const r of stageRows) {
      const base = { jobId: r.job_id, transport: r.transport };
      if (r.kind === 'job-not-started' || r.kind === 'finalize-not-done')
        found.push({ kind: r.kind, ...base });
      else if (r.kind === 'fanout-incomplete' || r.kind === 'stage-not-advanced')
        found.push({ kind: r.kind, ...base, stage: r.stage ?? 0 });
    }
    const budget = limit - found.length;
    if (budget <= 0) return found;
    const lost = await this.rows<{ job_id: string; transport: string; stage: number; idx: number }>(
      this.q.findLostTasks,
      [age, budget, MAX_REDRIVE_DOUBLINGS],
    );
    const byStage = new Map<string, Extract<StuckWork, { kind: 'task-message-lost' }>>();
    for (const r of lost) {
      const key = `${r.job_id}\u0000${r.stage}`;
      let item = byStage.get(key);
      if (!item) {
        item = {
          kind: 'task-message-lost',
          jobId: r.job_id,
          transport: r.transport,
          stage: r.stage,
          taskIds: [],
        };
        byStage.set(key, item);
        found.push(item);
      }
      item.taskIds.push(taskId(r.job_id, r.stage, r.idx));
    }
    return found;
  }

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (
      (await this.rows(this.q.acquireLease, [name, owner, Math.max(1, Math.round(ttlMs))]))
        .length === 1
    );
  }

  async ping(): Promise<void> {
    await this.rows('SELECT 1');
  }

  async releaseDueJobs(limit: number): Promise<ReleasedJob[]> {
    const rows = await this.rows<{ id: string; transport: string }>(this.q.releaseDueJobs, [limit]);
    return rows.map((r) => ({ jobId: r.id, transport: r.transport }));
  }

  async expireJobs(limit: number): Promise<string[]> {
    const error: ErrorInfo = {
      name: 'SwitchyardError',
      code: 'DEADLINE_EXCEEDED',
      message: 'the job did not finish by its deadline',
    };
    const rows = await this.rows<{ id: string }>(this.q.expireJobs, [limit, JSON.stringify(error)]);
    // As cancelJob: running handlers of these jobs are aborted (best effort, as there).
    for (const { id } of rows)
      await this.rows('SELECT pg_notify($1, $2)', [this.cancelChannel, id]).catch(() => {});
    return rows.map((r) => r.id);
  }

  async getScheduleStates(): Promise<ScheduleState[]> {
    const rows = await this.rows<{
      name: string;
      paused: boolean;
      cursor_at: Date | null;
      last_fire_at: Date | null;
      last_job_id: string | null;
    }>(this.q.getScheduleStates);
    return rows.map((r) => ({
      name: r.name,
      paused: r.paused,
      ...(r.cursor_at ? { cursor: r.cursor_at } : {}),
      ...(r.last_fire_at ? { lastFireAt: r.last_fire_at } : {}),
      ...(r.last_job_id ? { lastJobId: r.last_job_id } : {}),
    }));
  }

  async advanceSchedule(advance: ScheduleAdvance): Promise<boolean> {
    const rows = await this.rows(this.q.advanceSchedule, [
      advance.name,
      advance.cursor,
      advance.lastFireAt ?? null,
      advance.lastJobId ?? null,
    ]);
    return rows.length > 0;
  }

  async setSchedulePaused(name: string, paused: boolean): Promise<void> {
    await this.rows(this.q.setSchedulePaused, [name, paused]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const adapter = await this.adapterPromise?.catch(() => undefined);
    await adapter?.close();
  }
}

interface MetricsRow {
  transport: string;
  jobs_total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  latency_mean: number | null;
  latency_p95: number | null;
  running_ms: number | null;
  tasks_total: number;
  tasks_succeeded: number;
  tasks_failed: number;
  retries: number;
  timeouts: number;
  wait_mean: number | null;
  wait_p95: number | null;
  finished_tasks: number;
  redrives: Record<string, number> | null;
  waiting_concurrency: number;
  waiting_for_window: number;
  waiting_rate_limit: number;
}

/** Slot refs as three parallel arrays, in key order (renewals and releases lock in one order). */
function slotColumns(slots: readonly SlotRef[]): [string[], string[], string[]] {
  const sorted = [...slots].sort(
    (a, b) => compare(a.scope, b.scope) || compare(a.key, b.key) || compare(a.holder, b.holder),
  );
  return [sorted.map((s) => s.scope), sorted.map((s) => s.key), sorted.map((s) => s.holder)];
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

interface Key {
  jobId: string;
  stage: number;
  index: number;
}

/** A window as a whole number of tasks for the statement's bigint[] (NaN or below 0: 0). */
const windowWidth = (window: number): number =>
  Math.max(0, Math.min(Math.floor(window), Number.MAX_SAFE_INTEGER)) || 0;

/** The (job, stage, index) key of a ref; an id that is not a core task id matches no row. */
function keyOf(ref: TaskRef): Key {
  return { jobId: ref.jobId, stage: ref.stage, index: ref.index };
}

/** The attempt columns shared by completions and retries: number, start (epoch ms). */
function attemptColumns(
  ends: readonly (TaskOutcome | TaskRetry)[],
): [(number | null)[], (number | null)[]] {
  return [ends.map((e) => e.attempt ?? null), ends.map((e) => e.startedAt?.getTime() ?? null)];
}

/**
 * A batch's key columns, each job id sent once: `[jobIds, jobNos, stages, indexes]`, where a key's
 * job is `jobIds[jobNo - 1]`. A batch is mostly one job, and its id repeated per task was the
 * largest part of what a worker sent.
 */
function keyColumns(keys: readonly Key[]): [string[], number[], number[], number[]] {
  const jobIds: string[] = [];
  const numbers = new Map<string, number>();
  const jobNos = keys.map((k) => {
    let no = numbers.get(k.jobId);
    if (no === undefined) {
      no = jobIds.push(k.jobId);
      numbers.set(k.jobId, no);
    }
    return no;
  });
  return [jobIds, jobNos, keys.map((k) => k.stage), keys.map((k) => k.index)];
}

function encodeCursor(stage: number, index: number): string {
  return Buffer.from(`${stage}:${index}`).toString('base64url');
}

function decodeCursor(cursor: string): [number, number] {
  const match = /^(\d{1,9}):(-?\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match)
    throw new ValidationError('cursor is not one a previous page returned', [
      { path: 'cursor', message: 'not a cursor from a previous page' },
    ]);
  return [Number(match[1]), Number(match[2])];
}
