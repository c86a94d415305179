import { SwitchyardError, ValidationError } from '../errors.js';
import { taskId as makeTaskId } from '../ids.js';
import { FINISHED_STATUSES } from '../operations/statuses.js';
import type {
  ClaimRef,
  CompleteTasksResult,
  FlowAdmission,
  FlowDecision,
  JobPage,
  JobRecord,
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
  TaskRetry,
  TasksWaiting,
  TransportMetrics,
} from '../store.js';
import { jobPageSize, MAX_REDRIVE_DOUBLINGS } from '../store.js';
import { meanAndP95 } from '../util/stats.js';
import { MemoryFlowControl } from './flow-control.js';
import {
  decodeJobCursor,
  encodeJobCursor,
  isAfterCursor,
  matchesListFilter,
  matchesPurgeFilter,
  newestFirst,
  toSummary,
} from './job-listing.js';

/** What purged records contributed to a path's metrics: counts and sums, so means stay exact. */
interface PurgedTotals {
  succeeded: number;
  failed: number;
  cancelled: number;
  latencySumMs: number;
  latencyCount: number;
  runningMs: number;
  finishedTasks: number;
  tasks: number;
  tasksSucceeded: number;
  tasksFailed: number;
  retries: number;
  timeouts: number;
  waitSumMs: number;
  waitCount: number;
}

const noPurgedTotals = (): PurgedTotals => ({
  succeeded: 0,
  failed: 0,
  cancelled: 0,
  latencySumMs: 0,
  latencyCount: 0,
  runningMs: 0,
  finishedTasks: 0,
  tasks: 0,
  tasksSucceeded: 0,
  tasksFailed: 0,
  retries: 0,
  timeouts: 0,
  waitSumMs: 0,
  waitCount: 0,
});

interface JobState {
  job: JobRecord;
  stages: StageRecord[];
  /** Task ids per stage, kept in index order (see `orderedIds`). */
  taskIds: string[][];
  /** Stages whose `taskIds` may be out of index order after an out-of-order insert. */
  unsorted: Set<number>;
  /** Per windowed stage, when its released range last grew (ms since the epoch). */
  releasedAt: number[];
}

/**
 * A complete in-process {@link Store}: the same semantics as the PostgreSQL store (every method
 * atomic, the barrier exact), for tests, the CLI and single-process hosts. State is lost with the
 * process.
 */
export function memoryStore(): Store {
  return new MemoryStore();
}

class MemoryStore implements Store {
  private readonly jobs = new Map<string, JobState>();
  private readonly tasks = new Map<string, TaskRecord>();
  /** Times the reconciler re-sent each task (see {@link Store.touchTasks}). */
  private readonly redrives = new Map<string, number>();
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly leases = new Map<string, { owner: string; expiresAt: number }>();
  private readonly schedules = new Map<string, ScheduleState>();
  private readonly purged = new Map<string, PurgedTotals>();
  private readonly cancelListeners = new Set<(jobId: string) => void>();
  private readonly flow = new MemoryFlowControl();
  /** Tasks marked waiting by a refused admission, and for what (see {@link Store.admitTask}). */
  private readonly waiting = new Map<string, keyof TasksWaiting>();
  private closed = false;

  async createJob(input: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    this.assertOpen();
    const existing = this.jobs.get(input.id);
    if (existing) return { job: copyJob(existing.job), created: false };
    const now = new Date();
    const job: JobRecord = {
      id: input.id,
      name: input.name,
      params: cloneJson(input.params),
      transport: input.transport,
      status: input.runAt ? 'scheduled' : 'queued',
      currentStage: -1,
      stageCount: input.stageCount,
      createdAt: now,
      updatedAt: now,
      ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
      ...(input.runAt ? { runAt: new Date(input.runAt) } : {}),
      ...(input.deadlineAt ? { deadlineAt: new Date(input.deadlineAt) } : {}),
      ...(input.priority === undefined || input.priority === 'normal'
        ? {}
        : { priority: input.priority }),
    };
    this.jobs.set(job.id, { job, stages: [], taskIds: [], unsorted: new Set(), releasedAt: [] });
    return { job: copyJob(job), created: true };
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const state = this.jobs.get(jobId);
    return state ? copyJob(state.job) : undefined;
  }

  async getStages(jobId: string): Promise<StageRecord[]> {
    return (this.jobs.get(jobId)?.stages ?? []).filter(Boolean).map((s) => ({ ...s }));
  }

  async startStage(jobId: string, stage: number, stageName: string) {
    this.assertOpen();
    const state = this.requireJob(jobId);
    const { job } = state;
    let advanced = false;
    if (
      !FINISHED_STATUSES.has(job.status) &&
      job.currentStage === stage - 1 &&
      stage < job.stageCount
    ) {
      const now = new Date();
      job.currentStage = stage;
      job.status = 'running';
      job.startedAt ??= now;
      job.updatedAt = now;
      state.stages[stage] = {
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
        startedAt: now,
      };
      state.taskIds[stage] = [];
      advanced = true;
    }
    const stageRecord = state.stages[stage];
    return { advanced, job: copyJob(job), ...(stageRecord ? { stage: { ...stageRecord } } : {}) };
  }

  async insertTasks(jobId: string, stage: number, tasks: readonly NewTask[]): Promise<number> {
    this.assertOpen();
    const state = this.requireJob(jobId);
    const stageRecord = state.stages[stage];
    const ids = state.taskIds[stage];
    if (!stageRecord || !ids)
      throw new SwitchyardError('INVALID_INPUT', `stage ${stage} of job ${jobId} has not started`);
    const now = new Date();
    let inserted = 0;
    for (const task of tasks) {
      const id = makeTaskId(jobId, stage, task.index);
      if (this.tasks.has(id)) continue;
      this.tasks.set(id, {
        id,
        jobId,
        stage,
        index: task.index,
        status: 'pending',
        attempts: 0,
        timeouts: 0,
        input: task.input,
        createdAt: now,
        updatedAt: now,
        ...(task.batchId === undefined ? {} : { batchId: task.batchId }),
      });
      const previous = ids[ids.length - 1];
      if (previous !== undefined && this.tasks.get(previous)!.index > task.index)
        state.unsorted.add(stage);
      ids.push(id);
      inserted++;
    }
    stageRecord.created += inserted;
    return inserted;
  }

  async sealStage(
    jobId: string,
    stage: number,
    total: number,
  ): Promise<StageCompletion | undefined> {
    this.assertOpen();
    const record = this.jobs.get(jobId)?.stages[stage];
    if (record?.status !== 'fanning_out') return undefined;
    record.total = total;
    record.status = 'sealed';
    record.sealedAt = new Date();
    return this.completeIfDone(record);
  }

  async claimTasks(refs: readonly ClaimRef[]): Promise<TaskClaim[]> {
    this.assertOpen();
    const now = new Date();
    return refs.map((ref) => {
      const task = this.tasks.get(ref.taskId);
      // The ref's job and stage must be the task's, as the Postgres store's key requires.
      if (!task || task.jobId !== ref.jobId || task.stage !== ref.stage)
        return { taskId: ref.taskId, outcome: 'missing' };
      if (FINISHED_STATUSES.has(task.status)) return { taskId: ref.taskId, outcome: 'terminal' };
      const job = this.jobs.get(task.jobId)?.job;
      if (job?.status !== 'running') return { taskId: ref.taskId, outcome: 'job-inactive' };
      const stage = this.jobs.get(task.jobId)?.stages[task.stage];
      const attempt = Math.max(task.attempts + 1, ref.minAttempt ?? 1);
      if (ref.admitOnly) {
        if (stage) stage.running++;
      } else {
        if (task.status !== 'running' && stage) stage.running++;
        task.status = 'running';
        task.attempts = attempt;
        task.startedAt ??= now;
        task.updatedAt = now;
      }
      return {
        taskId: ref.taskId,
        outcome: 'run',
        attempt,
        ...(ref.withInput ? { input: cloneJson(task.input) } : {}),
      };
    });
  }

  async admitPacks(packs: readonly PackAdmission[]): Promise<boolean[]> {
    this.assertOpen();
    return packs.map((pack) => {
      const entry = this.jobs.get(pack.jobId);
      const stage = entry?.stages[pack.stage];
      if (entry?.job.status !== 'running' || !stage || stage.status === 'complete') return false;
      stage.running += pack.tasks;
      return true;
    });
  }

  /** Records an attempt's end: its number, its start, and the stage's running count. */
  private endAttempt(task: TaskRecord, end: TaskOutcome | TaskRetry, now: Date): void {
    const stage = this.jobs.get(task.jobId)?.stages[task.stage];
    if (stage) {
      stage.running = Math.max(0, stage.running - 1);
    }
    task.attempts = Math.max(task.attempts, end.attempt ?? 0);
    task.startedAt ??= end.startedAt ?? now;
    if (end.timedOut) task.timeouts++;
    task.updatedAt = now;
  }

  async completeTasks(outcomes: readonly TaskOutcome[]): Promise<CompleteTasksResult> {
    this.assertOpen();
    const now = new Date();
    const applied: string[] = [];
    const touched = new Set<StageRecord>();
    for (const outcome of outcomes) {
      const task = this.tasks.get(outcome.taskId);
      if (!task || FINISHED_STATUSES.has(task.status)) continue;
      const stage = this.jobs.get(task.jobId)?.stages[task.stage];
      this.endAttempt(task, outcome, now);
      task.status = outcome.status;
      task.finishedAt = now;
      if (outcome.result !== undefined) task.result = outcome.result;
      if (outcome.error !== undefined) task.error = outcome.error;
      applied.push(task.id);
      if (stage) {
        if (outcome.status === 'succeeded') stage.succeeded++;
        else stage.failed++;
        touched.add(stage);
      }
    }
    const completedStages: StageCompletion[] = [];
    for (const stage of touched) {
      const done = this.completeIfDone(stage);
      if (done) completedStages.push(done);
    }
    return { applied, completedStages };
  }

  async retryTasks(retries: readonly TaskRetry[]): Promise<void> {
    this.assertOpen();
    const now = new Date();
    for (const retry of retries) {
      const task = this.tasks.get(retry.taskId);
      if (!task || FINISHED_STATUSES.has(task.status)) continue;
      this.endAttempt(task, retry, now);
      task.status = 'pending';
      task.error = retry.error;
    }
  }

  async releaseTasks(windows: readonly StageWindow[]): Promise<ReleasedTasks[]> {
    this.assertOpen();
    const released: ReleasedTasks[] = [];
    for (const { jobId, stage, window, fanOut } of windows) {
      const state = this.jobs.get(jobId);
      const record = state?.stages[stage];
      if (state?.job.status !== 'running' || !record || record.status === 'complete') continue;
      if (record.released === null && !fanOut) continue;
      const from = record.released ?? 0;
      const left = record.succeeded + record.failed + record.running;
      const to = Math.min(record.created, left + window);
      if (to <= from) continue;
      record.released = to;
      state.releasedAt[stage] = Date.now();
      const tasks: ReleasedTasks['tasks'] = [];
      const ids = this.orderedIds(state, stage);
      for (let i = this.firstAfter(ids, from - 1); i < ids.length; i++) {
        const task = this.tasks.get(ids[i]!)!;
        if (task.index >= to) break;
        if (task.status === 'pending') tasks.push({ index: task.index, input: task.input });
      }
      if (tasks.length > 0) released.push({ jobId, stage, tasks });
    }
    return released;
  }

  async touchTasks(taskIds: readonly string[]): Promise<void> {
    const now = new Date();
    for (const id of taskIds) {
      const task = this.tasks.get(id);
      if (task && !FINISHED_STATUSES.has(task.status)) {
        task.updatedAt = now;
        this.redrives.set(id, (this.redrives.get(id) ?? 0) + 1);
      }
    }
  }

  async admitTask(admission: FlowAdmission): Promise<FlowDecision> {
    this.assertOpen();
    const task = this.tasks.get(admission.taskId);
    const job = task && this.jobs.get(task.jobId)?.job;
    if (!task || FINISHED_STATUSES.has(task.status) || job?.status !== 'running')
      return { outcome: 'not-runnable' };
    const now = Date.now();
    const decision = this.flow.take(admission.slot, admission.rate, now);
    if (decision.outcome === 'admitted') {
      this.waiting.delete(task.id);
    } else {
      this.waiting.set(task.id, decision.outcome as keyof TasksWaiting);
      const retryAfter = decision.outcome === 'rateLimit' ? decision.retryAfterMs : 0;
      task.updatedAt = new Date(now + admission.waitMs + retryAfter);
    }
    return decision;
  }

  async renewSlots(slots: readonly SlotRef[], leaseMs: number): Promise<string[]> {
    this.assertOpen();
    return this.flow.renew(slots, leaseMs, Date.now());
  }

  async releaseSlots(slots: readonly SlotRef[]): Promise<void> {
    this.assertOpen();
    this.flow.release(slots);
  }

  async waitingTasks(jobId: string): Promise<StageWaiting[]> {
    const byStage = new Map<number, StageWaiting>();
    for (const [id, what] of this.openWaiting()) {
      const task = this.tasks.get(id)!;
      if (task.jobId !== jobId) continue;
      let entry = byStage.get(task.stage);
      if (!entry) {
        entry = { stage: task.stage, concurrency: 0, rateLimit: 0 };
        byStage.set(task.stage, entry);
      }
      entry[what]++;
    }
    return [...byStage.values()].sort((a, b) => a.stage - b.stage);
  }

  /** Waiting marks of open tasks (a mark outlives its task's end; those are dropped here). */
  private *openWaiting(): Iterable<[string, keyof TasksWaiting]> {
    for (const [id, what] of this.waiting) {
      const task = this.tasks.get(id);
      if (!task || FINISHED_STATUSES.has(task.status)) this.waiting.delete(id);
      else yield [id, what];
    }
  }

  async finishJob(
    jobId: string,
    outcome: { status: 'succeeded' | 'failed'; result?: unknown; error?: JobRecord['error'] },
  ) {
    this.assertOpen();
    const job = this.jobs.get(jobId)?.job;
    if (!job || FINISHED_STATUSES.has(job.status)) return false;
    const now = new Date();
    job.status = outcome.status;
    if (outcome.result !== undefined) job.result = cloneJson(outcome.result);
    if (outcome.error !== undefined) job.error = outcome.error;
    job.finishedAt = now;
    job.updatedAt = now;
    return true;
  }

  async cancelJob(jobId: string): Promise<boolean> {
    this.assertOpen();
    const state = this.jobs.get(jobId);
    if (!state || FINISHED_STATUSES.has(state.job.status)) return false;
    this.cancelState(state);
    return true;
  }

  private cancelState(state: JobState, error?: JobRecord['error']): void {
    const now = new Date();
    state.job.status = 'cancelled';
    if (error) state.job.error = error;
    state.job.finishedAt = now;
    state.job.updatedAt = now;
    for (const ids of state.taskIds) {
      for (const id of ids ?? []) {
        const task = this.tasks.get(id);
        if (task && !FINISHED_STATUSES.has(task.status)) {
          task.status = 'cancelled';
          task.finishedAt = now;
          task.updatedAt = now;
        }
      }
    }
    for (const listener of this.cancelListeners) listener(state.job.id);
  }

  async onCancel(listener: (jobId: string) => void): Promise<() => Promise<void>> {
    this.cancelListeners.add(listener);
    return async () => {
      this.cancelListeners.delete(listener);
    };
  }

  async listJobs(filter: ListJobsFilter = {}): Promise<JobPage> {
    const limit = jobPageSize(filter.limit);
    const after = filter.cursor === undefined ? undefined : decodeJobCursor(filter.cursor);
    const matching = [...this.jobs.values()]
      .map((state) => state.job)
      .filter((job) => matchesListFilter(job, filter) && (!after || isAfterCursor(job, after)))
      .sort(newestFirst);
    const page = matching.slice(0, limit);
    const last = page[page.length - 1];
    return matching.length > limit && last
      ? { jobs: page.map(toSummary), nextCursor: encodeJobCursor(last) }
      : { jobs: page.map(toSummary) };
  }

  async cancelledJobs(jobIds: readonly string[]): Promise<string[]> {
    return jobIds.filter((id) => {
      const job = this.jobs.get(id)?.job;
      return !job || job.status === 'cancelled';
    });
  }

  async reopenTasks(request: ReopenTasksRequest): Promise<ReopenedTasks> {
    this.assertOpen();
    const state = this.requireJob(request.jobId);
    const { job } = state;
    const unchanged = (): ReopenedTasks => ({ job: copyJob(job), taskIds: [] });
    let stage = request.stage;
    let failed: TaskRecord[];
    if (request.taskIds) {
      const named = request.taskIds.map((id) => {
        const task = this.tasks.get(id);
        if (task?.jobId !== job.id)
          throw new ValidationError(`task ${id} is not a task of job ${job.id}`, [
            { path: 'taskIds', message: `unknown task ${id}` },
          ]);
        return task;
      });
      const stages = new Set(named.map((t) => t.stage));
      if (stage !== undefined) stages.add(stage);
      if (stages.size > 1)
        throw new ValidationError('taskIds must name tasks of one stage', [
          { path: 'taskIds', message: `tasks of stages ${[...stages].join(', ')}` },
        ]);
      stage ??= named[0]?.stage;
      failed = named.filter((t) => t.status === 'failed').sort((a, b) => a.index - b.index);
    } else {
      stage ??= this.latestFailedStage(state);
      failed =
        stage === undefined
          ? []
          : this.orderedIds(state, stage)
              .map((id) => this.tasks.get(id)!)
              .filter((t) => t.status === 'failed');
    }
    const stageRecord = stage === undefined ? undefined : state.stages[stage];
    if (stage === undefined || !stageRecord || failed.length === 0) return unchanged();
    // Rows missing: a purge is deleting this job.
    if ((state.taskIds[stage]?.length ?? 0) < stageRecord.created) return unchanged();
    if (job.status === 'cancelled' || job.status === 'queued') return unchanged();
    if (
      job.status === 'running' &&
      (stage !== job.currentStage || stageRecord.status === 'complete')
    )
      return unchanged();
    const now = new Date();
    for (let later = stage + 1; later < state.stages.length; later++) {
      for (const id of state.taskIds[later] ?? []) {
        this.tasks.delete(id);
        this.redrives.delete(id);
      }
      state.unsorted.delete(later);
    }
    state.stages.length = stage + 1;
    state.taskIds.length = stage + 1;
    for (const task of failed) {
      task.status = 'pending';
      task.attempts = 0;
      task.timeouts = 0;
      task.updatedAt = now;
      delete task.error;
      delete task.result;
      delete task.startedAt;
      delete task.finishedAt;
      this.redrives.delete(task.id);
    }
    stageRecord.failed -= failed.length;
    if (stageRecord.status === 'complete') stageRecord.status = 'sealed';
    delete stageRecord.completedAt;
    job.status = 'running';
    job.currentStage = stage;
    job.updatedAt = now;
    delete job.finishedAt;
    delete job.result;
    delete job.error;
    return { job: copyJob(job), stage, taskIds: failed.map((t) => t.id) };
  }

  private latestFailedStage(state: JobState): number | undefined {
    for (let stage = state.taskIds.length - 1; stage >= 0; stage--) {
      if (state.stages[stage]?.failed) return stage;
    }
    return undefined;
  }

  async purgeJobs(filter: PurgeFilter, batch: PurgeBatch = {}): Promise<PurgeResult> {
    this.assertOpen();
    const maxJobs = Math.max(1, batch.jobs ?? 100);
    let taskBudget = Math.max(1, batch.tasks ?? 5000);
    const candidates = [...this.jobs.values()]
      .filter((state) => matchesPurgeFilter(state.job, filter))
      .sort((a, b) => a.job.finishedAt!.getTime() - b.job.finishedAt!.getTime());
    const result: PurgeResult = { jobs: 0, tasks: 0, more: candidates.length > maxJobs };
    for (const state of candidates.slice(0, maxJobs)) {
      const totals = this.purgedTotals(state.job.transport);
      for (const ids of state.taskIds) {
        while (ids && ids.length > 0 && taskBudget > 0) {
          const id = ids.pop()!;
          const task = this.tasks.get(id)!;
          this.rollUpTask(totals, task, state.job);
          this.tasks.delete(id);
          this.redrives.delete(id);
          taskBudget--;
          result.tasks++;
        }
      }
      if (state.taskIds.some((ids) => ids && ids.length > 0)) {
        result.more = true;
        break;
      }
      this.rollUpJob(totals, state.job);
      this.jobs.delete(state.job.id);
      result.jobs++;
    }
    return result;
  }

  private purgedTotals(transport: string): PurgedTotals {
    let totals = this.purged.get(transport);
    if (!totals) {
      totals = noPurgedTotals();
      this.purged.set(transport, totals);
    }
    return totals;
  }

  private rollUpTask(totals: PurgedTotals, task: TaskRecord, job: JobRecord): void {
    totals.tasks++;
    if (task.status === 'succeeded') totals.tasksSucceeded++;
    if (task.status === 'failed') totals.tasksFailed++;
    totals.retries += Math.max(0, task.attempts - 1);
    totals.timeouts += task.timeouts;
    if (task.startedAt) {
      totals.waitSumMs += task.startedAt.getTime() - task.createdAt.getTime();
      totals.waitCount++;
    }
    if (job.finishedAt && job.status !== 'cancelled') totals.finishedTasks++;
  }

  private rollUpJob(totals: PurgedTotals, job: JobRecord): void {
    if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled')
      totals[job.status]++;
    if (job.finishedAt && job.status !== 'cancelled') {
      totals.latencySumMs += job.finishedAt.getTime() - job.createdAt.getTime();
      totals.latencyCount++;
      totals.runningMs += job.finishedAt.getTime() - (job.startedAt ?? job.createdAt).getTime();
    }
  }

  async getTask(taskId: string): Promise<TaskRecord | undefined> {
    const task = this.tasks.get(taskId);
    return task ? { ...task } : undefined;
  }

  async listTasks(jobId: string, options: ListTasksOptions = {}): Promise<TaskPage> {
    const state = this.jobs.get(jobId);
    const limit = Math.max(1, Math.min(options.limit ?? 100, 10_000));
    if (!state) return { tasks: [] };
    let [stage, index] = options.cursor
      ? decodeCursor(options.cursor)
      : [options.stage ?? 0, options.stage !== undefined ? (options.afterIndex ?? -1) : -1];
    if (options.stage !== undefined && stage !== options.stage) return { tasks: [] };
    const tasks: TaskRecord[] = [];
    const lastStage = options.stage ?? state.taskIds.length - 1;
    for (; stage <= lastStage; stage++, index = -1) {
      const ids = this.orderedIds(state, stage);
      for (let i = this.firstAfter(ids, index); i < ids.length; i++) {
        const task = this.tasks.get(ids[i]!)!;
        if (options.status && task.status !== options.status) continue;
        if (options.batchId !== undefined && task.batchId !== options.batchId) continue;
        if (tasks.length === limit) {
          const last = tasks[tasks.length - 1]!;
          return { tasks, nextCursor: encodeCursor(last.stage, last.index) };
        }
        tasks.push({ ...task });
      }
    }
    return { tasks };
  }

  async listResults(
    jobId: string,
    stage: number,
    page: { afterIndex: number; limit: number },
  ): Promise<StoredResult[]> {
    const state = this.jobs.get(jobId);
    if (!state) return [];
    const ids = this.orderedIds(state, stage);
    const results: StoredResult[] = [];
    for (let i = this.firstAfter(ids, page.afterIndex); i < ids.length; i++) {
      if (results.length >= page.limit) break;
      const task = this.tasks.get(ids[i]!)!;
      if (task.status === 'succeeded') results.push({ index: task.index, result: task.result });
    }
    return results;
  }

  private orderedIds(state: JobState, stage: number): string[] {
    const ids = state.taskIds[stage] ?? [];
    if (state.unsorted.delete(stage))
      ids.sort((a, b) => this.tasks.get(a)!.index - this.tasks.get(b)!.index);
    return ids;
  }

  /** Position of the first task whose index is greater than `index` (binary search). */
  private firstAfter(ids: string[], index: number): number {
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.tasks.get(ids[mid]!)!.index <= index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  async incrementCounter(transport: string, name: string, by: number): Promise<void> {
    let byName = this.counters.get(transport);
    if (!byName) {
      byName = new Map();
      this.counters.set(transport, byName);
    }
    byName.set(name, (byName.get(name) ?? 0) + by);
  }

  async metrics(): Promise<TransportMetrics[]> {
    const byPath = new Map<string, JobState[]>();
    for (const state of this.jobs.values()) {
      const list = byPath.get(state.job.transport) ?? [];
      list.push(state);
      byPath.set(state.job.transport, list);
    }
    for (const transport of [...this.counters.keys(), ...this.purged.keys()])
      if (!byPath.has(transport)) byPath.set(transport, []);
    const waitingByPath = new Map<string, TasksWaiting>();
    for (const [id, what] of this.openWaiting()) {
      const job = this.jobs.get(this.tasks.get(id)!.jobId)?.job;
      if (job?.status !== 'running') continue;
      let entry = waitingByPath.get(job.transport);
      if (!entry) {
        entry = { concurrency: 0, rateLimit: 0 };
        waitingByPath.set(job.transport, entry);
      }
      entry[what]++;
    }
    return [...byPath.entries()].map(([transport, states]) => {
      const gone = this.purged.get(transport) ?? noPurgedTotals();
      const jobs = {
        total: states.length + gone.succeeded + gone.failed + gone.cancelled,
        queued: 0,
        running: 0,
        succeeded: gone.succeeded,
        failed: gone.failed,
        cancelled: gone.cancelled,
      };
      const latencies: number[] = [];
      const waits: number[] = [];
      const tasks = {
        total: gone.tasks,
        succeeded: gone.tasksSucceeded,
        failed: gone.tasksFailed,
      };
      let retries = gone.retries;
      let timeouts = gone.timeouts;
      let finishedTasks = gone.finishedTasks;
      let runningMs = gone.runningMs;
      let waitingForWindow = 0;
      for (const { job, taskIds, stages } of states) {
        if (job.status !== 'scheduled') jobs[job.status]++;
        if (job.status === 'running')
          for (const stage of stages)
            if (stage && stage.released !== null && stage.status !== 'complete')
              waitingForWindow += Math.max(0, stage.created - stage.released);
        let jobTasks = 0;
        for (const ids of taskIds) {
          for (const id of ids ?? []) {
            const task = this.tasks.get(id)!;
            tasks.total++;
            jobTasks++;
            if (task.status === 'succeeded') tasks.succeeded++;
            if (task.status === 'failed') tasks.failed++;
            retries += Math.max(0, task.attempts - 1);
            timeouts += task.timeouts;
            if (task.startedAt) waits.push(task.startedAt.getTime() - task.createdAt.getTime());
          }
        }
        if (job.finishedAt && job.status !== 'cancelled') {
          latencies.push(job.finishedAt.getTime() - job.createdAt.getTime());
          runningMs += job.finishedAt.getTime() - (job.startedAt ?? job.createdAt).getTime();
          finishedTasks += jobTasks;
        }
      }
      return {
        transport,
        jobs,
        jobLatencyMs: withPurged(latencies, gone.latencySumMs, gone.latencyCount),
        queueWaitMs: withPurged(waits, gone.waitSumMs, gone.waitCount),
        tasksPerSecond: runningMs > 0 ? (finishedTasks * 1000) / runningMs : null,
        tasks,
        retries,
        timeouts,
        poisoned: tasks.failed,
        redrives: Object.fromEntries(this.counters.get(transport) ?? []),
        waiting: waitingByPath.get(transport) ?? { concurrency: 0, rateLimit: 0 },
        waitingForWindow,
      };
    });
  }

  async findStuck({
    olderThanMs,
    limit,
  }: {
    olderThanMs: number;
    limit: number;
  }): Promise<StuckWork[]> {
    const cutoff = Date.now() - olderThanMs;
    const found: StuckWork[] = [];
    let budget = limit;
    for (const { job, stages, taskIds, releasedAt: releasedAtOf } of this.jobs.values()) {
      if (budget <= 0) break;
      if (FINISHED_STATUSES.has(job.status) || job.status === 'scheduled') continue;
      const base = { jobId: job.id, transport: job.transport };
      if (job.currentStage < 0) {
        if (job.updatedAt.getTime() < cutoff) {
          found.push({ kind: 'job-not-started', ...base });
          budget--;
        }
        continue;
      }
      const stage = stages[job.currentStage];
      if (!stage) continue;
      if (stage.status === 'fanning_out') {
        if (stage.startedAt.getTime() < cutoff) {
          found.push({ kind: 'fanout-incomplete', ...base, stage: stage.index });
          budget--;
        }
      } else if (stage.status === 'complete') {
        if ((stage.completedAt?.getTime() ?? 0) < cutoff) {
          found.push(
            stage.index === job.stageCount - 1
              ? { kind: 'finalize-not-done', ...base }
              : { kind: 'stage-not-advanced', ...base, stage: stage.index },
          );
          budget--;
        }
      } else {
        const lost: string[] = [];
        // A windowed stage's unreleased tasks have no message yet; a released task's silence
        // counts from the stage's latest release at the earliest.
        const releasedAt = releasedAtOf[stage.index] ?? 0;
        for (const id of taskIds[stage.index] ?? []) {
          if (lost.length >= budget) break;
          const task = this.tasks.get(id)!;
          if (stage.released !== null && task.index >= stage.released) continue;
          const backoff =
            olderThanMs * (2 ** Math.min(this.redrives.get(id) ?? 0, MAX_REDRIVE_DOUBLINGS) - 1);
          const since = Math.max(task.updatedAt.getTime(), releasedAt);
          if (!FINISHED_STATUSES.has(task.status) && since < cutoff - backoff) lost.push(id);
        }
        if (lost.length > 0) {
          found.push({ kind: 'task-message-lost', ...base, stage: stage.index, taskIds: lost });
          budget -= lost.length;
        }
      }
    }
    return found;
  }

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const lease = this.leases.get(name);
    if (lease && lease.owner !== owner && lease.expiresAt > now) return false;
    this.leases.set(name, { owner, expiresAt: now + ttlMs });
    return true;
  }

  async releaseDueJobs(limit: number): Promise<ReleasedJob[]> {
    this.assertOpen();
    const now = Date.now();
    const released: ReleasedJob[] = [];
    for (const { job } of this.jobs.values()) {
      if (released.length >= limit) break;
      if (job.status !== 'scheduled' || (job.runAt?.getTime() ?? 0) > now) continue;
      job.status = 'queued';
      job.updatedAt = new Date(now);
      released.push({ jobId: job.id, transport: job.transport });
    }
    return released;
  }

  async expireJobs(limit: number): Promise<string[]> {
    this.assertOpen();
    const now = Date.now();
    const expired: string[] = [];
    for (const state of this.jobs.values()) {
      if (expired.length >= limit) break;
      const { job } = state;
      if (FINISHED_STATUSES.has(job.status) || !job.deadlineAt || job.deadlineAt.getTime() > now)
        continue;
      this.cancelState(state, {
        name: 'SwitchyardError',
        code: 'DEADLINE_EXCEEDED',
        message: `the job did not finish by its deadline ${job.deadlineAt.toISOString()}`,
      });
      expired.push(job.id);
    }
    return expired;
  }

  async getScheduleStates(): Promise<ScheduleState[]> {
    this.assertOpen();
    return [...this.schedules.values()].map((s) => ({ ...s }));
  }

  async advanceSchedule(advance: ScheduleAdvance): Promise<boolean> {
    this.assertOpen();
    const state = this.schedules.get(advance.name) ?? { name: advance.name, paused: false };
    if (state.cursor && state.cursor >= advance.cursor) return false;
    state.cursor = new Date(advance.cursor);
    if (advance.lastFireAt) state.lastFireAt = new Date(advance.lastFireAt);
    if (advance.lastJobId !== undefined) state.lastJobId = advance.lastJobId;
    this.schedules.set(advance.name, state);
    return true;
  }

  async setSchedulePaused(name: string, paused: boolean): Promise<void> {
    this.assertOpen();
    const state = this.schedules.get(name) ?? { name, paused };
    state.paused = paused;
    this.schedules.set(name, state);
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private completeIfDone(stage: StageRecord): StageCompletion | undefined {
    if (stage.status !== 'sealed' || stage.total === null) return undefined;
    if (stage.succeeded + stage.failed < stage.total) return undefined;
    stage.status = 'complete';
    stage.completedAt = new Date();
    stage.running = 0;
    return {
      jobId: stage.jobId,
      stage: stage.index,
      succeeded: stage.succeeded,
      failed: stage.failed,
      total: stage.total,
    };
  }

  private requireJob(jobId: string): JobState {
    const state = this.jobs.get(jobId);
    if (!state) throw new SwitchyardError('JOB_NOT_FOUND', `job ${jobId} not found`);
    return state;
  }

  private assertOpen(): void {
    if (this.closed) throw new SwitchyardError('CLOSED', 'memory store is closed');
  }
}

/** Mean over kept values and purged sums (exact); p95 over the kept values alone. */
function withPurged(
  values: number[],
  purgedSum: number,
  purgedCount: number,
): { mean: number | null; p95: number | null } {
  const kept = meanAndP95(values);
  const count = values.length + purgedCount;
  if (count === 0) return kept;
  const keptSum = (kept.mean ?? 0) * values.length;
  return { mean: (keptSum + purgedSum) / count, p95: kept.p95 };
}

function copyJob(job: JobRecord): JobRecord {
  return { ...job };
}

function cloneJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function encodeCursor(stage: number, index: number): string {
  return Buffer.from(`${stage}:${index}`).toString('base64url');
}

function decodeCursor(cursor: string): [number, number] {
  const match = /^(\d+):(-?\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new SwitchyardError('INVALID_INPUT', 'cursor is malformed');
  return [Number(match[1]), Number(match[2])];
}
